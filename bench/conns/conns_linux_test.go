package main

import (
	"net"
	"os"
	"slices"
	"testing"
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
