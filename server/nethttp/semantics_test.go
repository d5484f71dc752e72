package nethttp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// onEngines runs f once per Linux engine (startOn skips io_uring where the
// kernel does not offer it).
func onEngines(t *testing.T, f func(t *testing.T, eng string)) {
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) { f(t, eng) })
	}
}

// startOn serves h through the adapter on engine eng (empty: the default), with
// HTTP/1.1 and h2c (prior knowledge) on one listener, and returns the address.
func startOn(t *testing.T, eng string, h http.Handler) string {
	t.Helper()
	return startTimed(t, eng, h, Options{}, 0)
}

// rawGet sends one HTTP/1.1 request for path on a new connection and returns
// the parsed response with its body read (so its Trailer is filled in).
func rawGet(t *testing.T, addr, method, path string) (*http.Response, string) {
	t.Helper()
	c := testkit.Dial(t, addr)
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method, path)
	resp := testkit.ReadResponse(t, bufio.NewReader(c), method)
	return resp, testkit.Body(t, resp)
}

// TestSmallResponseKeepsItsTrailers: a handler that declares a trailer (or sets
// one with http.TrailerPrefix) and writes a body too small to be flushed gets a
// chunked response whose trailer reaches the client, as net/http sends it, not a
// Content-Length that leaves the trailer nowhere to go; no empty Trailer field is
// announced for prefixed ones. An HTTP/1.0 client, which cannot get trailers, still
// gets the length, and so does an HTTP/2 one, whose trailers need no chunking.
func TestSmallResponseKeepsItsTrailers(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/declared", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "body")
		w.Header().Set("X-Sum", "abc")
	})
	mux.HandleFunc("/prefixed", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "body")
		w.Header().Set(http.TrailerPrefix+"X-Sum", "abc")
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-Sum", "abc")
	})
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, mux)
		h2 := h2cClient(t)
		for _, path := range []string{"/declared", "/prefixed", "/empty"} {
			resp, body := rawGet(t, addr, "GET", path)
			if got := resp.Trailer.Get("X-Sum"); got != "abc" || resp.ContentLength != -1 {
				t.Errorf("HTTP/1.1 %s: trailer %q, Content-Length %d, body %q; want the trailer on a chunked body", path, got, resp.ContentLength, body)
			}
			if v, ok := resp.Header["Trailer"]; ok && strings.TrimSpace(strings.Join(v, "")) == "" {
				t.Errorf("HTTP/1.1 %s: an empty Trailer field was sent", path)
			}
			c := testkit.Dial(t, addr)
			fmt.Fprintf(c, "GET %s HTTP/1.0\r\n\r\n", path)
			resp = testkit.ReadResponse(t, bufio.NewReader(c), "GET")
			if b := testkit.Body(t, resp); resp.ContentLength != int64(len(b)) {
				t.Errorf("HTTP/1.0 %s: Content-Length %d for %d bytes; want the length, as it cannot get trailers", path, resp.ContentLength, len(b))
			}
			resp, err := h2.Get("http://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			b := testkit.Body(t, resp)
			if got := resp.Trailer.Get("X-Sum"); got != "abc" {
				t.Errorf("HTTP/2 %s: trailer %q, want abc", path, got)
			}
			if b != "" && resp.ContentLength != int64(len(b)) {
				t.Errorf("HTTP/2 %s: content-length %d for %d bytes; net/http sends the length beside trailers", path, resp.ContentLength, len(b))
			}
		}
	})
}

// TestContentTypeAsNetHTTP compares the Content-Type fields of the adapter's
// responses, to GET and to HEAD, over HTTP/1.1 and HTTP/2, with those net/http's
// own server sends for the same handler: sniffed when the handler set none (HEAD
// included, whose body is not sent), none when it set the key without a value,
// its own when it set an empty one (never a second, sniffed one), and none after a
// Content-Encoding, and none on a 304 (RFC 9110 §15.4.5; nginx drops it too).
// The HTTP/2 answers are compared with net/http's HTTP/2 server's, which sniffs
// past a Transfer-Encoding the handler set, as its HTTP/1 server does not.
func TestContentTypeAsNetHTTP(t *testing.T) {
	mux := http.NewServeMux()
	page := "<html><body>hello</body></html>"
	mux.HandleFunc("/sniffed", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, page) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, page+strings.Repeat(" ", 5000)) })
	mux.HandleFunc("/nil", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		io.WriteString(w, page)
	})
	// with writes the page after setting one header field.
	with := func(name, value string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(name, value)
			io.WriteString(w, page)
		}
	}
	mux.Handle("/empty", with("Content-Type", ""))
	mux.Handle("/encoded", with("Content-Encoding", "identity"))
	mux.Handle("/set", with("Content-Type", "application/x-custom"))
	mux.Handle("/te", with("Transfer-Encoding", "chunked"))
	mux.HandleFunc("/304", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusNotModified)
	})
	std := startStd(t, mux)
	h2 := h2cClient(t)
	h2get := func(method, url string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		resp, err := h2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		testkit.Body(t, resp)
		return resp
	}
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, mux)
		for _, method := range []string{"GET", "HEAD"} {
			for _, path := range []string{"/sniffed", "/big", "/nil", "/empty", "/encoded", "/set", "/te", "/304"} {
				want, _ := rawGet(t, strings.TrimPrefix(std.URL, "http://"), method, path)
				got, _ := rawGet(t, addr, method, path)
				if w, g := want.Header["Content-Type"], got.Header["Content-Type"]; !slices.Equal(w, g) {
					t.Errorf("HTTP/1.1 %s %s: Content-Type %q, net/http sends %q", method, path, g, w)
				}
				// net/http's HTTP/2 server sniffs past a Transfer-Encoding (it has
				// no chunking to stand for), its HTTP/1 server does not. Its HTTP/2
				// 304 keeps the type, which the adapter drops on both protocols.
				want2 := want
				if path != "/304" {
					want2 = h2get(method, std.URL+path)
				}
				if w, g := want2.Header["Content-Type"], h2get(method, "http://"+addr+path).Header["Content-Type"]; !slices.Equal(w, g) {
					t.Errorf("HTTP/2 %s %s: Content-Type %q, net/http sends %q", method, path, g, w)
				}
			}
		}
	})
}

// TestHandlerDateAndServerReplaceTheServers: a handler that sets its own Date or
// Server field sends that one field, as with net/http, instead of a second beside
// the server's; a handler that sets neither gets the server's; one that sets
// Header()["Date"] = nil gets no Date, as net/http's doc promises; over HTTP/1.1
// and HTTP/2.
func TestHandlerDateAndServerReplaceTheServers(t *testing.T) {
	const date = "Sun, 06 Nov 1994 08:49:37 GMT"
	mux := http.NewServeMux()
	mux.HandleFunc("/own", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", date)
		w.Header().Set("Server", "app/1.0")
		io.WriteString(w, "x")
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") })
	mux.HandleFunc("/nodate", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		io.WriteString(w, "x")
	})
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, mux)
		h2 := h2cClient(t)
		check := func(proto, path string, h http.Header) {
			t.Helper()
			d, s := h["Date"], h["Server"]
			if path == "/own" && (!slices.Equal(d, []string{date}) || !slices.Equal(s, []string{"app/1.0"})) {
				t.Errorf("%s %s: Date %q, Server %q; want only the handler's", proto, path, d, s)
			}
			if path == "/plain" && (len(d) != 1 || !slices.Equal(s, []string{"gale"})) {
				t.Errorf("%s %s: Date %q, Server %q; want the server's", proto, path, d, s)
			}
			if _, ok := h["Date"]; path == "/nodate" && ok {
				t.Errorf("%s %s: Date %q; the handler asked for none", proto, path, d)
			}
		}
		for _, path := range []string{"/own", "/plain", "/nodate"} {
			resp, _ := rawGet(t, addr, "GET", path)
			check("HTTP/1.1", path, resp.Header)
			resp, err := h2.Get("http://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			testkit.Body(t, resp)
			check("HTTP/2", path, resp.Header)
		}
	})
}

// TestOneContinueThroughReverseProxy: an httputil.ReverseProxy behind the adapter
// relays its upstream's 100 Continue with WriteHeader(100) before it reads the
// body; the client gets that one 100, not a second one when the body is read (as
// net/http's server sends it once), and then the answer.
func TestOneContinueThroughReverseProxy(t *testing.T) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	}))
	defer back.Close()
	u, _ := url.Parse(back.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	onEngines(t, func(t *testing.T, eng string) {
		c := testkit.Dial(t, startOn(t, eng, rp))
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
		br := bufio.NewReader(c)
		if line, err := br.ReadString('\n'); err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("first line %q (%v), want 100 Continue", line, err)
		}
		io.WriteString(c, "hello")
		rest, _ := io.ReadAll(br)
		if n := strings.Count(string(rest), "100 Continue"); n != 0 || !strings.HasSuffix(string(rest), "got hello") {
			t.Errorf("%d more 100 Continue, response %q", n, rest)
		}
	})
}

// TestAbortAfterHijackLeavesConnection: a handler that hijacks its connection
// and then panics with http.ErrAbortHandler has given the connection away: as
// with net/http, the server leaves it to the goroutine that now owns it (which
// answers and closes it here), instead of resetting it under that goroutine.
func TestAbortAfterHijackLeavesConnection(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		go func() {
			<-r.Context().Done() // the handler has returned
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
			conn.Close()
		}()
		panic(http.ErrAbortHandler)
	})
	onEngines(t, func(t *testing.T, eng string) {
		resp, body := rawGet(t, startOn(t, eng, h), "GET", "/")
		if resp.StatusCode != 200 || body != "hello" {
			t.Errorf("status %d body %q, want the owner's 200 hello", resp.StatusCode, body)
		}
	})
}

// TestOptionsAsteriskAnsweredAsNetHTTP: "OPTIONS *" gets the 200 with an empty
// body that net/http's server gives it before any handler runs (a ServeMux would
// answer the asterisk 400), over HTTP/1.1 and HTTP/2.
func TestOptionsAsteriskAnsweredAsNetHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "handler") })
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, mux)
		resp, body := rawGet(t, addr, "OPTIONS", "*")
		if resp.StatusCode != 200 || body != "" || resp.ContentLength != 0 {
			t.Errorf("HTTP/1.1: status %d, Content-Length %d, body %q; want 200 and no body", resp.StatusCode, resp.ContentLength, body)
		}
		_, fr := testkit.H2Open(t, addr)
		if err := testkit.H2Request(fr, 1, "OPTIONS", "*"); err != nil {
			t.Fatal(err)
		}
		dec := hpack.NewDecoder(4096, nil)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if h, ok := f.(*http2.HeadersFrame); ok {
				fields, err := dec.DecodeFull(h.HeaderBlockFragment())
				if err != nil || len(fields) == 0 || fields[0].Value != "200" || !h.StreamEnded() {
					t.Errorf("HTTP/2: head %v (%v), ends stream %v; want 200 and no body", fields, err, h.StreamEnded())
				}
				break
			}
		}
	})
}

// TestH2ContinueWhenBodyRead: an HTTP/2 request with "expect: 100-continue" gets
// a 100 once the handler reads the body, as net/http's HTTP/2 server sends it
// (and as on HTTP/1.1), so that a client holding its body back need not wait out
// its own timeout; then the answer. It gets one 100, never more: a handler that
// writes its own first (an httputil.ReverseProxy relays its upstream's; /own
// writes two) sends one, and reading the body adds none.
func TestH2ContinueWhenBodyRead(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/own" {
			w.WriteHeader(http.StatusContinue)
			w.WriteHeader(http.StatusContinue)
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	})
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, h)
		for _, path := range []string{"/", "/own"} {
			_, fr := testkit.H2Open(t, addr)
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", path}, {":authority", "x"}, {"expect", "100-continue"}} {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
			dec := hpack.NewDecoder(4096, nil)
			var statuses []string
			var body []byte
			for done := false; !done; {
				f, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("%s: after statuses %v: %v", path, statuses, err)
				}
				switch f := f.(type) {
				case *http2.HeadersFrame:
					fields, _ := dec.DecodeFull(f.HeaderBlockFragment())
					statuses = append(statuses, fields[0].Value)
					if len(statuses) == 1 && fields[0].Value == "100" {
						fr.WriteData(1, true, []byte("hello")) // the body, only now
					}
				case *http2.DataFrame:
					body = append(body, f.Data()...)
					done = f.StreamEnded()
				}
			}
			if !slices.Equal(statuses, []string{"100", "200"}) || string(body) != "got hello" {
				t.Errorf("%s: statuses %v, body %q; want 100, then 200 with the body", path, statuses, body)
			}
		}
	})
}

// TestChunkedRequestAsNetHTTP: a chunked request with a trailer, declared or not,
// reaches the handler as net/http's server gives it: Transfer-Encoding and Trailer
// out of the header (in TransferEncoding and Trailer), and the trailer field in
// r.Trailer once the body is read, over HTTP/1.1 and HTTP/2.
func TestChunkedRequestAsNetHTTP(t *testing.T) {
	type view struct {
		Header         http.Header
		TE             []string
		Trailer        http.Header
		ContentLength  int64
		Body, Protocol string
	}
	seen := make(chan view, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Header.Del("User-Agent")
		r.Header.Del("Accept-Encoding")
		seen <- view{r.Header, r.TransferEncoding, r.Trailer, r.ContentLength, string(b), r.Proto}
	})
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, h)
		for _, declare := range []string{"Trailer: X-Sum\r\n", ""} {
			raw := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + declare + "X-A: 1\r\n\r\n" +
				"5\r\nhello\r\n0\r\nX-Sum: abc\r\n\r\n"
			want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
			if err != nil {
				t.Fatal(err)
			}
			wantBody, _ := io.ReadAll(want.Body)
			c := testkit.Dial(t, addr)
			io.WriteString(c, raw)
			testkit.Body(t, testkit.ReadResponse(t, bufio.NewReader(c), "POST"))
			got := <-seen
			if !reflect.DeepEqual(got, view{want.Header, want.TransferEncoding, want.Trailer, want.ContentLength, string(wantBody), "HTTP/1.1"}) {
				t.Errorf("HTTP/1.1 %q: handler saw %+v\nnet/http gives %+v %q %+v %d", declare, got, want.Header, want.TransferEncoding, want.Trailer, want.ContentLength)
			}
		}
		req, _ := http.NewRequest("POST", "http://"+addr+"/", io.MultiReader(strings.NewReader("hello")))
		req.Header.Set("X-A", "1")
		req.Trailer = http.Header{"X-Sum": {"abc"}}
		resp, err := h2cClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		testkit.Body(t, resp)
		got := <-seen
		if _, ok := got.Header["Trailer"]; ok || got.Trailer.Get("X-Sum") != "abc" || got.Body != "hello" {
			t.Errorf("HTTP/2 handler saw header %q, trailer %q, body %q; want the trailer out of the header", got.Header, got.Trailer, got.Body)
		}
	})
}
