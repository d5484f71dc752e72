package main

import (
	"net"
	"os"
	"slices"
	"syscall"
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

// TestSlabCaches reads /proc/slabinfo (root only) and checks that the breakdown charges the
// growth of a cache to the connections, largest first, with the rest summed.
func TestSlabCaches(t *testing.T) {
	m, err := slabCaches()
	if os.IsPermission(err) {
		t.Skip("/proc/slabinfo needs root")
	}
	if err != nil {
		t.Fatal(err)
	}
	if m["dentry"] <= 0 {
		t.Fatalf("no dentry cache in %d caches", len(m))
	}
	before := map[string]int64{"TCP": 1000, "filp": 500, "tiny": 0}
	after := map[string]int64{"TCP": 1000 + 10*2368, "filp": 500 + 10*192, "tiny": 50, "new": 10 * 832, "shrunk": 0}
	got := slabGrowth(before, after, 10, 2)
	want := "3397 B/conn: TCP 2368, new 832, other 197"
	if got != want {
		t.Fatalf("slabGrowth = %q, want %q", got, want)
	}
}

// TestTreeCPU burns CPU in this process until getrusage(2) counts 200 ms more, and checks
// that treeCPU, which reads /proc, saw about as much.
func TestTreeCPU(t *testing.T) {
	used := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	roots := []int{os.Getpid()}
	before, err := treeCPU(roots)
	if err != nil {
		t.Fatal(err)
	}
	start, deadline := used(), time.Now().Add(30*time.Second)
	x := 0
	for used()-start < 200*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatal("200 ms of CPU took more than 30 s")
		}
		for i := range 100000 {
			x += i
		}
	}
	after, err := treeCPU(roots)
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 150*time.Millisecond || d > 2*time.Second {
		t.Fatalf("treeCPU grew by %v while getrusage counted %v (x %d)", d, used()-start, x)
	}
	if _, err := treeCPU([]int{1 << 30}); err == nil {
		t.Fatal("treeCPU of a missing process did not fail")
	}
}
