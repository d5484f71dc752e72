package app

import (
	"bufio"
	"bytes"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2MalformedNeverReachesOrigin: HTTP/2 requests whose method, scheme, authority,
// host or field values gale's HTTP/1.1 parser would answer 400 are reset with
// PROTOCOL_ERROR (RFC 9113 §8.1.1, §8.2.1, §8.3.1) and never reach the HTTP/1.1
// origin behind a proxy route: ":method: GET /admin?" on /public/x used to reach it
// as the request line "GET /admin? /public/x HTTP/1.1", which an origin tolerant of
// spaces in the target (nginx before 1.21.1 was; 1.22 answers 400) serves as /admin,
// past the route gale matched. Valid requests on the same
// connection still go through. On epoll and io_uring.
func TestH2MalformedNeverReachesOrigin(t *testing.T) {
	onLinuxEngines(t, testH2MalformedNeverReachesOrigin)
}

func testH2MalformedNeverReachesOrigin(t *testing.T, eng string) {
	var mu sync.Mutex
	var lines []string // request line and Host of every request the origin read
	origin := testkit.Serve(t, func(c *net.TCPConn) {
		tp := textproto.NewReader(bufio.NewReader(c))
		for {
			line, err := tp.ReadLine()
			if err != nil {
				return
			}
			hdr, err := tp.ReadMIMEHeader()
			if err != nil {
				return
			}
			mu.Lock()
			lines = append(lines, line+" | "+hdr.Get("Host")+" | "+hdr.Get("X-Forwarded-Host")+" | "+hdr.Get("X-A"))
			mu.Unlock()
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"))
		}
	})
	addr := startH2cProxy(t, eng, origin, "")
	c, fr := testkit.H2Open(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	send := func(id uint32, fields ...string) {
		t.Helper()
		hb.Reset()
		for i := 0; i < len(fields); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(extra ...string) []string {
		return append([]string{":method", "GET", ":scheme", "http", ":path", "/public/x", ":authority", "x"}, extra...)
	}
	bad := [][]string{
		{":method", "GET /admin?", ":scheme", "http", ":path", "/public/x", ":authority", "x"},
		{":method", "GET", ":scheme", "ht tp", ":path", "/public/x", ":authority", "x"},
		{":method", "GET", ":scheme", "http", ":path", "/public/x", ":authority", "evil@x"},
		{":method", "GET", ":scheme", "http", ":path", "/public/x", ":authority", "x:abc"},
		{":method", "GET", ":scheme", "http", ":path", "/public/x", "host", "a b/c?d"},
		{":method", "GET", ":scheme", "http", ":path", "/public/x", "host", "a", "host", "b"},
		get("x-a", "b\x01c"),
		get("x-a", "b\x7fc"),
	}
	id := uint32(1)
	for _, f := range bad {
		send(id, f...)
		id += 2
	}
	last := id
	send(last, get("x-a", "fine")...)

	var hdec = hpack.NewDecoder(4096, nil)
	resets := map[uint32]http2.ErrCode{}
	for done := false; !done; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v (resets so far %v)", err, resets)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			resets[f.StreamID] = f.ErrCode
		case *http2.HeadersFrame:
			fields, err := hdec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			if f.StreamID != last || len(fields) == 0 || fields[0].Value != "200" {
				t.Fatalf("stream %d answered %v, want only stream %d answered 200", f.StreamID, fields, last)
			}
		case *http2.DataFrame:
			done = f.StreamID == last && f.StreamEnded()
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v %q", f.ErrCode, f.DebugData())
		}
	}
	for s := uint32(1); s < last; s += 2 {
		if resets[s] != http2.ErrCodeProtocol {
			t.Errorf("stream %d (%q): reset %v, want PROTOCOL_ERROR", s, bad[s/2], resets[s])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "GET /public/x HTTP/1.1 | ") || !strings.HasSuffix(lines[0], " | x | fine") {
		t.Fatalf("the origin read %q, want only the valid GET /public/x", lines)
	}
}

// startH2cProxy serves an h2c-only listener on eng whose one route proxies every
// path to origin; top holds more top-level configuration lines (limits …). It
// returns the listener's address.
func startH2cProxy(t *testing.T, eng, origin, top string) string {
	t.Helper()
	_, addr := startApp(t, `
workers: 1
engine: `+eng+`
`+top+`
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [h2c]
    routes:
      - match: { path: / }
        proxy: { upstreams: [{ address: "`+origin+`" }] }
`)
	return addr
}
