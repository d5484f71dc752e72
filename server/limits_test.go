package server

import (
	"strings"
	"testing"
)

// TestHeadLargerThanEngineInput: with limits above what the engine keeps of
// unconsumed input (a library user may set any), a head that outgrows the engine's
// retention is answered 431 (or 414 while still in the request line), never reset.
func TestHeadLargerThanEngineInput(t *testing.T) {
	s := startServer(t, echoPath, func(o *Options) {
		o.Limits.MaxRequestLine = 1 << 20
		o.Limits.MaxHeaderBytes = 1 << 20
	})
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"200KB header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 200<<10) + "\r\n\r\n", 431},
		{"many headers", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-F: "+strings.Repeat("v", 1000)+"\r\n", 99) + "\r\n", 431},
		{"200KB request line", "GET /" + strings.Repeat("a", 200<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
	} {
		t.Run(tc.name, func(t *testing.T) { expectRejected(t, s.Addr(), tc.req, tc.status) })
	}
}
