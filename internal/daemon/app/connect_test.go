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
