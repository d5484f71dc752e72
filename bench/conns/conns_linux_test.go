package main

import (
	"net"
	"os"
	"slices"
	"testing"
	"time"
)

// TestSourceAddr checks that source addresses stay in 127.0.0.0/8, avoid host parts 0 and
// 255, and change every perIP connections.
func TestSourceAddr(t *testing.T) {
	seen := map[string]bool{}
	for g := 0; g < 300*1000; g += 1000 {
		ip := sourceAddr(g, 1000).IP.To4()
		if ip[0] != 127 || ip[3] == 0 || ip[3] == 255 {
			t.Fatalf("connection %d: bad source %v", g, ip)
		}
		if seen[ip.String()] {
			t.Fatalf("connection %d: source %v reused", g, ip)
		}
		seen[ip.String()] = true
		if !sourceAddr(g+999, 1000).IP.Equal(ip) {
			t.Fatalf("connections %d and %d differ in source", g, g+999)
		}
	}
}

// TestServerRootsByPort finds this test process through a socket it listens on, and
// measures its memory.
func TestServerRootsByPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	roots, err := serverRoots(0, ln.Addr().(*net.TCPAddr).Port)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(roots, []int{os.Getpid()}) {
		t.Fatalf("roots = %v, want [%d]", roots, os.Getpid())
	}
	rss, n, err := treeRSS(roots)
	if err != nil || rss <= 0 || n < 1 {
		t.Fatalf("treeRSS = %d, %d, %v", rss, n, err)
	}
	if _, err := tcpMemPages(); err != nil {
		t.Fatal(err)
	}
}

// TestStillIdle checks the end-of-hold question on real sockets: a connection left alone is
// idle; one the server closed, or wrote to unasked, is not; WebSocket pings alone leave it
// idle when the connections are WebSockets.
func TestStillIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() (net.Conn, net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c, <-accepted
	}
	// waitFor polls until stillIdle gives want or 5 s pass (the FIN or byte is in flight).
	waitFor := func(c net.Conn, ws, want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for stillIdle(c, ws) != want {
			if time.Now().After(deadline) {
				t.Fatalf("stillIdle stayed %v", !want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	idle, s1 := dial()
	defer idle.Close()
	defer s1.Close()
	if !stillIdle(idle, false) || !stillIdle(idle, true) {
		t.Fatal("an untouched connection is not idle")
	}
	closed, s2 := dial()
	defer closed.Close()
	s2.Close()
	waitFor(closed, true, false)
	written, s3 := dial()
	defer written.Close()
	defer s3.Close()
	s3.Write([]byte("x"))
	waitFor(written, true, false)
	// WebSocket pings are a server's keep-alive: idle with ws, not without.
	pinged, s4 := dial()
	defer pinged.Close()
	defer s4.Close()
	s4.Write([]byte{0x89, 0, 0x89, 2, 'h', 'i'})
	waitFor(pinged, false, false)
	if !stillIdle(pinged, true) {
		t.Fatal("a connection that got two pings is not idle with ws")
	}
	pingClose, s5 := dial()
	defer pingClose.Close()
	defer s5.Close()
	s5.Write([]byte{0x89, 0, 0x88, 2, 0x03, 0xe9}) // a ping, then close 1001
	waitFor(pingClose, true, false)
	if !stillIdle(idle, false) {
		t.Fatal("the untouched connection stopped being idle")
	}
}

// TestKernelReadings reads the slab and the TCP counters this machine reports.
func TestKernelReadings(t *testing.T) {
	slab, unrecl, err := slabBytes()
	if err != nil || slab <= 0 || unrecl <= 0 || unrecl > slab {
		t.Fatalf("slabBytes = %d, %d, %v", slab, unrecl, err)
	}
	m, err := netCounters()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range watchedCounters {
		if _, ok := m[k]; !ok {
			t.Errorf("no counter %s", k)
		}
	}
}
