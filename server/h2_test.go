package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/http2"
	"github.com/gale-server/gale/internal/testkit"
	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// exchFunc serves both protocols with one function over the Exchange.
type exchFunc func(x Exchange)

func (f exchFunc) ServeGale(c *Ctx)         { f(c) }
func (f exchFunc) ServeExchange(x Exchange) { f(x) }

// startH2C serves h on a dispatch listener with HTTP/1.1 and h2c by prior knowledge.
func startH2C(t testing.TB, h Handler, cfg http2.Config) (*Server, *HTTP2, string) {
	t.Helper()
	s, err := New(Options{Handler: h, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	h2 := s.NewHTTP2(HTTP2Options{Config: cfg})
	l, err := s.ListenDispatch("127.0.0.1:0", Dispatch{HTTP1: h, H2: h2})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	shutdownAtCleanup(t, s)
	return s, h2, l.Addr
}

// h2cClient returns Go's HTTP/2 client (net/http's bundled copy of x/net/http2)
// speaking h2c by prior knowledge with at most one connection, and a counter of the
// connections it dialed.
func h2cClient(t testing.TB) (*http.Client, *atomic.Int64) {
	dials := new(atomic.Int64)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{
		Protocols: &p,
		HTTP2:     &http.HTTP2Config{StrictMaxConcurrentRequests: true},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, dials
}

// TestH2SameHandlerBothProtocols: one ExchangeHandler answers HTTP/1.1 and h2c on the
// same listener; it sees the protocol only when it asks, and cookie fields joined.
func TestH2SameHandlerBothProtocols(t *testing.T) {
	h := exchFunc(func(x Exchange) {
		ck, _ := x.ReqHeader("Cookie")
		x.Header().Set("X-Proto", x.Proto())
		x.Header().Set("X-Path", string(x.NormPath()))
		x.Respond(200, "text/plain", []byte(fmt.Sprintf("%s %s %s q=%s cookie=%s", x.Method(), x.Path(), x.Host(), x.Query(), ck)))
	})
	_, _, addr := startH2C(t, h, http2.Config{})
	c2, _ := h2cClient(t)
	req, _ := http.NewRequest("GET", "http://"+addr+"/a/../b//c?x=1", nil)
	req.Header.Add("Cookie", "a=1")
	req.AddCookie(&http.Cookie{Name: "b", Value: "2"})
	resp, err := c2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Header.Get("X-Proto") != "HTTP/2.0" || resp.Header.Get("X-Path") != "/b/c" {
		t.Fatalf("proto %s, headers %v", resp.Proto, resp.Header)
	}
	if want := "GET /a/../b//c " + addr + " q=x=1 cookie=a=1; b=2"; string(b) != want {
		t.Fatalf("body %q, want %q", b, want)
	}
	if resp.Header.Get("Date") == "" || resp.Header.Get("Server") != "gale" || resp.ContentLength != int64(len(b)) {
		t.Fatalf("headers %v, length %d", resp.Header, resp.ContentLength)
	}
	r1, err := http.Get("http://" + addr + "/x")
	if err != nil {
		t.Fatal(err)
	}
	r1.Body.Close()
	if r1.ProtoMajor != 1 || r1.Header.Get("X-Proto") != "HTTP/1.1" {
		t.Fatalf("HTTP/1.1 on the same listener: %s %v", r1.Proto, r1.Header)
	}
}

// TestH2CtxOnlyHandler505: a handler with ServeGale only cannot serve a stream.
func TestH2CtxOnlyHandler505(t *testing.T) {
	h := HandlerFunc(func(c *Ctx) { c.Respond(200, "", []byte("h1")) })
	_, _, addr := startH2C(t, h, http2.Config{})
	c2, _ := h2cClient(t)
	resp, err := c2.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 505 {
		t.Fatalf("status %d, want 505", resp.StatusCode)
	}
}

// TestH2StreamingEcho streams a request body back while it arrives, larger than every
// window, through a handler that pauses the body while its output is queued: the
// backpressure of the response reaches the client's sending through flow control.
func TestH2StreamingEcho(t *testing.T) {
	h := exchFunc(func(x Exchange) {
		x.Trailer().Set("X-Sum", "done")
		x.WriteHeader(200)
		x.OnBody(func(p []byte, end bool) {
			if len(p) > 0 {
				x.Write(p)
				if x.Buffered() > 64<<10 {
					x.PauseBody()
					x.OnDrain(x.ResumeBody)
				}
			}
			if end {
				x.End()
			}
		})
	})
	_, _, addr := startH2C(t, h, http2.Config{})
	c2, _ := h2cClient(t)
	want := bytes.Repeat([]byte("0123456789abcdef"), 5<<20/16) // 5 MiB
	resp, err := c2.Post("http://"+addr+"/echo", "application/octet-stream", bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo: %d bytes, err %v", len(got), err)
	}
	if resp.Trailer.Get("X-Sum") != "done" {
		t.Fatalf("trailers %v", resp.Trailer)
	}
}

// TestH2EarlyHints sends 103 before the final response.
func TestH2EarlyHints(t *testing.T) {
	h := exchFunc(func(x Exchange) {
		var eh Header
		eh.Set("Link", "</s.css>; rel=preload")
		x.WriteInformational(103, &eh)
		x.Respond(200, "text/plain", []byte("ok"))
	})
	_, _, addr := startH2C(t, h, http2.Config{})
	c2, _ := h2cClient(t)
	var got1xx []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got1xx = append(got1xx, fmt.Sprint(code, " ", h.Get("Link")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://"+addr+"/", nil)
	resp, err := c2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(got1xx) != 1 || got1xx[0] != "103 </s.css>; rel=preload" || resp.StatusCode != 200 {
		t.Fatalf("1xx %v, status %d", got1xx, resp.StatusCode)
	}
}

// TestH2ThousandStreamsOneConn runs 1,000 requests over one connection, all open at
// once: no handler answers (through Post, from another goroutine) before the 1,000th
// stream has arrived.
func TestH2ThousandStreamsOneConn(t *testing.T) {
	var inFlight atomic.Int64
	all := make(chan struct{})
	h := exchFunc(func(x Exchange) {
		if string(x.Path()) == "/warm" {
			x.Respond(200, "", nil)
			return
		}
		if inFlight.Add(1) == 1000 {
			close(all)
		}
		x.Detach()
		path := string(x.Path())
		go func() {
			<-all
			x.Post(func() { x.Respond(200, "text/plain", []byte(path)) })
		}()
	})
	_, h2, addr := startH2C(t, h, http2.Config{MaxConcurrentStreams: 1000})
	c2, dials := h2cClient(t)
	// One request first, so that the 1,000 find the connection up instead of each
	// dialing its own while it is being set up.
	warm, err := c2.Get("http://" + addr + "/warm")
	if err != nil {
		t.Fatal(err)
	}
	warm.Body.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("/s/%d", i)
			resp, err := c2.Get("http://" + addr + p)
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != p {
				errs <- fmt.Errorf("%s: got %q", p, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if dials.Load() != 1 || h2.Conns() != 1 {
		t.Fatalf("%d dials, %d server connections, want 1", dials.Load(), h2.Conns())
	}
}

// TestH2ZeroWindowWriteTimeout: a stream whose window the client never opens is reset
// at the write timeout, and the exchange hears about it.
func TestH2ZeroWindowWriteTimeout(t *testing.T) {
	closed := make(chan error, 1)
	h := exchFunc(func(x Exchange) {
		x.OnClose(func(err error) { closed <- err })
		x.Write(bytes.Repeat([]byte("x"), 100))
	})
	s, err := New(Options{Handler: h, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	h2 := s.NewHTTP2(HTTP2Options{WriteTimeout: 200 * time.Millisecond})
	l, err := s.ListenDispatch("127.0.0.1:0", Dispatch{HTTP1: h, H2: h2})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown(context.Background())
	nc, err := net.Dial("tcp", l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fr := xhttp2.NewFramer(nc, nc)
	io.WriteString(nc, http2.Preface)
	fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 0})
	fr.WriteSettingsAck()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "x"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	select {
	case err := <-closed:
		if err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("OnClose error %v, want the write timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a zero-window client was not cut off")
	}
}

// TestH2FollowsListenerSetHandler: the HTTP/2 side of a dispatch listener serves the
// listener's handler, so a reload (SetHandler) reaches new streams of an open
// connection.
func TestH2FollowsListenerSetHandler(t *testing.T) {
	answer := func(s string) Handler {
		return exchFunc(func(x Exchange) { x.Respond(200, "text/plain", []byte(s)) })
	}
	s, err := New(Options{Handler: answer("default"), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.ListenDispatch("127.0.0.1:0", Dispatch{HTTP1: answer("old"), H2: s.NewHTTP2(HTTP2Options{})})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	shutdownAtCleanup(t, s)
	// Both requests go as streams 1 and 3 of one connection, in raw frames: Go's
	// pooled transport may dial a second connection when the first looks busy,
	// which would not test the point (new streams of an open connection).
	_, fr := testkit.H2Open(t, l.Addr)
	get := func(stream uint32) string {
		t.Helper()
		if err := testkit.H2Get(fr, stream, "/"); err != nil {
			t.Fatal(err)
		}
		var body []byte
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("stream %d: %v", stream, err)
			}
			if d, ok := f.(*xhttp2.DataFrame); ok && d.StreamID == stream {
				body = append(body, d.Data()...)
				if d.StreamEnded() {
					return string(body)
				}
			}
		}
	}
	if got := get(1); got != "old" {
		t.Fatalf("before SetHandler: %q", got)
	}
	l.SetHandler(answer("new"))
	if got := get(3); got != "new" {
		t.Fatalf("after SetHandler: %q on the same connection", got)
	}
}

// TestH2BodyEndsInOneFrame: a response whose whole body is known goes as HEADERS and
// one DATA frame carrying END_STREAM, not a DATA frame and an empty one; so does a
// detached handler that writes its declared length from a posted task and then ends
// (a proxy relaying its upstream's last piece). A body the window holds back still
// arrives whole and ends once.
func TestH2BodyEndsInOneFrame(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160,000 octets
	h := exchFunc(func(x Exchange) {
		switch string(x.Path()) {
		case "/respond":
			x.Respond(200, "text/plain", []byte("hello"))
		case "/detached":
			x.Detach()
			go x.Post(func() {
				x.SetContentLength(5)
				x.Write([]byte("he"))
				x.Post(func() {
					x.Write([]byte("llo"))
					x.End()
				})
			})
		case "/big":
			x.Respond(200, "application/octet-stream", big)
		}
	})
	_, _, addr := startH2C(t, h, http2.Config{})
	// Each on a connection of its own: on a shared one, how the bodies split depends
	// on the connection window the others take meanwhile.
	for _, tc := range []struct {
		path   string
		body   []byte
		frames string // the DATA frames, when they are certain
	}{
		{"/respond", []byte("hello"), "5+end"},
		{"/detached", []byte("hello"), "2 3+end"},
		{"/big", big, ""},
	} {
		frames, body := h2DataFrames(t, addr, tc.path)
		last := frames[len(frames)-1]
		if !bytes.Equal(body, tc.body) || !strings.HasSuffix(last, "+end") || last == "0+end" ||
			tc.frames != "" && strings.Join(frames, " ") != tc.frames {
			t.Errorf("%s: %d octets in DATA frames %v; want %d, END_STREAM on the last non-empty one (%s)",
				tc.path, len(body), frames, len(tc.body), tc.frames)
		}
	}
}

// h2DataFrames sends one GET for path on a new h2c connection and returns the DATA
// frames of its response (their lengths, "+end" on the one with END_STREAM) and the
// body, opening the windows as data arrives.
func h2DataFrames(t *testing.T, addr, path string) ([]string, []byte) {
	t.Helper()
	_, fr := testkit.H2Open(t, addr)
	if err := testkit.H2Get(fr, 1, path); err != nil {
		t.Fatal(err)
	}
	var frames []string
	var body []byte
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("%s: reading frames: %v (so far %v)", path, err, frames)
		}
		d, ok := f.(*xhttp2.DataFrame)
		if !ok {
			continue
		}
		body = append(body, d.Data()...)
		desc := strconv.Itoa(len(d.Data()))
		if d.StreamEnded() {
			return append(frames, desc+"+end"), body
		}
		frames = append(frames, desc)
		if n := len(d.Data()); n > 0 {
			fr.WriteWindowUpdate(0, uint32(n))
			fr.WriteWindowUpdate(1, uint32(n))
		}
	}
}

// TestRequestsInProgressEnd: Stats.Requests minus Stats.Done, the requests in
// progress (the "writing" connections of the metrics), goes back to zero once HTTP/2
// streams have ended and once a request has handed its connection to another
// protocol, while that connection stays open; it used to grow by one for each.
func TestRequestsInProgressEnd(t *testing.T) {
	echo := &upperEcho{closed: make(chan struct{})}
	errs := make(chan error, 1)
	up := upgradeHandler(t, echo, false, errs)
	h := exchFunc(func(x Exchange) {
		if c, ok := x.(*Ctx); ok && string(c.Path()) == "/ws" {
			up.ServeGale(c)
			return
		}
		x.Respond(200, "text/plain", []byte("ok"))
	})
	s, _, addr := startH2C(t, h, http2.Config{})
	inProgress := func() int64 { st := s.Stats(); return int64(st.Requests - st.Done) }
	client, _ := h2cClient(t)
	for range 5 {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	testkit.WaitFor(t, "the HTTP/2 requests to end", func() bool { return inProgress() == 0 })
	if st := s.Stats(); st.Requests != 5 {
		t.Fatalf("Requests %d, want 5", st.Requests)
	}
	c := testkit.Dial(t, addr)
	io.WriteString(c, upgradeReq)
	if err := <-errs; err != nil {
		t.Fatalf("Upgrade: %v", err)
	}
	testkit.WaitFor(t, "the upgraded request to end", func() bool { return inProgress() == 0 })
	if st := s.Stats(); st.Requests != 6 || st.Active != 2 {
		t.Fatalf("Stats %+v, want 6 requests and 2 connections (the h2 one idle, the upgraded one)", st)
	}
	c.Close()
	<-echo.closed
}
