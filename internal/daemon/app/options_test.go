package app

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
)

// TestOptionsAsterisk: "OPTIONS *" asks about the server as a whole (RFC 9110 §9.3.7);
// no route's path matches "*", and the router answers an empty 200 rather than a 404,
// over HTTP/1.1 (with the connection kept) and over h2c. Other unmatched requests are
// still 404.
func TestOptionsAsterisk(t *testing.T) {
	_, addr := startApp(t, `
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]
    routes:
      - match: { path: /files/ }
        respond: { status: 200, body: files }
`)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\nOPTIONS /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []int{200, 404} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("want %d: %v", want, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want || (want == 200 && (len(body) != 0 || resp.ContentLength != 0)) {
			t.Fatalf("got %d %q (length %d), want %d", resp.StatusCode, body, resp.ContentLength, want)
		}
	}
	req := &http.Request{Method: "OPTIONS", URL: &url.URL{Scheme: "http", Host: addr, Opaque: "*"}, Host: addr, Header: http.Header{}}
	resp, err := h2c(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("h2c OPTIONS *: %d over HTTP/%d", resp.StatusCode, resp.ProtoMajor)
	}
}
