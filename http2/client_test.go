package http2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// app is the application a pump serves: /echo streams the request body back (with its
// trailers as response trailers), /big?n=N sends N octets. Request bytes are handed to flow
// control (Consumed) only once the response has taken them; any other path gets 1 KiB, so a slow reader of the
// response slows the request down — the backpressure the server integration will do.
type app struct {
	c *Conn
}

type appStream struct {
	pending  []byte
	ended    bool
	trailers []Field
	big      int
}

func (a *app) OnRequest(s *Stream) {
	st := &appStream{}
	s.Value = st
	if s.Path != "/echo" {
		st.big = 1024
		if n, ok := strings.CutPrefix(s.Path, "/big?n="); ok {
			st.big, _ = strconv.Atoi(n)
		}
		_ = a.c.WriteHeaders(s.ID, 200, []Field{{"content-length", strconv.Itoa(st.big)}}, false)
		a.OnWritable(s)
		return
	}
	_ = a.c.WriteHeaders(s.ID, 200, []Field{{"content-type", "application/octet-stream"}}, s.BodyDone())
}

func (a *app) OnData(s *Stream, p []byte, end bool) {
	if s.Path != "/echo" {
		a.c.Consumed(s.ID, len(p))
		return
	}
	st := s.Value.(*appStream)
	st.pending = append(st.pending, p...)
	st.ended = end
	a.OnWritable(s)
}

func (a *app) OnTrailers(s *Stream, tr []Field) {
	st := s.Value.(*appStream)
	st.ended, st.trailers = true, tr
	a.OnWritable(s)
}

func (a *app) OnStreamReset(s *Stream, code ErrCode, byPeer bool) {}
func (a *app) OnGoAway(code ErrCode, debug []byte)                {}

func (a *app) OnWritable(s *Stream) {
	st := s.Value.(*appStream)
	if st.big > 0 || s.Path != "/echo" {
		chunk := make([]byte, min(st.big, 32<<10))
		for st.big > 0 {
			n, err := a.c.WriteData(s.ID, chunk[:min(len(chunk), st.big)], st.big <= len(chunk))
			st.big -= n
			if err != nil || n == 0 {
				return
			}
		}
		return
	}
	if len(st.pending) > 0 {
		n, err := a.c.WriteData(s.ID, st.pending, false)
		if err != nil {
			return
		}
		a.c.Consumed(s.ID, n)
		st.pending = st.pending[n:]
	}
	if len(st.pending) == 0 && st.ended && !s.ResponseDone() {
		if st.trailers != nil {
			_ = a.c.WriteTrailers(s.ID, st.trailers)
		} else {
			_, _ = a.c.WriteData(s.ID, nil, true)
		}
	}
}

var _ Handler = (*app)(nil)

// pump drives one Conn over a socket: the only goroutine of the server side.
func pump(nc net.Conn, cfg Config) {
	defer lingerClose(nc)
	a := &app{}
	c := NewConn(cfg, a)
	a.c = c
	buf := make([]byte, 0, 64<<10)
	for {
		for out := c.Out(); len(out) > 0; out = c.Out() {
			n, err := nc.Write(out)
			c.Drained(n)
			if err != nil {
				return
			}
		}
		if c.Done() {
			return
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		if err != nil {
			return
		}
		buf = buf[:len(buf)+n]
		k, _ := c.Feed(buf)
		buf = buf[:copy(buf, buf[k:])]
	}
}

// lingerClose closes like a server that lingers: it shuts down its sending side and
// reads what the peer still sends for up to a second, so that bytes the peer wrote
// after our GOAWAY do not turn the close into a reset.
func lingerClose(nc net.Conn) {
	defer nc.Close()
	tc, ok := nc.(*net.TCPConn)
	if !ok || tc.CloseWrite() != nil {
		return
	}
	tc.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, tc)
}

// h2cServer serves pumps on a loopback port and returns the URL and the number of
// connections accepted so far.
func h2cServer(t *testing.T, cfg Config) (string, *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); pump(nc, cfg) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String(), &accepted
}

func h2cClient(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func TestGoClientEchoBodiesAndTrailers(t *testing.T) {
	url, _ := h2cServer(t, Config{})
	cl := h2cClient(t)
	body := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 KiB: beyond every window
	req, _ := http.NewRequest("POST", url+"/echo", io.MultiReader(bytes.NewReader(body)))
	req.Trailer = http.Header{"X-Check": nil}
	req.Body = &trailerBody{r: bytes.NewReader(body), req: req, val: fmt.Sprintf("%x", sha256.Sum256(body))}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.ProtoMajor != 2 || !bytes.Equal(got, body) {
		t.Fatalf("proto %s, %d octets back (err %v)", resp.Proto, len(got), err)
	}
	if resp.Trailer.Get("X-Check") != fmt.Sprintf("%x", sha256.Sum256(body)) {
		t.Fatalf("trailers %v", resp.Trailer)
	}
}

// trailerBody sets the request trailer once the body has been read, as net/http wants.
type trailerBody struct {
	r   io.Reader
	req *http.Request
	val string
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.req.Trailer.Set("X-Check", b.val)
	}
	return n, err
}

func (b *trailerBody) Close() error { return nil }

func TestGoClientOneByteWindow(t *testing.T) {
	url, _ := h2cServer(t, Config{InitialStreamWindow: 1})
	cl := h2cClient(t)
	body := bytes.Repeat([]byte("x"), 3000)
	resp, err := cl.Post(url+"/echo", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("%d octets back: %v", len(got), err)
	}
}

// TestGoClientHundredConcurrentStreams runs 100 requests at once on one connection of
// net/http's HTTP/2 client.
func TestGoClientHundredConcurrentStreams(t *testing.T) {
	url, accepted := h2cServer(t, Config{})
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	cc, err := tr.NewClientConn(context.Background(), "http", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 1000 + 997*i
			req, _ := http.NewRequest("GET", url+"/big?n="+strconv.Itoa(n), nil)
			resp, err := cc.RoundTrip(req)
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || len(got) != n {
				errs <- fmt.Errorf("stream %d: %d octets, %v", i, len(got), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections", n)
	}
}
