package server

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/http2"
	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// floodResult is what the client side of a flood saw.
type floodResult struct {
	goAway   xhttp2.ErrCode // the last GOAWAY's code, or -1 as uint32 max when none came
	gotAway  bool
	status   map[string]int // :status values of responses received
	closed   bool           // the server closed the connection
	batches  int            // batches of flood frames written
	heapPeak uint64         // highest HeapInuse seen during the flood
	heapBase uint64         // HeapInuse before it
}

// runFlood connects to addr with HTTP/2, sends the client preface, then writes
// batch(fr, i) batches until the server closes the connection, maxBatches have gone, or
// 45 s pass (a deadline, not a duration: under the race detector on a loaded machine the
// hpack bombs take the server tens of milliseconds each); a reader drains the server's frames (unless noRead) and notes GOAWAY codes
// and response statuses. The test process's heap is sampled throughout.
func runFlood(t *testing.T, addr string, maxBatches int, noRead bool, batch func(w *xhttp2.Framer, i int)) floodResult {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res := floodResult{status: map[string]int{}, heapBase: ms.HeapInuse}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if noRead {
		nc.(*net.TCPConn).SetReadBuffer(4096)
	}
	deadline := time.Now().Add(45 * time.Second)
	nc.SetDeadline(deadline)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // heap sampler
		defer close(sampled)
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()
	readDone := make(chan struct{})
	var gotAway atomic.Bool
	var awayCode atomic.Uint32
	statuses := make(chan string, 1<<16)
	go func() {
		defer close(readDone)
		if noRead {
			<-stop
			return
		}
		fr := xhttp2.NewFramer(io.Discard, bufio.NewReader(nc))
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		fr.MaxHeaderListSize = 1 << 20
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				var se xhttp2.StreamError
				if errors.As(err, &se) {
					continue
				}
				return
			}
			switch f := f.(type) {
			case *xhttp2.GoAwayFrame:
				gotAway.Store(true)
				awayCode.Store(uint32(f.ErrCode))
			case *xhttp2.MetaHeadersFrame:
				select {
				case statuses <- f.PseudoValue("status"):
				default:
				}
			}
		}
	}()
	var out bytes.Buffer
	w := xhttp2.NewFramer(&out, nil)
	w.AllowIllegalWrites = true
	out.WriteString(http2.Preface)
	w.WriteSettings()
	w.WriteSettingsAck()
	for i := 0; i < maxBatches; i++ {
		batch(w, i)
		if _, err := nc.Write(out.Bytes()); err != nil {
			res.closed = true
			break
		}
		out.Reset()
		res.batches++
		if gotAway.Load() {
			break
		}
	}
	if !noRead {
		// The server ends the connection after its GOAWAY: the reader sees EOF or a reset.
		select {
		case <-readDone:
			res.closed = true
		case <-time.After(time.Until(deadline)):
		}
	}
	close(stop)
	<-sampled
	<-readDone
	res.gotAway, res.goAway = gotAway.Load(), xhttp2.ErrCode(awayCode.Load())
	close(statuses)
	for s := range statuses {
		res.status[s]++
	}
	res.heapPeak = peak.Load()
	return res
}

// startFloodServer serves a fixed response over HTTP/2 (prior knowledge) with the
// protocol's default limits except those in cfg, and a short write timeout. Its
// flood tarpit is off, so that a cut-off connection closes right after its GOAWAY
// (TestH2FloodTarpit tests the tarpit).
func startFloodServer(t *testing.T, cfg http2.Config) string {
	return startFloodServerOpts(t, HTTP2Options{Config: cfg, WriteTimeout: time.Second, FloodTarpit: -1})
}

// startFloodServerOpts is startFloodServer with the HTTP/2 options given whole.
func startFloodServerOpts(t *testing.T, o HTTP2Options) string {
	t.Helper()
	h := exchFunc(func(x Exchange) { x.Respond(200, "text/plain", []byte("hello\n")) })
	s, err := New(Options{Handler: h, Workers: 1, WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.ListenHTTP2("127.0.0.1:0", h, o)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	shutdownAtCleanup(t, s)
	return l.Addr
}

func getBlock(extra ...string) []byte {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	f := append([]string{":method", "GET", ":scheme", "http", ":path", "/", ":authority", "x"}, extra...)
	for i := 0; i+1 < len(f); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: f[i], Value: f[i+1]})
	}
	return b.Bytes()
}

// TestH2FloodsOverSocket reproduces every flood of the issue against a real listener with
// the default limits, from a client over TCP, and checks that each is cut off with GOAWAY
// ENHANCE_YOUR_CALM, that the server then closes the connection, and that the process's
// heap stays within 32 MiB of where it started while the flood runs.
func TestH2FloodsOverSocket(t *testing.T) {
	addr := startFloodServer(t, http2.Config{})
	get := getBlock()
	// HPACK bomb: one 4,000-octet field goes into the dynamic table, then every request
	// refers to it 1,000 times with one-octet indexed fields (4 MB decoded per request).
	// One encoder writes every block in sending order, so the references stay valid.
	var bomb bytes.Buffer
	enc := hpack.NewEncoder(&bomb)
	big := strings.Repeat("b", 4000)
	bombBlock := func() []byte {
		bomb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "x"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		for range 1000 {
			enc.WriteField(hpack.HeaderField{Name: "x-big", Value: big})
		}
		return bomb.Bytes()
	}
	cases := []struct {
		name  string
		batch func(w *xhttp2.Framer, i int)
	}{
		{"ping", func(w *xhttp2.Framer, i int) {
			for range 64 {
				w.WritePing(false, [8]byte{})
			}
		}},
		{"settings", func(w *xhttp2.Framer, i int) {
			for range 64 {
				w.WriteSettings()
			}
		}},
		{"window-update", func(w *xhttp2.Framer, i int) {
			for range 64 {
				w.WriteWindowUpdate(0, 1)
			}
		}},
		{"priority", func(w *xhttp2.Framer, i int) {
			for j := range 64 {
				w.WritePriority(uint32(2*(64*i+j)+101), xhttp2.PriorityParam{Weight: 1})
			}
		}},
		{"empty-data", func(w *xhttp2.Framer, i int) {
			if i == 0 {
				w.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: get, EndHeaders: true})
			}
			for range 64 {
				w.WriteData(1, false, nil)
			}
		}},
		{"rapid-reset", func(w *xhttp2.Framer, i int) {
			for j := range 64 {
				id := uint32(2*(64*i+j) + 1)
				w.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: get, EndStream: true, EndHeaders: true})
				w.WriteRSTStream(id, xhttp2.ErrCodeCancel)
			}
		}},
		{"rapid-reset-open-request", func(w *xhttp2.Framer, i int) {
			for j := range 64 {
				id := uint32(2*(64*i+j) + 1)
				w.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: get, EndHeaders: true})
				w.WriteRSTStream(id, xhttp2.ErrCodeCancel)
			}
		}},
		{"continuation", func(w *xhttp2.Framer, i int) {
			if i == 0 {
				w.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: get[:1]})
			}
			for range 64 {
				w.WriteContinuation(1, false, []byte{0x40, 0x01, 'a', 0x01, 'b'})
			}
		}},
		{"hpack-bomb", func(w *xhttp2.Framer, i int) {
			for j := range 16 {
				id := uint32(2*(16*i+j) + 1)
				w.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: bombBlock(), EndStream: true, EndHeaders: true})
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runFlood(t, addr, 20000, false, tc.batch)
			if !r.gotAway || r.goAway != xhttp2.ErrCodeEnhanceYourCalm {
				t.Fatalf("after %d batches: GOAWAY %v (received %v), want ENHANCE_YOUR_CALM", r.batches, r.goAway, r.gotAway)
			}
			if !r.closed {
				t.Fatal("the server did not close the connection after its GOAWAY")
			}
			if grew := int64(r.heapPeak) - int64(r.heapBase); grew > 32<<20 {
				t.Fatalf("heap grew by %d MiB during the flood", grew>>20)
			}
			if tc.name == "hpack-bomb" && r.status["431"] == 0 {
				t.Fatalf("no 431 for the bombs (statuses %v)", r.status)
			}
			if strings.HasPrefix(tc.name, "rapid-reset") && r.status["200"] > 256 {
				t.Fatalf("%d attack streams were answered", r.status["200"])
			}
			t.Logf("cut off after %d batches; heap %+d KiB; statuses %v", r.batches, (int64(r.heapPeak)-int64(r.heapBase))>>10, r.status)
		})
	}
}

// TestH2ControlFloodPeerNeverReads: a client that sends PINGs (the PING limit out of the
// way) and never reads the answers cannot make the server queue more than its caps:
// the connection ends (control-frame cap, then the write timeout for the GOAWAY nobody
// reads) and the heap stays bounded.
func TestH2ControlFloodPeerNeverReads(t *testing.T) {
	addr := startFloodServer(t, http2.Config{MaxPings: 1 << 30})
	start := time.Now()
	r := runFlood(t, addr, 1<<20, true, func(w *xhttp2.Framer, i int) {
		for range 256 {
			w.WritePing(false, [8]byte{})
		}
	})
	if !r.closed {
		t.Fatalf("the connection still took writes after %d batches (%v)", r.batches, time.Since(start))
	}
	if grew := int64(r.heapPeak) - int64(r.heapBase); grew > 32<<20 {
		t.Fatalf("heap grew by %d MiB", grew>>20)
	}
	t.Logf("closed after %d batches of 256 PINGs (%v)", r.batches, time.Since(start).Round(time.Millisecond))
}

// TestH2HeaderListRefusalCounted: an HTTP/2 request whose field section passes
// MaxHeaderListSize is answered 431 before any handler and counts in
// Stats.BadRequests (gale_http_bad_requests_total), as HTTP/1.1's too-large head
// does; it counted only as a glitch, so the refusal was in no request metric and,
// like every pre-routing refusal, in no access log.
func TestH2HeaderListRefusalCounted(t *testing.T) {
	h := exchFunc(func(x Exchange) { x.Respond(200, "text/plain", []byte("hello\n")) })
	s, err := New(Options{Handler: h, Workers: 1, WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.ListenHTTP2("127.0.0.1:0", h, HTTP2Options{Config: http2.Config{MaxHeaderListSize: 4096}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	shutdownAtCleanup(t, s)
	nc, err := net.Dial("tcp", l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(nc, xhttp2.ClientPreface)
	fr := xhttp2.NewFramer(nc, nc)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings()
	fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: getBlock("x-big", strings.Repeat("b", 5000)), EndStream: true, EndHeaders: true})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no 431 came: %v", err)
		}
		if mh, ok := f.(*xhttp2.MetaHeadersFrame); ok {
			if got := mh.PseudoValue("status"); got != "431" {
				t.Fatalf("status %s, want 431", got)
			}
			break
		}
	}
	// Counted before the answer is written: no wait needed.
	if st := s.Stats(); st.BadRequests != 1 || st.HTTP2.Glitches[http2.GlitchHeaderList] != 1 {
		t.Fatalf("bad requests %d, header-list glitches %d; want 1 and 1", st.BadRequests, st.HTTP2.Glitches[http2.GlitchHeaderList])
	}
}
