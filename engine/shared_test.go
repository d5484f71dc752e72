package engine

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// broadcaster queues one Shared buffer to every connection that sends a byte.
type broadcaster struct {
	NopHandler
	s      *Shared
	queued atomic.Int64
	closed atomic.Int64
}

func (b *broadcaster) OnData(c *Conn, in []byte) int {
	if err := c.WriteShared(b.s); err == nil {
		b.queued.Add(1)
	}
	return len(in)
}

func (b *broadcaster) OnEOF(c *Conn)            { c.Close(nil) }
func (b *broadcaster) OnShutdown(c *Conn)       { c.Close(nil) }
func (b *broadcaster) OnClose(c *Conn, _ error) { b.closed.Add(1) }

// TestSharedBufferToManyConns queues one shared buffer to 1,000 connections on two
// loops; a tenth of the clients close without reading. The buffer is released
// exactly once, after the last connection is done with it.
func TestSharedBufferToManyConns(t *testing.T) {
	payload := bytes.Repeat([]byte("shared!"), 10<<10) // 70 KiB
	var freed atomic.Int64
	b := &broadcaster{s: NewShared(payload, func() { freed.Add(1) })}
	_, addr := startEngine(t, b, 2)
	const n = 1000
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = testkit.Dial(t, addr)
		conns[i].Write([]byte("?"))
	}
	testkit.WaitFor(t, "all queued", func() bool { return b.queued.Load() == n })
	b.s.Release() // the creator's reference
	var wg sync.WaitGroup
	var bad atomic.Int64
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%10 == 0 {
				c.Close() // early: never reads
				return
			}
			got := make([]byte, len(payload))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, payload) {
				bad.Add(1)
			}
			c.Close()
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d clients did not get the payload", bad.Load())
	}
	testkit.WaitFor(t, "all closed", func() bool { return b.closed.Load() == n })
	if got := freed.Load(); got != 1 {
		t.Fatalf("freed %d times, want once", got)
	}
}

// TestSharedCounts: the free function waits for the last reference, and misuse
// panics.
func TestSharedCounts(t *testing.T) {
	var freed int
	s := NewShared([]byte("x"), func() { freed++ })
	s.Retain()
	s.Release()
	if freed != 0 {
		t.Fatal("freed with a reference left")
	}
	s.Release()
	if freed != 1 {
		t.Fatalf("freed %d times", freed)
	}
	for _, m := range []struct {
		name string
		f    func()
	}{{"Retain", func() { s.Retain() }}, {"Release", s.Release}} {
		name, f := m.name, m.f
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s after the last release did not panic", name)
				}
			}()
			f()
		}()
	}
}
