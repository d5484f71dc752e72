package testkit

import (
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"
)

// TLS12Origin starts a TLS 1.2 server on 127.0.0.1 with cert that answers
// every read of a request with response (a whole HTTP/1.1 response), and
// reports on ends, for each connection that ends, whether its last record was
// an alert (a close_notify) rather than a bare FIN. TLS 1.2 shows every
// record's type, so the origin can tell. It stops when the test ends.
func TLS12Origin(t testing.TB, cert tls.Certificate, response string) (addr string, ends <-chan bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan bool, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				rt := &recordTail{Conn: c}
				tc := tls.Server(rt, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12})
				defer tc.Close()
				tc.SetDeadline(time.Now().Add(20 * time.Second))
				buf := make([]byte, 4096)
				for {
					n, err := tc.Read(buf)
					if err != nil {
						select {
						case ch <- rt.lastType() == 21:
						default:
						}
						return
					}
					if n > 0 {
						tc.Write([]byte(response))
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// recordTail is a net.Conn that remembers the content type of the last TLS
// record it read (21 for an alert).
type recordTail struct {
	net.Conn
	mu   sync.Mutex // guards buf and last
	buf  []byte     // bytes of the record being read
	last byte       // content type of the last complete record
}

func (r *recordTail) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.buf = append(r.buf, p[:n]...)
	for len(r.buf) >= 5 {
		l := 5 + (int(r.buf[3])<<8 | int(r.buf[4]))
		if len(r.buf) < l {
			break
		}
		r.last, r.buf = r.buf[0], r.buf[l:]
	}
	r.mu.Unlock()
	return n, err
}

func (r *recordTail) lastType() byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}
