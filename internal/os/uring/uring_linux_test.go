//go:build linux

package uring

import (
	"net"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/gale-server/gale/internal/os/sys"
	"golang.org/x/sys/unix"
)

// ring returns a ring on a locked thread (the single-issuer setup needs one
// submitting thread) or skips when the kernel refuses io_uring.
func ring(t *testing.T) *Ring {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	if err := Probe(); err != nil {
		t.Skipf("io_uring unavailable here: %v", err)
	}
	r, err := New(64, 256)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// waitCQE enters until a completion with user data ud arrives (bounded).
func waitCQE(t *testing.T, r *Ring, ud uint64) CQE {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := r.Enter(100); err != nil {
			t.Fatal(err)
		}
		var got *CQE
		r.Reap(func(c CQE) {
			if c.UserData == ud && got == nil {
				got = &c
			}
		})
		if got != nil {
			return *got
		}
	}
	t.Fatalf("no completion for %d", ud)
	return CQE{}
}

// TestMultishotAcceptRecvNonblocking checks the kernel behaviour the engine relies
// on: multishot accept and multishot receive with a provided buffer on
// non-blocking sockets wait for readiness (poll) instead of failing with EAGAIN,
// and a read of a non-blocking eventfd waits for a write.
func TestMultishotAcceptRecvNonblocking(t *testing.T) {
	r := ring(t)
	lfd, err := sys.Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	addr, _ := sys.LocalAddr(lfd)
	s := r.Get()
	s.Opcode, s.Fd, s.Ioprio, s.OpFlags, s.UserData = OpAccept, int32(lfd), AcceptMultishot, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 1
	if _, err := r.Enter(0); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := waitCQE(t, r, 1)
	if a.Res < 0 || a.Flags&CqeMore == 0 {
		t.Fatalf("accept: res %d flags %x", a.Res, a.Flags)
	}
	fd := int(a.Res)
	defer unix.Close(fd)
	br, err := r.NewBufRing(1, 4, 4096)
	if err != nil {
		t.Fatal(err)
	}
	s = r.Get()
	s.Opcode, s.Fd, s.Ioprio, s.Flags, s.BufGroup, s.UserData = OpRecv, int32(fd), RecvMultishot, SqeBufferSelect, 1, 2
	r.Enter(0)
	time.Sleep(20 * time.Millisecond) // the receive must be parked, not failed
	c.Write([]byte("hello"))
	rc := waitCQE(t, r, 2)
	if rc.Res != 5 || rc.Flags&CqeBuffer == 0 || rc.Flags&CqeMore == 0 {
		t.Fatalf("recv: res %d flags %x", rc.Res, rc.Flags)
	}
	if got := string(br.Buf(uint16(rc.Flags>>CqeBufferShift), int(rc.Res))); got != "hello" {
		t.Fatalf("recv got %q", got)
	}
	efd, _ := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	defer unix.Close(efd)
	var buf [8]byte
	s = r.Get()
	s.Opcode, s.Fd, s.Addr, s.Len, s.UserData = OpRead, int32(efd), uint64(uintptr(unsafe.Pointer(&buf[0]))), 8, 3
	r.Enter(0)
	go func() {
		time.Sleep(20 * time.Millisecond)
		unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}()
	if e := waitCQE(t, r, 3); e.Res != 8 {
		t.Fatalf("eventfd read: res %d", e.Res)
	}
	// Cancel by descriptor ends the multishot receive.
	s = r.Get()
	s.Opcode, s.Fd, s.OpFlags, s.UserData = OpAsyncCancel, int32(fd), CancelFD|CancelAll, 4
	r.Enter(0)
	if e := waitCQE(t, r, 2); e.Res != -int32(unix.ECANCELED) || e.Flags&CqeMore != 0 {
		t.Fatalf("canceled recv: res %d flags %x", e.Res, e.Flags)
	}
	c.Close()
	br.Close()
}
