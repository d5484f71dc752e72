package static

import (
	"bufio"
	"fmt"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// TestServeHeadTakesRange: a HEAD gets the head a GET would, Range included (RFC 9110
// §9.3.2), as nginx and Go's net/http answer. HEAD ignored Range, so "HEAD" with
// "Range: bytes=0-1" was a 200 with the whole Content-Length, where GET gave 206 with
// Content-Range and Content-Length 2, and tools that probe with a HEAD whether a
// download can be resumed saw none.
func TestServeHeadTakesRange(t *testing.T) {
	root := t.TempDir()
	big := bigContent(100 << 10) // sent with SendFile
	writeTree(t, root, map[string]string{"small.txt": "0123456789", "big.bin": big})
	h := newHandler(t, Options{Root: root})
	for _, tc := range []struct {
		path, rng           string
		status              int
		contentRange, ctype string
	}{
		{"/small.txt", "bytes=0-1", 206, "bytes 0-1/10", "text/plain; charset=utf-8"},
		{"/big.bin", "bytes=1000-1999", 206, "bytes 1000-1999/102400", "application/octet-stream"},
		{"/small.txt", "bytes=0-1,5-6", 206, "", "multipart/byteranges; boundary="},
		{"/big.bin", "bytes=0-9,50000-", 206, "", "multipart/byteranges; boundary="},
		{"/small.txt", "bytes=20-", 416, "bytes */10", "text/plain; charset=utf-8"},
		{"/small.txt", "bytes=5-1", 200, "", "text/plain; charset=utf-8"}, // malformed: ignored
	} {
		get := do(t, h, "GET", tc.path, "Range", tc.rng)
		head := do(t, h, "HEAD", tc.path, "Range", tc.rng)
		if head.Status != tc.status || get.Status != tc.status {
			t.Errorf("%s %s: HEAD %d, GET %d, want %d", tc.path, tc.rng, head.Status, get.Status, tc.status)
		}
		if head.Get("Content-Range") != tc.contentRange || !strings.HasPrefix(head.Get("Content-Type"), tc.ctype) {
			t.Errorf("%s %s: HEAD Content-Range %q, Content-Type %q", tc.path, tc.rng, head.Get("Content-Range"), head.Get("Content-Type"))
		}
		if head.Body.Len() != 0 || head.SendFiles != 0 {
			t.Errorf("%s %s: HEAD sent %d body bytes, %d sendfiles", tc.path, tc.rng, head.Body.Len(), head.SendFiles)
		}
		// The boundary is per response, the same length for consecutive ones here.
		if tc.status != 416 && head.ContentLength != int64(get.Body.Len()) {
			t.Errorf("%s %s: HEAD Content-Length %d, GET body %d bytes", tc.path, tc.rng, head.ContentLength, get.Body.Len())
		}
	}

	// Over a socket the connection goes on after each HEAD: no body byte was sent.
	base := startGale(t, h)
	c := testkit.Dial(t, strings.TrimPrefix(base, "http://"))
	fmt.Fprintf(c, "HEAD /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-99\r\n\r\n"+
		"HEAD /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9,200-209\r\n\r\n"+
		"GET /small.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=2-3\r\n\r\n")
	br := bufio.NewReader(c)
	if r := testkit.ReadResponse(t, br, "HEAD"); r.StatusCode != 206 || r.ContentLength != 100 || r.Header.Get("Content-Range") != "bytes 0-99/102400" {
		t.Fatalf("HEAD single range: %d, Content-Length %d, %v", r.StatusCode, r.ContentLength, r.Header)
	}
	if r := testkit.ReadResponse(t, br, "HEAD"); r.StatusCode != 206 || !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/byteranges") {
		t.Fatalf("HEAD multipart: %d, %v", r.StatusCode, r.Header)
	}
	if r := testkit.ReadResponse(t, br, "GET"); r.StatusCode != 206 || testkit.Body(t, r) != "23" {
		t.Fatalf("GET after the HEADs: %d", r.StatusCode)
	}
}
