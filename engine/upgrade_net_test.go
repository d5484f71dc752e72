//go:build unix && (!linux || galenet)

package engine

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// TestPortableHandover passes the portable engine's listening sockets to a second
// engine the way a binary upgrade does (ListenerFDs, duplicate, StopAccepting,
// ListenFDs): the old engine keeps serving its connection and takes no new ones,
// and the successor serves the connections that arrive afterwards.
func TestPortableHandover(t *testing.T) {
	h1 := &echo{}
	old, addr := startEngine(t, h1, 2)
	kept := testkit.Dial(t, addr)
	roundTrip := func(c net.Conn, msg string) {
		t.Helper()
		c.Write([]byte(msg))
		buf := make([]byte, len(msg))
		if _, err := c.Read(buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q: got %q, %v", msg, buf, err)
		}
	}
	roundTrip(kept, "a")
	fds := old.ListenerFDs()
	if len(fds) != 1 {
		t.Fatalf("ListenerFDs = %v, want one socket", fds)
	}
	dup, err := syscall.Dup(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	old.StopAccepting()
	if got := old.ListenerFDs(); len(got) != 0 {
		t.Fatalf("ListenerFDs after StopAccepting = %v", got)
	}
	accepted := old.Stats().Accepted
	waiting := testkit.Dial(t, addr) // queued in the socket that the duplicate keeps open

	h2 := &echo{}
	next, err := New(Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := next.ListenFDs([]int{dup}, h2); err != nil {
		t.Fatal(err)
	}
	if got := next.ListenerFDs(); len(got) != 1 || got[0] != dup {
		t.Fatalf("successor ListenerFDs = %v, want [%d]", got, dup)
	}
	next.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		next.Shutdown(ctx)
	}()
	roundTrip(waiting, "b")
	for i := 0; i < 5; i++ {
		roundTrip(testkit.Dial(t, addr), "c")
	}
	roundTrip(kept, "d")
	if got := old.Stats().Accepted; got != accepted {
		t.Fatalf("old engine accepted %d connections after StopAccepting", got-accepted)
	}
	if got := h2.opened.Load(); got != 6 {
		t.Fatalf("successor opened %d connections, want 6", got)
	}
}
