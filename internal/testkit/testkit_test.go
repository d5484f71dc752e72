package testkit

import (
	"bufio"
	"net"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHeadFieldAndStatus(t *testing.T) {
	head := "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nX-A:  b \r\n\r\n"
	if got := StatusOf(head); got != "404" {
		t.Fatalf("status %q, want 404 (the final response)", got)
	}
	if got := HeadField(head, "x-a"); got != "b" {
		t.Fatalf("X-A %q", got)
	}
	if got := HeadField(head, "missing"); got != "" {
		t.Fatalf("missing field %q", got)
	}
}

func TestDialReadResponseWaitFor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var served atomic.Bool
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		served.Store(true)
	}()
	c := Dial(t, ln.Addr().String())
	c.Write([]byte("GET / HTTP/1.1\r\n"))
	resp := ReadResponse(t, bufio.NewReader(c), "GET")
	if b := Body(t, resp); resp.StatusCode != 200 || !strings.EqualFold(b, "ok") {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	WaitFor(t, "the server goroutine", served.Load)
}
