package http1

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAppendStatusLine(t *testing.T) {
	cases := []struct {
		minor, status int
		want          string
	}{
		{1, 200, "HTTP/1.1 200 OK\r\n"},
		{0, 404, "HTTP/1.0 404 Not Found\r\n"},
		{1, 103, "HTTP/1.1 103 Early Hints\r\n"},
		{1, 431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
		{1, 599, "HTTP/1.1 599 \r\n"},
		{1, 42, "HTTP/1.1 500 Internal Server Error\r\n"},
		{7, 204, "HTTP/1.1 204 No Content\r\n"},
	}
	for _, c := range cases {
		if got := string(AppendStatusLine([]byte("x"), c.minor, c.status)); got != "x"+c.want {
			t.Errorf("AppendStatusLine(%d, %d) = %q, want %q", c.minor, c.status, got, c.want)
		}
	}
}

// TestStatusTextRegistered compares the reason phrases with net/http's, an independent
// list of the same registry, for every code either knows.
func TestStatusTextRegistered(t *testing.T) {
	for code := 100; code < 600; code++ {
		mine, theirs := StatusText(code), http.StatusText(code)
		if code == 413 || code == 414 || code == 416 || code == 422 {
			// RFC 9110 renamed these; net/http keeps the older phrases.
			if mine == "" {
				t.Errorf("StatusText(%d) is empty", code)
			}
			continue
		}
		if mine != theirs {
			t.Errorf("StatusText(%d) = %q, net/http has %q", code, mine, theirs)
		}
	}
}

func TestAppendHeader(t *testing.T) {
	if got := string(AppendHeader(nil, "Content-Type", "text/plain")); got != "Content-Type: text/plain\r\n" {
		t.Fatal(got)
	}
	if got := string(AppendHeader(nil, "X\r\nEvil", "a\r\nSet-Cookie: x\x00")); got != "X--Evil: a  Set-Cookie: x \r\n" {
		t.Fatalf("%q", got)
	}
	if got := string(AppendHeaderBytes(nil, []byte("A b"), []byte("v\n"))); got != "A-b: v \r\n" {
		t.Fatalf("%q", got)
	}
	if got := string(AppendHeaderInt(nil, "Content-Length", 1234567)); got != "Content-Length: 1234567\r\n" {
		t.Fatal(got)
	}
	for _, v := range []int64{0, -5, 1<<63 - 1, -1 << 63} {
		got := string(appendInt(nil, v))
		if want := strconv.FormatInt(v, 10); got != want {
			t.Errorf("appendInt(%d) = %q", v, got)
		}
	}
	if got := string(AppendContinue(nil)); got != "HTTP/1.1 100 Continue\r\n\r\n" {
		t.Fatal(got)
	}
}

func TestAppendChunk(t *testing.T) {
	if got := AppendChunk([]byte("x"), nil); string(got) != "x" {
		t.Fatalf("empty chunk wrote %q", got)
	}
	if got := string(AppendChunk(nil, []byte(strings.Repeat("a", 26)))); got != "1a\r\n"+strings.Repeat("a", 26)+"\r\n" {
		t.Fatal(got)
	}
	if got := string(AppendChunkHeader(nil, 4096)); got != "1000\r\n" {
		t.Fatal(got)
	}
	if got := string(AppendLastChunk(nil, nil)); got != "0\r\n\r\n" {
		t.Fatal(got)
	}
	tr := []Header{{Name: []byte("A"), Value: []byte("1")}, {Name: []byte("B"), Value: []byte("2")}}
	if got := string(AppendLastChunk(nil, tr)); got != "0\r\nA: 1\r\nB: 2\r\n\r\n" {
		t.Fatal(got)
	}
}

func TestAppendDate(t *testing.T) {
	at := time.Date(2024, 2, 29, 13, 4, 5, 0, time.FixedZone("X", 3600))
	want := "Date: Thu, 29 Feb 2024 12:04:05 GMT\r\n"
	if got := string(AppendDateAt(nil, at)); got != want {
		t.Fatalf("%q", got)
	}
	// Cached for the same second, re-rendered for the next.
	if got := string(AppendDateAt([]byte("x"), at.Add(999*time.Millisecond))); got != "x"+want {
		t.Fatalf("%q", got)
	}
	if got := string(AppendDateAt(nil, at.Add(time.Second))); got != "Date: Thu, 29 Feb 2024 12:04:06 GMT\r\n" {
		t.Fatalf("%q", got)
	}
	now := string(AppendDate(nil))
	parsed, err := time.Parse("Mon, 02 Jan 2006 15:04:05 GMT", strings.TrimSuffix(strings.TrimPrefix(now, "Date: "), "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(parsed); d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("AppendDate is %v away from now", d)
	}
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() { buf = AppendDateAt(buf[:0], at) })
	if allocs != 0 {
		t.Fatalf("AppendDateAt allocated %v times within one second", allocs)
	}
}

func TestAppendHelpersNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 4096)
	body := []byte("hello")
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendStatusLine(buf[:0], 1, 200)
		b = AppendHeader(b, "Content-Type", "text/plain")
		b = AppendHeaderInt(b, "Content-Length", 5)
		b = AppendChunk(b, body)
		buf = AppendLastChunk(b, nil)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}
