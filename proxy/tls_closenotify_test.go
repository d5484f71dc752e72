package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/tlsterm"
)

// TestProxyTLSCloseNotify: a connection to an https upstream that the proxy
// closes in order (after keepalive.max_requests, at the keep-alive idle
// timeout) ends with close_notify, as RFC 8446 §6.1 requires and nginx
// sends, not a bare FIN the origin reads as a truncation. TLS 1.2, whose
// record types are visible, so the origin can tell.
func TestProxyTLSCloseNotify(t *testing.T) {
	ca, _ := testcert.NewCA(t.TempDir())
	cert, _ := ca.Issue("origin", "origin.gale.test")
	kp, _ := tls.LoadX509KeyPair(cert.Cert, cert.Key)
	addr, ends := testkit.TLS12Origin(t, kp, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\norigin")
	oaddr := netip.MustParseAddrPort(addr)
	for name, mod := range map[string]func(*UpstreamOptions){
		"max_requests": func(o *UpstreamOptions) { o.Keepalive.MaxRequests = 1 },
		"idle timeout": func(o *UpstreamOptions) { o.Keepalive.IdleTimeout = 50 * time.Millisecond },
	} {
		u := testUpstream(t, []netip.AddrPort{oaddr}, func(o *UpstreamOptions) {
			o.TLS = clientTLS(t, tlsterm.ClientFiles{CA: ca.CAFile, ServerName: "origin.gale.test"})
			mod(o)
		})
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + startProxy(t, u, Route{}, nil) + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "origin" {
			t.Fatalf("%s: body %q", name, b)
		}
		select {
		case alert := <-ends:
			if !alert {
				t.Errorf("%s: the upstream connection ended without a close_notify alert", name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the upstream connection was not closed", name)
		}
	}
}
