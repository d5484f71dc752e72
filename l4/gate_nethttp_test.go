package l4

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/l4proto"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/nethttp"
)

// TestGateNetHTTPRemoteAddr runs the net/http adapter behind a Gate: a handler's
// Request.RemoteAddr is the client the PROXY header names (version 1 and 2, IPv4
// and IPv6 written "[a]:p" as net/http writes it), on every request of a
// keep-alive connection, although the connections all come from 127.0.0.1.
func TestGateNetHTTPRemoteAddr(t *testing.T) {
	p := server.NewPool(4, 16)
	t.Cleanup(p.Close)
	s, err := server.New(server.Options{Workers: 1, Handler: nethttp.Adapt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr)
	}), p)})
	if err != nil {
		t.Fatal(err)
	}
	s.SetAcceptWrap(func(h engine.Handler) engine.Handler {
		return NewGate(h, GateOptions{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	})
	if _, err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	dst := netip.MustParseAddrPort("198.51.100.1:443")
	for src, hdr := range map[string]string{
		"192.0.2.7:40000":    string(l4proto.AppendV2(nil, netip.MustParseAddrPort("192.0.2.7:40000"), dst)),
		"[2001:db8::5]:1234": string(l4proto.AppendV2(nil, netip.MustParseAddrPort("[2001:db8::5]:1234"), netip.MustParseAddrPort("[2001:db8::1]:443"))),
		"192.0.2.8:40001":    "PROXY TCP4 192.0.2.8 198.51.100.1 40001 443\r\n",
	} {
		c := testkit.Dial(t, s.Addr())
		if _, err := io.WriteString(c, hdr); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for i := 0; i < 2; i++ {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			if got := testkit.Body(t, testkit.ReadResponse(t, br, "GET")); got != src {
				t.Fatalf("request %d with PROXY source %s: RemoteAddr %q", i, src, got)
			}
		}
		c.Close()
	}
}
