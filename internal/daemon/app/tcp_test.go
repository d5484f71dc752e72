package app

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// TestTCPEntry checks that a config with only a tcp entry serves it: bytes go to
// the upstream and back through the relay.
func TestTCPEntry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	}()
	a, addr := startApp(t, fmt.Sprintf("workers: 1\ntcp:\n  - listen: [\"127.0.0.1:0\"]\n    upstreams: [%q]\n", ln.Addr().String()))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("through the relay"))
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "through the relay" {
		t.Fatalf("got %q, %v", got, err)
	}
	if len(a.TCPProxies()) != 1 || a.TCPProxies()[0].Stats().Accepted != 1 {
		t.Fatalf("proxies %v", a.TCPProxies())
	}
}
