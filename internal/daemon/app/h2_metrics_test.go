package app

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2raw is a raw HTTP/2 client connection (x/net/http2's Framer) that has sent its
// preface and SETTINGS; frames the server sends are read by readUntil.
type h2raw struct {
	c   net.Conn
	fr  *http2.Framer
	hdr []byte // an encoded GET / block
	out *bufio.Writer
}

func dialH2Raw(t *testing.T, addr string) *h2raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", addr}, {":path", "/hello"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	w := bufio.NewWriter(c)
	r := &h2raw{c: c, fr: http2.NewFramer(w, c), hdr: blk.Bytes(), out: w}
	w.WriteString(http2.ClientPreface)
	r.fr.WriteSettings()
	r.fr.WriteSettingsAck()
	return r
}

// goAway reads frames until a GOAWAY and returns its code, or fails the test.
func (r *h2raw) goAway(t *testing.T) http2.ErrCode {
	t.Helper()
	if err := r.out.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return g.ErrCode
		}
	}
}

// TestH2Metrics drives HTTP/2 clients nobody here wrote (Go's x/net/http2 client,
// h2load, nghttp, and x/net/http2's Framer for the attacks) at a gale with two loops
// and checks that each gale_http2_* series moves with its trigger.
func TestH2Metrics(t *testing.T) {
	a, addr := runApp(t, `
workers: 2
admin:
  listen: 127.0.0.1:0
servers:
  - name: web
    listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]
    routes:
      - name: hello
        match: { path: /hello }
        respond: { body: hi }
`)
	h1 := &http.Client{Timeout: 10 * time.Second}
	val := func(series string) float64 { return metricValue(t, scrape(t, h1, a.AdminAddr()), series) }
	waitVal := func(series string, want float64) {
		t.Helper()
		var got float64
		testkit.WaitFor(t, series, func() bool { got = val(series); return got == want })
	}
	for _, s := range []string{"gale_http2_connections_total", "gale_http2_streams_total", `gale_http2_resets_total{direction="received"}`,
		`gale_http2_resets_total{direction="sent"}`, `gale_http2_goaways_sent_total{code="ENHANCE_YOUR_CALM"}`,
		`gale_http2_glitches_total{kind="rapid_reset"}`, `gale_http2_glitches_total{kind="stream_error"}`, "gale_http2_connections"} {
		if v := val(s); v != 0 {
			t.Fatalf("%s = %v before any HTTP/2 connection", s, v)
		}
	}

	// Go's client: one connection, three streams; the gauge counts it while it is open.
	c := h2c(t)
	for range 3 {
		do(t, c, "GET", "http://"+addr+"/hello")
	}
	waitVal("gale_http2_connections", 1)
	waitVal("gale_http2_connections_total", 1)
	waitVal("gale_http2_streams_total", 3)
	c.CloseIdleConnections()
	waitVal("gale_http2_connections", 0)

	// h2load: 2 connections, 20 streams.
	if _, err := exec.LookPath("h2load"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "h2load", "-n", "20", "-c", "2", "http://"+addr+"/hello").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "20 succeeded") {
			t.Fatalf("h2load: %v\n%s", err, out)
		}
		waitVal("gale_http2_connections_total", 3)
		waitVal("gale_http2_streams_total", 23)
	} else {
		t.Log("h2load not installed (nghttp2-client)")
	}
	base := val("gale_http2_streams_total")
	// nghttp: one stream, and a GOAWAY NO_ERROR... from the client, so none sent.
	if _, err := exec.LookPath("nghttp"); err == nil {
		out, err := exec.Command("nghttp", "http://"+addr+"/hello").CombinedOutput()
		if err != nil || string(out) != "hi" {
			t.Fatalf("nghttp: %q, %v", out, err)
		}
		waitVal("gale_http2_streams_total", base+1)
	} else {
		t.Log("nghttp not installed (nghttp2-client)")
	}

	// A malformed request (an uppercase field name): RST_STREAM PROTOCOL_ERROR sent, a
	// stream_error glitch; then a client reset of an open stream.
	r := dialH2Raw(t, addr)
	bad := append([]byte(nil), r.hdr...)
	var blk bytes.Buffer
	hpack.NewEncoder(&blk).WriteField(hpack.HeaderField{Name: "Upper", Value: "x"})
	bad = append(bad, blk.Bytes()...)
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: bad, EndStream: true, EndHeaders: true})
	r.out.Flush()
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("no RST_STREAM for the malformed request: %v", err)
		}
		if rs, ok := f.(*http2.RSTStreamFrame); ok && rs.StreamID == 1 && rs.ErrCode == http2.ErrCodeProtocol {
			break
		}
	}
	waitVal(`gale_http2_resets_total{direction="sent"}`, 1)
	waitVal(`gale_http2_glitches_total{kind="stream_error"}`, 1)
	// The field block of stream 1 was dropped from HPACK's view; a fresh connection
	// keeps the encoder's table honest.
	r.c.Close()

	// Rapid reset: HEADERS+RST_STREAM pairs until the server cuts the connection off.
	r = dialH2Raw(t, addr)
	for id := uint32(1); id < 2*1000; id += 2 {
		r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.hdr, EndStream: true, EndHeaders: true})
		r.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	if code := r.goAway(t); code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("rapid reset ended with GOAWAY %v", code)
	}
	waitVal(`gale_http2_goaways_sent_total{code="ENHANCE_YOUR_CALM"}`, 1)
	waitVal(`gale_http2_glitches_total{kind="rapid_reset"}`, 1)
	if v := val(`gale_http2_resets_total{direction="received"}`); v < 200 {
		t.Fatalf("resets received %v, want at least the 200 of MaxRapidResets", v)
	}
	// A PING flood on another connection.
	r = dialH2Raw(t, addr)
	for range 200 {
		r.fr.WritePing(false, [8]byte{})
	}
	if code := r.goAway(t); code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("PING flood ended with GOAWAY %v", code)
	}
	io.Copy(io.Discard, r.c)
	waitVal(`gale_http2_glitches_total{kind="ping"}`, 1)
	waitVal(`gale_http2_goaways_sent_total{code="ENHANCE_YOUR_CALM"}`, 2)
	waitVal("gale_http2_connections", 0)
}
