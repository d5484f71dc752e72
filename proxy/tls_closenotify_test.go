package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/tlsterm"
)

// recordTail is a net.Conn that remembers the content type of the last TLS
// record it read (TLS 1.2 shows it: 21 for an alert, such as close_notify).
type recordTail struct {
	net.Conn
	mu   sync.Mutex
	buf  []byte // bytes of the record being read
	last byte   // content type of the last complete record
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

// TestProxyTLSCloseNotify: a connection to an https upstream that the proxy
// closes in order (after keepalive.max_requests, at the keep-alive idle
// timeout) ends with close_notify, as RFC 8446 §6.1 requires and nginx
// sends, not a bare FIN the origin reads as a truncation. TLS 1.2, whose
// record types are visible, so the origin can tell.
func TestProxyTLSCloseNotify(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testcert.NewCA(dir)
	cert, _ := ca.Issue("origin", "origin.gale.test")
	kp, _ := tls.LoadX509KeyPair(cert.Cert, cert.Key)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ends := make(chan byte, 16) // the last record type of each connection the origin saw end
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				rt := &recordTail{Conn: c}
				tc := tls.Server(rt, &tls.Config{Certificates: []tls.Certificate{kp}, MaxVersion: tls.VersionTLS12})
				defer tc.Close()
				tc.SetDeadline(time.Now().Add(20 * time.Second))
				br := make([]byte, 4096)
				for {
					n, err := tc.Read(br)
					if err != nil {
						ends <- rt.lastType()
						return
					}
					if n > 0 {
						io.WriteString(tc, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\norigin")
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	oaddr := netip.MustParseAddrPort(ln.Addr().String())
	for name, mod := range map[string]func(*UpstreamOptions){
		"max_requests": func(o *UpstreamOptions) { o.Keepalive.MaxRequests = 1 },
		"idle timeout": func(o *UpstreamOptions) { o.Keepalive.IdleTimeout = 50 * time.Millisecond },
	} {
		u := testUpstream(t, []netip.AddrPort{oaddr}, func(o *UpstreamOptions) {
			o.TLS = clientTLS(t, tlsterm.ClientFiles{CA: ca.CAFile, ServerName: "origin.gale.test"})
			mod(o)
		})
		addr := startProxy(t, u, Route{}, nil)
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "origin" {
			t.Fatalf("%s: body %q", name, b)
		}
		select {
		case typ := <-ends:
			if typ != 21 {
				t.Errorf("%s: the upstream connection ended after a record of type %d, not a close_notify alert (21)", name, typ)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the upstream connection was not closed", name)
		}
	}
}
