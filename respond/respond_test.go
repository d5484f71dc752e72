package respond

import (
	"io"
	"net/http"
	"testing"

	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
)

func newHandler(t *testing.T, status int, hdr map[string]string, body string) *Handler {
	t.Helper()
	r, err := New(status, hdr, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestOverHTTP1 serves the action on a real socket to Go's HTTP client.
func TestOverHTTP1(t *testing.T) {
	r := newHandler(t, 201, map[string]string{"Content-Type": "text/plain", "X-A": "b"}, "made")
	s := servertest.Start(t, r, nil)
	resp, err := http.Get("http://" + s.Addr() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("X-A") != "b" || string(b) != "made" || resp.ContentLength != 4 {
		t.Fatalf("bad respond: %d %v %q", resp.StatusCode, resp.Header, b)
	}
}

// TestOverExchange serves the same action through the in-memory, non-HTTP/1
// Exchange: status, fields and body arrive the same way, which is the seam an
// HTTP/2 stream will use.
func TestOverExchange(t *testing.T) {
	r := newHandler(t, 201, map[string]string{"Content-Type": "text/plain", "X-A": "b"}, "made")
	x := servertest.New("GET", "/x")
	x.TB = t
	var h server.ExchangeHandler = r
	h.ServeExchange(x)
	if !x.Done || x.Status != 201 || x.Get("X-A") != "b" || x.Get("Content-Type") != "text/plain" ||
		x.Body.String() != "made" || x.ContentLength != 4 {
		t.Fatalf("bad response: %v", x)
	}

	head := servertest.New("HEAD", "/x")
	head.TB = t
	r.ServeExchange(head)
	if head.Status != 201 || head.Body.Len() != 0 || head.ContentLength != 4 {
		t.Fatalf("HEAD: %v (length %d)", head, head.ContentLength)
	}

	nc := newHandler(t, 204, nil, "ignored")
	x204 := servertest.New("GET", "/")
	x204.TB = t
	nc.ServeExchange(x204)
	if x204.Status != 204 || x204.Body.Len() != 0 || !x204.Done {
		t.Fatalf("204: %v", x204)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		status int
		hdr    map[string]string
	}{
		{199, nil},
		{1000, nil},
		{200, map[string]string{"Content-Length": "3"}},
		{200, map[string]string{"transfer-encoding": "chunked"}},
		{200, map[string]string{"CONNECTION": "close"}},
		{200, map[string]string{"X": "a\r\nb"}},
		{200, map[string]string{"Bad Name": "v"}},
		{200, map[string]string{"": "v"}},
	} {
		if _, err := New(tc.status, tc.hdr, ""); err == nil {
			t.Errorf("New(%d, %v) accepted", tc.status, tc.hdr)
		} else if _, ok := err.(*ConfigError); !ok {
			t.Errorf("New(%d, %v): error %T, want *ConfigError", tc.status, tc.hdr, err)
		}
	}
}
