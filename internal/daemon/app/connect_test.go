package app

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestConnectRefused: no gale action opens a tunnel, and a 2xx answer to CONNECT
// tells the client that one is open (RFC 9110 §9.3.6), so every CONNECT gets 405 and
// the connection closes, whichever route its authority matches: a respond route
// (which answered 200 with its body), a proxy route (which forwarded the CONNECT to
// its origin and relayed the origin's 200), or none. Bytes the client sent after the
// head, which a tunnel client sends as tunnel data, are never served as a request.
// Over h2c the stream gets 405 and the connection goes on serving.
func TestConnectRefused(t *testing.T) {
	onLinuxEngines(t, func(t *testing.T, eng string) {
		origin := testkit.NewOrigin(t)
		_, addr := startApp(t, fmt.Sprintf(`
workers: 1
engine: %s
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]
    routes:
      - match: { host: tunnel.example }
        respond: { status: 200, body: "tunnel open" }
      - match: { host: proxied.example }
        proxy: { upstreams: ["%s"] }
      - match: { path: / }
        respond: { status: 200, body: "root" }
`, eng, origin.Addr))
		for _, authority := range []string{"tunnel.example:443", "proxied.example:443", "other.example:443"} {
			c := testkit.Dial(t, addr)
			fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", authority, authority)
			br := bufio.NewReader(c)
			resp := testkit.ReadResponse(t, br, "CONNECT")
			body := testkit.Body(t, resp)
			if resp.StatusCode != 405 || !resp.Close {
				t.Fatalf("CONNECT %s: %d %q (close %v), want 405 and close", authority, resp.StatusCode, body, resp.Close)
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Fatalf("CONNECT %s: after the 405 came %q, %v; want the connection closed", authority, rest, err)
			}
		}
		if n := origin.Hits.Load(); n != 0 {
			t.Fatalf("the origin got %d requests; a CONNECT must not be forwarded", n)
		}

		// h2c: CONNECT carries only :method and :authority (RFC 9113 §8.5).
		_, fr := testkit.H2Open(t, addr)
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		enc.WriteField(hpack.HeaderField{Name: ":method", Value: "CONNECT"})
		enc.WriteField(hpack.HeaderField{Name: ":authority", Value: "tunnel.example:443"})
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if err := testkit.H2Get(fr, 3, "/"); err != nil {
			t.Fatal(err)
		}
		dec := hpack.NewDecoder(4096, nil)
		statuses := map[uint32]string{}
		for len(statuses) < 2 {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("reading frames (statuses so far %v): %v", statuses, err)
			}
			if h, ok := f.(*http2.HeadersFrame); ok {
				fields, err := dec.DecodeFull(h.HeaderBlockFragment())
				if err != nil {
					t.Fatal(err)
				}
				for _, hf := range fields {
					if hf.Name == ":status" {
						statuses[h.StreamID] = hf.Value
					}
				}
			}
		}
		if statuses[1] != "405" || statuses[3] != "200" {
			t.Fatalf("h2c statuses %v, want 405 for the CONNECT (stream 1) and 200 for the GET (stream 3)", statuses)
		}
	})
}

// TestTraceRefused: TRACE echoes the request (cookies and credentials included),
// which is what cross-site tracing reads, so the router answers it 405 before any
// route, as nginx does: a respond route answered it 200 and a proxy route forwarded
// it to its origin. The connection stays open and serves the next request; over
// h2c the stream gets 405.
func TestTraceRefused(t *testing.T) {
	onLinuxEngines(t, func(t *testing.T, eng string) {
		origin := testkit.NewOrigin(t)
		_, addr := startApp(t, fmt.Sprintf(`
workers: 1
engine: %s
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]
    routes:
      - match: { path: /up/ }
        proxy: { upstreams: ["%s"] }
      - match: { path: / }
        respond: { status: 200, body: "root" }
`, eng, origin.Addr))
		c := testkit.Dial(t, addr)
		br := bufio.NewReader(c)
		for _, path := range []string{"/", "/up/x"} {
			fmt.Fprintf(c, "TRACE %s HTTP/1.1\r\nHost: x\r\nCookie: secret=1\r\n\r\n", path)
			resp := testkit.ReadResponse(t, br, "TRACE "+path)
			body := testkit.Body(t, resp)
			if resp.StatusCode != 405 || resp.Close || bytes.Contains([]byte(body), []byte("secret")) {
				t.Fatalf("TRACE %s: %d %q (close %v), want 405 on an open connection", path, resp.StatusCode, body, resp.Close)
			}
		}
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp := testkit.ReadResponse(t, br, "GET"); resp.StatusCode != 200 || testkit.Body(t, resp) != "root" {
			t.Fatalf("GET after TRACE: %d", resp.StatusCode)
		}
		if n := origin.Hits.Load(); n != 0 {
			t.Fatalf("the origin got %d requests; a TRACE must not be forwarded", n)
		}

		_, fr := testkit.H2Open(t, addr)
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for _, f := range [][2]string{{":method", "TRACE"}, {":scheme", "http"}, {":path", "/"}, {":authority", "x"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		dec := hpack.NewDecoder(4096, nil)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("reading frames: %v", err)
			}
			if h, ok := f.(*http2.HeadersFrame); ok {
				fields, err := dec.DecodeFull(h.HeaderBlockFragment())
				if err != nil {
					t.Fatal(err)
				}
				if fields[0].Name != ":status" || fields[0].Value != "405" {
					t.Fatalf("h2c TRACE: %v, want :status 405", fields)
				}
				return
			}
		}
	})
}
