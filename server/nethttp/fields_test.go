package nethttp

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// startStd serves h with net/http's own server, HTTP/1.1 and h2c (prior
// knowledge), until the test ends.
func startStd(t *testing.T, h http.Handler) *httptest.Server {
	std := httptest.NewUnstartedServer(h)
	std.Config.Protocols = new(http.Protocols)
	std.Config.Protocols.SetHTTP1(true)
	std.Config.Protocols.SetUnencryptedHTTP2(true)
	std.Start()
	t.Cleanup(std.Close)
	return std
}

// fieldsView is what a handler sees of a request's fields, for comparison.
func fieldsView(r *http.Request) string {
	var keys []string
	for k, vs := range r.Header {
		if k != "User-Agent" && k != "Accept-Encoding" {
			keys = append(keys, k+"="+strings.Join(vs, "|"))
		}
	}
	slices.Sort(keys)
	var tr []string
	for k := range r.Trailer {
		tr = append(tr, k)
	}
	slices.Sort(tr)
	b, err := io.ReadAll(r.Body)
	return fmt.Sprintf("header=%v trailer=%v cl=%d body=%q err=%v", keys, tr, r.ContentLength, b, err)
}

// TestRequestFieldsAsNetHTTP sends the same requests to the adapter and to
// net/http's own server (HTTP/1.1 and h2c) and compares the handler's view and the
// status: a repeated, equal Content-Length is one field; a Trailer field naming
// Content-Length, Transfer-Encoding or Trailer is refused with 400 on HTTP/1.1; on
// HTTP/2 an Expect: 100-continue is the server's business and leaves the header.
func TestRequestFieldsAsNetHTTP(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, fieldsView(r)) })
	std := startStd(t, h)
	stdAddr := strings.TrimPrefix(std.URL, "http://")
	h1 := []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\nConnection: close\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, trailer\r\nConnection: close\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nabc",
	}
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, h)
		view := func(addr, raw string) string {
			c := testkit.Dial(t, addr)
			io.WriteString(c, raw)
			resp := testkit.ReadResponse(t, bufio.NewReader(c), "POST")
			body := testkit.Body(t, resp)
			if resp.StatusCode != 200 {
				body = "" // the error texts differ
			}
			return fmt.Sprintf("%d %s", resp.StatusCode, body)
		}
		for _, raw := range h1 {
			if g, w := view(addr, raw), view(stdAddr, raw); g != w {
				t.Errorf("HTTP/1.1 %q:\n got  %s\n want %s", raw, g, w)
			}
		}
		h2 := h2cClient(t)
		post := func(url string) string {
			req, _ := http.NewRequest("POST", url, strings.NewReader("abc"))
			req.Header.Set("Expect", "100-continue")
			resp, err := h2.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%d %s", resp.StatusCode, testkit.Body(t, resp))
		}
		if g, w := post("http://"+addr+"/"), post(std.URL+"/"); g != w {
			t.Errorf("HTTP/2 Expect: 100-continue:\n got  %s\n want %s", g, w)
		}
	})
}

// TestResponseFieldLineBreaksAsNetHTTP: a response field value holding CR or LF
// reaches an HTTP/1.1 client with spaces for them, as net/http's server writes it
// (never as a second field the handler did not set), and is left out on HTTP/2,
// as net/http's HTTP/2 server leaves it out; leading and trailing blanks are
// trimmed on HTTP/1.1, as there.
func TestResponseFieldLineBreaksAsNetHTTP(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-A", "a\r\nInjected: 1")
		w.Header().Set("X-B", "b\n")
		w.Header().Set("X-C", "c")
		w.Header().Set("X-D", " d\t")
		io.WriteString(w, "x")
	})
	std := startStd(t, h)
	fields := func(hd http.Header) string {
		return fmt.Sprintf("%q %q %q %q %q", hd["X-A"], hd["X-B"], hd["X-C"], hd["Injected"], hd["X-D"])
	}
	// The raw field lines, which http.ReadResponse would trim.
	line := func(addr, name string) string {
		c := testkit.Dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		for _, l := range strings.Split(string(b), "\r\n") {
			if strings.HasPrefix(l, name+":") {
				return l
			}
		}
		return ""
	}
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, h)
		want, _ := rawGet(t, strings.TrimPrefix(std.URL, "http://"), "GET", "/")
		got, _ := rawGet(t, addr, "GET", "/")
		if g, w := fields(got.Header), fields(want.Header); g != w {
			t.Errorf("HTTP/1.1 fields %s, net/http sends %s", g, w)
		}
		if g, w := line(addr, "X-D"), line(strings.TrimPrefix(std.URL, "http://"), "X-D"); g != w {
			t.Errorf("HTTP/1.1 field line %q, net/http sends %q", g, w)
		}
		h2 := h2cClient(t)
		get := func(url string) http.Header {
			resp, err := h2.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			testkit.Body(t, resp)
			return resp.Header
		}
		if g, w := fields(get("http://"+addr+"/")), fields(get(std.URL+"/")); g != w {
			t.Errorf("HTTP/2 fields %s, net/http sends %s", g, w)
		}
	})
}

// TestMaxBytesReaderClosesAsNetHTTP: a handler that limits the body with
// http.MaxBytesReader and answers 413 gets its connection closed after the answer,
// as net/http's server closes it, instead of the rest of the body being read and
// a pipelined request served.
func TestMaxBytesReaderClosesAsNetHTTP(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 10)); err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		io.WriteString(w, "ok")
	})
	std := startStd(t, h)
	raw := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("b", 1000) +
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	answers := func(addr string) string {
		c := testkit.Dial(t, addr)
		io.WriteString(c, raw)
		br := bufio.NewReader(c)
		resp := testkit.ReadResponse(t, br, "POST")
		testkit.Body(t, resp)
		out := fmt.Sprintf("%d close=%v", resp.StatusCode, resp.Close)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
			out += fmt.Sprintf(" then %q %v", rest, err)
		}
		return out
	}
	want := answers(strings.TrimPrefix(std.URL, "http://"))
	onEngines(t, func(t *testing.T, eng string) {
		if got := answers(startOn(t, eng, h)); got != want {
			t.Fatalf("got %s; net/http: %s", got, want)
		}
	})
}

// TestSwitchingProtocolsWithoutHijackAsNetHTTP: a handler that answers
// WriteHeader(101) and returns without hijacking sends the bare 101 head with its
// fields, as net/http's server does, instead of a 500 carrying them; the
// connection then closes (nothing can follow but the protocol nobody took over).
// A Flush after WriteHeader(101) does not send it early: a Hijack that follows
// still writes it, once.
func TestSwitchingProtocolsWithoutHijackAsNetHTTP(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "foo")
		w.Header().Set("Connection", "Upgrade")
		w.WriteHeader(http.StatusSwitchingProtocols)
		if r.URL.Path != "/hijack" {
			return
		}
		w.(http.Flusher).Flush()
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		line, _ := brw.ReadString('\n')
		io.WriteString(conn, "echo "+line)
	})
	std := startStd(t, h)
	head := func(t *testing.T, addr string) string {
		c := testkit.Dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d %q %q", resp.StatusCode, resp.Header["Upgrade"], resp.Header["Connection"])
	}
	want := head(t, strings.TrimPrefix(std.URL, "http://"))
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, h)
		if got := head(t, addr); got != want {
			t.Errorf("bare 101: %s, net/http sends %s", got, want)
		}
		c := testkit.Dial(t, addr)
		io.WriteString(c, "GET /hijack HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\nhello\n")
		rest, err := io.ReadAll(c)
		if err != nil || strings.Count(string(rest), "101 Switching Protocols") != 1 || !strings.HasSuffix(string(rest), "\r\n\r\necho hello\n") {
			t.Errorf("101, Flush, Hijack: %q %v; want one 101 head, then the echo", rest, err)
		}
	})
}
