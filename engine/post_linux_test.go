//go:build linux && !galenet

package engine

import (
	"context"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPostAfterShutdownTouchesNoDescriptor posts to a loop whose engine has shut
// down after the descriptor number of the loop's old eventfd has been reused by a
// pipe: the pipe must receive nothing (the closure is dropped).
func TestPostAfterShutdownTouchesNoDescriptor(t *testing.T) {
	e, err := New(Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	l := e.Loops()[0]
	old := l.poller.WakeFd()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Make the old number the pipe's write end, if nothing else took it meanwhile.
	if _, err := unix.FcntlInt(uintptr(old), unix.F_GETFD, 0); err != unix.EBADF {
		t.Skipf("descriptor %d was reused by someone else", old)
	}
	if err := unix.Dup3(p[1], old, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(old)
	ran := false
	l.Post(func() { ran = true })
	var buf [16]byte
	if n, err := unix.Read(p[0], buf[:]); err != unix.EAGAIN {
		t.Fatalf("the reused descriptor received %d bytes (err %v)", n, err)
	}
	if ran {
		t.Fatal("a closure posted after shutdown ran")
	}
}
