package app

import (
	"bufio"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/http1"
)

// rawFetch sends a GET for target on a fresh connection and returns status and body.
func rawFetch(t *testing.T, addr, target, accept string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	head := "GET " + target + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
	if accept != "" {
		head += "Accept: " + accept + "\r\n"
	}
	if _, err := c.Write([]byte(head + "\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %q: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestListingLinksAreServed creates files whose names hold every awkward byte and
// checks that the listing and the request path agree: every link the listing shows
// (HTML and JSON) serves its file, and every name it leaves out is one no request
// path can name (its escaped form is refused with 400).
func TestListingLinksAreServed(t *testing.T) {
	dir := t.TempDir()
	names := []string{
		`back\slash`, "100%", "100%25", "q?x", "h#x", "sp ace", `quo"te`, "apo'st",
		"non-utf8-\xff\xfe", "semi;colon", "new\nline", "tab\tx", "..;x", ".;y", "<b>&amp;",
		"plus+eq=", "colon:at@", "tilde~", "caf\u00e9", "%2e%2e", "%2F", "a%00", "star*",
		"dir with space/",
	}
	for i, n := range names {
		p := filepath.Join(dir, n)
		if strings.HasSuffix(n, "/") {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(p, "inner.txt"), []byte("inner"), 0o644)
			continue
		}
		if err := os.WriteFile(p, []byte("body-"+string(rune('A'+i))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, addr := startApp(t, `
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - static: { root: `+dir+`, browse: true, dotfiles: allow }
`)
	st, page := rawFetch(t, addr, "/", "")
	if st != 200 {
		t.Fatalf("listing: %d", st)
	}
	hrefs := map[string]bool{}
	for _, m := range regexp.MustCompile(`href="\./([^"]*)"`).FindAllStringSubmatch(page, -1) {
		hrefs[html.UnescapeString(m[1])] = true
	}
	_, js := rawFetch(t, addr, "/", "application/json")
	var l struct {
		Entries []struct {
			Name, Href string
			Dir        bool
		}
	}
	if err := json.Unmarshal([]byte(js), &l); err != nil {
		t.Fatalf("JSON listing: %v\n%s", err, js)
	}
	jsonHrefs := map[string]bool{}
	for _, e := range l.Entries {
		if !strings.HasPrefix(e.Href, "./") {
			t.Errorf("JSON entry %q: href %q", e.Name, e.Href)
		}
		jsonHrefs[strings.TrimPrefix(e.Href, "./")] = true
	}
	for _, n := range names {
		esc := string(http1.AppendEscapedPath(nil, []byte(n)))
		listed := hrefs[esc]
		if listed != jsonHrefs[esc] {
			t.Errorf("%q: HTML listing %v, JSON listing %v", n, listed, jsonHrefs[esc])
		}
		status, body := rawFetch(t, addr, "/"+esc, "")
		switch {
		case listed && strings.HasSuffix(n, "/"):
			if status != 200 || !strings.Contains(body, "inner.txt") {
				t.Errorf("listed directory %q (link %q): %d", n, esc, status)
			}
		case listed:
			if status != 200 || !strings.HasPrefix(body, "body-") {
				t.Errorf("listed %q (link %q): %d %q", n, esc, status, body)
			}
		case status != 400:
			t.Errorf("%q is not listed but /%s answers %d", n, esc, status)
		}
		delete(hrefs, esc)
	}
	if len(hrefs) != 0 {
		t.Errorf("links to names that were not created: %v", hrefs)
	}
}
