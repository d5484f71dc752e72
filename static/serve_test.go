package static

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var siteFiles = map[string]string{
	"index.html":        "<h1>home</h1>",
	"app.js":            "console.log('identity')",
	"app.js.br":         "BROTLI",
	"app.js.gz":         "GZIP",
	"app.js.zst":        "ZSTD",
	"small.txt":         "0123456789",
	"empty.txt":         "",
	"docs/index.html":   "<h1>docs</h1>",
	"docs/guide.txt":    "guide",
	"assets/a.css":      "a{}",
	"assets/sub/":       "",
	"assets/<b>&'x.txt": "weird",
	"assets/.env":       "SECRET-ENV",
	"my dir/f.txt":      "spaced",
	".env":              "SECRET-ENV",
	".well-known/acme":  "token",
}

var bigBody = bigContent(100_000)

func site(t *testing.T, opts Options) (*Handler, string) {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, siteFiles)
	writeTree(t, root, map[string]string{"big.bin": bigBody})
	opts.Root = root
	return newHandler(t, opts), root
}

func expect(t *testing.T, r *recorder, status int, body string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s %s: status %d, want %d (body %q)", r.MethodS, r.PathS, r.Status, status, r.Body.String())
	}
	if body != "\x00" && r.Body.String() != body {
		t.Fatalf("%s %s: body %q, want %q", r.MethodS, r.PathS, r.Body.String(), body)
	}
}

const anyBody = "\x00"

func TestServeFile(t *testing.T) {
	h, _ := site(t, Options{CacheControl: "public, max-age=60"})
	r := do(t, h, "GET", "/small.txt")
	expect(t, r, 200, "0123456789")
	for name, want := range map[string]string{
		"Content-Type":  "text/plain; charset=utf-8",
		"Accept-Ranges": "bytes",
		"Cache-Control": "public, max-age=60",
		"Vary":          "",
	} {
		if got := r.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if r.ContentLength != 10 || r.SendFiles != 0 {
		t.Errorf("Content-Length %d, %d sendfiles", r.ContentLength, r.SendFiles)
	}
	etag := r.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `-a"`) {
		t.Errorf("ETag %q", etag)
	}
	if _, ok := parseHTTPDate([]byte(r.Get("Last-Modified"))); !ok {
		t.Errorf("Last-Modified %q", r.Get("Last-Modified"))
	}

	r = do(t, h, "GET", "/big.bin")
	expect(t, r, 200, bigBody)
	if r.SendFiles != 1 || r.Get("Content-Type") != defaultType {
		t.Errorf("big file: %d sendfiles, type %q", r.SendFiles, r.Get("Content-Type"))
	}
	r = do(t, h, "HEAD", "/big.bin")
	expect(t, r, 200, "")
	if r.ContentLength != int64(len(bigBody)) || r.SendFiles != 0 {
		t.Errorf("HEAD: Content-Length %d, %d sendfiles", r.ContentLength, r.SendFiles)
	}
	r = do(t, h, "GET", "/empty.txt")
	expect(t, r, 200, "")
	if r.ContentLength != 0 {
		t.Errorf("empty: Content-Length %d", r.ContentLength)
	}
	expect(t, do(t, h, "GET", "/small.txt/"), 404, anyBody)
	expect(t, do(t, h, "GET", "/missing"), 404, anyBody)
	r = do(t, h, "POST", "/small.txt")
	expect(t, r, 405, anyBody)
	if r.Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow %q", r.Get("Allow"))
	}
}

func TestServeConditional(t *testing.T) {
	h, _ := site(t, Options{CacheControl: "no-cache"})
	first := do(t, h, "GET", "/small.txt")
	etag, lm := first.Get("ETag"), first.Get("Last-Modified")

	r := do(t, h, "GET", "/small.txt", "If-None-Match", etag)
	expect(t, r, 304, "")
	if r.Get("ETag") != etag || r.Get("Cache-Control") != "no-cache" || r.Get("Content-Type") != "" {
		t.Errorf("304 fields: %v", r.Fields)
	}
	expect(t, do(t, h, "HEAD", "/small.txt", "If-None-Match", "W/"+etag), 304, "")
	expect(t, do(t, h, "GET", "/small.txt", "If-Modified-Since", lm), 304, "")
	// If-None-Match takes precedence over If-Modified-Since.
	expect(t, do(t, h, "GET", "/small.txt", "If-None-Match", `"other"`, "If-Modified-Since", lm), 200, "0123456789")
	expect(t, do(t, h, "GET", "/small.txt", "If-Match", `"other"`), 412, anyBody)
	expect(t, do(t, h, "GET", "/small.txt", "If-Match", etag), 200, "0123456789")
	expect(t, do(t, h, "GET", "/small.txt", "If-Unmodified-Since", "Thu, 01 Jan 1970 00:00:00 GMT"), 412, anyBody)
	expect(t, do(t, h, "GET", "/small.txt", "If-Unmodified-Since", lm), 200, anyBody)
}

func TestServeRanges(t *testing.T) {
	h, _ := site(t, Options{})
	etag := do(t, h, "GET", "/small.txt").Get("ETag")

	r := do(t, h, "GET", "/small.txt", "Range", "bytes=2-5")
	expect(t, r, 206, "2345")
	if r.Get("Content-Range") != "bytes 2-5/10" || r.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("206 fields %v", r.Fields)
	}
	r = do(t, h, "GET", "/big.bin", "Range", "bytes=-100")
	expect(t, r, 206, bigBody[len(bigBody)-100:])
	if r.SendFiles != 1 {
		t.Errorf("%d sendfiles", r.SendFiles)
	}
	for _, v := range []string{"bytes=20-30", "bytes=-0", "bytes=" + strings.Repeat("0-0,", MaxRanges+1), "bytes=0-1,0-2,0-3"} {
		r = do(t, h, "GET", "/small.txt", "Range", v)
		expect(t, r, 416, anyBody)
		if r.Get("Content-Range") != "bytes */10" {
			t.Errorf("%s: Content-Range %q", v, r.Get("Content-Range"))
		}
	}
	// An empty file ignores Range, as nginx does: 200 with Content-Length 0, not 416.
	for _, v := range []string{"bytes=0-", "bytes=-5", "bytes=0-0,-1"} {
		r = do(t, h, "GET", "/empty.txt", "Range", v)
		expect(t, r, 200, "")
		if r.ContentLength != 0 || r.Get("Content-Range") != "" {
			t.Errorf("empty file, %s: Content-Length %d, Content-Range %q", v, r.ContentLength, r.Get("Content-Range"))
		}
	}
	expect(t, do(t, h, "GET", "/small.txt", "Range", "bytes=5-1"), 200, "0123456789")
	expect(t, do(t, h, "GET", "/small.txt", "Range", "lines=1-2"), 200, "0123456789")
	expect(t, do(t, h, "GET", "/small.txt", "Range", "bytes=0-1", "If-Range", etag), 206, "01")
	expect(t, do(t, h, "GET", "/small.txt", "Range", "bytes=0-1", "If-Range", `"stale"`), 200, "0123456789")
	expect(t, do(t, h, "GET", "/small.txt", "Range", "bytes=0-1", "If-Range", "W/"+etag), 200, "0123456789")
	lm := do(t, h, "GET", "/small.txt").Get("Last-Modified")
	expect(t, do(t, h, "GET", "/small.txt", "Range", "bytes=0-1", "If-Range", lm), 206, "01")
	expect(t, do(t, h, "GET", "/small.txt", "Range", "bytes=0-1", "If-Range", "Thu, 01 Jan 1970 00:00:00 GMT"), 200, anyBody)
}

func TestServeMultipart(t *testing.T) {
	h, _ := site(t, Options{})
	for _, tc := range []struct {
		path, rng string
		full      string
		parts     []ByteRange
	}{
		{"/small.txt", "bytes=0-1, 5-6, -1", "0123456789", []ByteRange{br(0, 2), br(5, 2), br(9, 1)}},
		{"/big.bin", "bytes=99990-, 0-9, 50000-50099", bigBody, []ByteRange{br(99990, 10), br(0, 10), br(50000, 100)}},
	} {
		r := do(t, h, "GET", tc.path, "Range", tc.rng)
		expect(t, r, 206, anyBody)
		mt, params, err := mime.ParseMediaType(r.Get("Content-Type"))
		if err != nil || mt != "multipart/byteranges" || params["boundary"] == "" {
			t.Fatalf("%s: Content-Type %q", tc.path, r.Get("Content-Type"))
		}
		mr := multipart.NewReader(strings.NewReader(r.Body.String()), params["boundary"])
		for i, want := range tc.parts {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatalf("%s part %d: %v", tc.path, i, err)
			}
			body, _ := io.ReadAll(p)
			wantCR := "bytes " + strconv.FormatInt(want.Start, 10) + "-" + strconv.FormatInt(want.Start+want.Length-1, 10) + "/" + strconv.Itoa(len(tc.full))
			if string(body) != tc.full[want.Start:want.Start+want.Length] || p.Header.Get("Content-Range") != wantCR {
				t.Fatalf("%s part %d: %q, Content-Range %q want %q", tc.path, i, body, p.Header.Get("Content-Range"), wantCR)
			}
		}
		if _, err := mr.NextPart(); err != io.EOF {
			t.Fatalf("%s: after last part: %v", tc.path, err)
		}
		if tc.path == "/big.bin" && r.SendFiles != 3 {
			t.Errorf("multipart of a large file: %d sendfiles, want 3", r.SendFiles)
		}
	}
	a := do(t, h, "GET", "/small.txt", "Range", "bytes=0-0,2-2").Get("Content-Type")
	b := do(t, h, "GET", "/small.txt", "Range", "bytes=0-0,2-2").Get("Content-Type")
	if a == b {
		t.Errorf("two responses share boundary %q", a)
	}
}

func TestServePrecompressed(t *testing.T) {
	h, root := site(t, Options{OpenFileCache: CacheOptions{Revalidate: time.Second}})
	tests := []struct {
		ae, body, enc string
	}{
		{"", "console.log('identity')", ""},
		{"gzip, deflate, br", "BROTLI", "br"},
		{"br;q=0, gzip", "GZIP", "gzip"},
		{"zstd", "ZSTD", "zstd"},
		{"deflate", "console.log('identity')", ""},
		{"*;q=0, identity", "console.log('identity')", ""},
	}
	etags := map[string]bool{}
	for _, tt := range tests {
		hdr := []string{}
		if tt.ae != "" {
			hdr = []string{"Accept-Encoding", tt.ae}
		}
		r := do(t, h, "GET", "/app.js", hdr...)
		expect(t, r, 200, tt.body)
		if r.Get("Content-Encoding") != tt.enc || r.Get("Vary") != "Accept-Encoding" ||
			r.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("Accept-Encoding %q: fields %v", tt.ae, r.Fields)
		}
		etags[r.Get("ETag")] = true
		// The variant's own validator gives 304 for the same variant.
		expect(t, do(t, h, "GET", "/app.js", append(hdr, "If-None-Match", r.Get("ETag"))...), 304, "")
	}
	if len(etags) != 4 {
		t.Errorf("variants share entity-tags: %v", etags)
	}
	// A variant asked for by name is served as itself.
	r := do(t, h, "GET", "/app.js.br", "Accept-Encoding", "br")
	expect(t, r, 200, "BROTLI")
	if r.Get("Content-Encoding") != "" || r.Get("Content-Type") != "application/x-brotli" {
		t.Errorf("direct variant fields %v", r.Fields)
	}
	// A variant deleted after the probe falls back to identity, still with Vary.
	if err := os.Remove(filepath.Join(root, "app.js.gz")); err != nil {
		t.Fatal(err)
	}
	r = newRecorder(t, "GET", "/app.js", "Accept-Encoding", "gzip")
	r.Clock = r.Clock.Add(time.Hour)
	h.ServeExchange(r)
	expect(t, r, 200, "console.log('identity')")
	if r.Get("Vary") != "Accept-Encoding" {
		t.Errorf("Vary %q", r.Get("Vary"))
	}
	// Ranges apply to the selected representation.
	expect(t, do(t, h, "GET", "/app.js", "Accept-Encoding", "br", "Range", "bytes=0-1"), 206, "BR")
	// Several ranges of a variant are not sent as multipart/byteranges, which would
	// carry Content-Encoding: br over a body that is multipart, not brotli (curl
	// --compressed fails with error 61 on it): the whole variant is sent instead.
	r = do(t, h, "GET", "/app.js", "Accept-Encoding", "br", "Range", "bytes=0-1,3-4")
	expect(t, r, 200, "BROTLI")
	if r.Get("Content-Encoding") != "br" || r.Get("Content-Range") != "" {
		t.Errorf("several ranges of a variant: fields %v", r.Fields)
	}
	// Two overlapping ranges merge into one, which is still served as a 206.
	expect(t, do(t, h, "GET", "/app.js", "Accept-Encoding", "br", "Range", "bytes=0-2,1-3"), 206, "BROT")
	// The identity representation still answers multipart.
	r = do(t, h, "GET", "/app.js", "Range", "bytes=0-1,3-4")
	if r.Status != 206 || !strings.HasPrefix(r.Get("Content-Type"), "multipart/byteranges;") || r.Get("Content-Encoding") != "" {
		t.Errorf("several ranges of identity: %d %v", r.Status, r.Fields)
	}
}

func TestServeDirectories(t *testing.T) {
	h, _ := site(t, Options{})
	expect(t, do(t, h, "GET", "/"), 200, "<h1>home</h1>")
	expect(t, do(t, h, "GET", "/docs/"), 200, "<h1>docs</h1>")
	r := do(t, h, "GET", "/docs")
	expect(t, r, 301, anyBody)
	if r.Get("Location") != "/docs/" {
		t.Errorf("Location %q", r.Get("Location"))
	}
	r = do(t, h, "GET", "/docs?a=1&b=2")
	if r.Status != 301 || r.Get("Location") != "/docs/?a=1&b=2" {
		t.Errorf("redirect with query: %d %q", r.Status, r.Get("Location"))
	}
	// Bytes outside ASCII in the query (obs-text in the request-target) leave
	// percent-encoded; escapes already there are kept as sent.
	r = do(t, h, "GET", "/docs?q=\xc3\xa9%20x&r=\xff")
	if r.Status != 301 || r.Get("Location") != "/docs/?q=%C3%A9%20x&r=%FF" {
		t.Errorf("redirect with non-ASCII query: %d %q", r.Status, r.Get("Location"))
	}
	// So do the ASCII bytes a URI may not hold ('"', '<', '>', '\', '^', '`', '{',
	// '|', '}') and a '%' that starts no escape, so the Location is a URI-reference
	// that decodes to the query as sent; "[]" and valid escapes are kept.
	r = do(t, h, "GET", "/docs?a=\"<>\\^`{|}&p=%zz&q=100%&ok=%41[]")
	if want := "/docs/?a=%22%3C%3E%5C%5E%60%7B%7C%7D&p=%25zz&q=100%25&ok=%41[]"; r.Status != 301 || r.Get("Location") != want {
		t.Errorf("redirect with query bytes a URI may not hold: %d %q, want %q", r.Status, r.Get("Location"), want)
	}
	r = do(t, h, "GET", "/my%20dir")
	if r.Status != 301 || r.Get("Location") != "/my%20dir/" {
		t.Errorf("redirect of spaced dir: %d %q", r.Status, r.Get("Location"))
	}
	r = do(t, h, "GET", "//docs")
	if r.Status != 301 || r.Get("Location") != "/docs/" {
		t.Errorf("redirect of //docs: %d %q (must not be protocol-relative)", r.Status, r.Get("Location"))
	}
	expect(t, do(t, h, "GET", "/assets/"), 404, anyBody)

	h2, _ := site(t, Options{Index: []string{}})
	expect(t, do(t, h2, "GET", "/docs/"), 404, anyBody)
}

func TestServeListing(t *testing.T) {
	h, _ := site(t, Options{Browse: true})
	r := do(t, h, "GET", "/assets/")
	expect(t, r, 200, anyBody)
	page := r.Body.String()
	if !strings.HasPrefix(r.Get("Content-Type"), "text/html") || r.Get("Vary") != "Accept" {
		t.Errorf("listing fields %v", r.Fields)
	}
	for _, want := range []string{"&lt;b&gt;&amp;&#39;x.txt", `href="./%3Cb%3E&amp;&#39;x.txt"`, `href="./sub/"`, `href="./a.css"`, `href="../"`} {
		if !strings.Contains(page, want) {
			t.Errorf("listing lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<b>") || strings.Contains(page, ".env") {
		t.Errorf("listing leaks raw markup or a dotfile:\n%s", page)
	}
	if strings.Index(page, "sub/") > strings.Index(page, "a.css") {
		t.Errorf("directories are not listed first:\n%s", page)
	}

	r = do(t, h, "GET", "/assets/", "Accept", "application/json")
	expect(t, r, 200, anyBody)
	var l listing
	if err := json.Unmarshal(r.Body.Bytes(), &l); err != nil {
		t.Fatal(err)
	}
	if l.Path != "/assets/" || len(l.Entries) != 3 || !l.Entries[0].Dir || l.Entries[0].Name != "sub" ||
		l.Entries[1].Name != "<b>&'x.txt" || l.Entries[1].Size != 5 {
		t.Errorf("JSON listing %+v", l)
	}
	expect(t, do(t, h, "GET", "/docs/"), 200, "<h1>docs</h1>") // an index wins over a listing

	h2, _ := site(t, Options{Browse: true, Dotfiles: DotfilesAllow})
	if page := do(t, h2, "GET", "/assets/").Body.String(); !strings.Contains(page, ".env") {
		t.Error("dotfile hidden although allowed")
	}
}

func TestServeFallbackAndDotfiles(t *testing.T) {
	h, _ := site(t, Options{Fallback: "/index.html"})
	expect(t, do(t, h, "GET", "/some/client/route"), 200, "<h1>home</h1>")
	expect(t, do(t, h, "GET", "/assets/"), 200, "<h1>home</h1>")
	expect(t, do(t, h, "GET", "/.env"), 403, anyBody) // deny: 403, never the fallback
	expect(t, do(t, h, "GET", "/assets/.env"), 403, anyBody)
	expect(t, do(t, h, "GET", "/%2eenv"), 403, anyBody)
	expect(t, do(t, h, "GET", "/.nothing"), 403, anyBody)
	expect(t, do(t, h, "GET", "/.well-known/acme"), 200, "token")
	expect(t, do(t, h, "GET", "/../x"), 400, anyBody) // no fallback for bad requests

	hi, _ := site(t, Options{Dotfiles: DotfilesIgnore})
	expect(t, do(t, hi, "GET", "/.env"), 404, anyBody)
	hif, _ := site(t, Options{Dotfiles: DotfilesIgnore, Fallback: "/index.html"})
	expect(t, do(t, hif, "GET", "/.env"), 200, "<h1>home</h1>") // as if it did not exist

	h2, _ := site(t, Options{Dotfiles: DotfilesAllow})
	expect(t, do(t, h2, "GET", "/.env"), 200, "SECRET-ENV")

	h3, _ := site(t, Options{Fallback: "/gone.html"})
	expect(t, do(t, h3, "GET", "/nothing"), 404, anyBody)
}

// TestServeListingTitleIsDecoded: an HTML listing's title names the directory as its
// user reads it, not as a link spells it: "Index of /dé/ x/", as nginx's autoindex
// shows, where it said "Index of /d%C3%A9/%20x/"; the JSON path stays the link form.
func TestServeListingTitleIsDecoded(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"dé/ x<y/f.txt": "f", "raw\xff/": ""})
	h := newHandler(t, Options{Root: root, Prefix: "/my%20files/", Browse: true})
	page := do(t, h, "GET", "/my%20files/d%C3%A9/%20x%3Cy/").Body.String()
	if !strings.Contains(page, "<title>Index of /my files/dé/ x&lt;y/</title>") {
		t.Errorf("title not decoded:\n%s", page)
	}
	if page := do(t, h, "GET", "/my%20files/raw%FF/").Body.String(); !strings.Contains(page, "Index of /my files/raw\uFFFD/") {
		t.Errorf("title of a name that is not UTF-8:\n%s", page)
	}
	r := do(t, h, "GET", "/my%20files/d%C3%A9/", "Accept", "application/json")
	if !strings.Contains(r.Body.String(), `"path":"/my%20files/d%C3%A9/"`) {
		t.Errorf("JSON path: %s", r.Body.String())
	}
}

func TestServePrefix(t *testing.T) {
	h, _ := site(t, Options{Prefix: "/static/", Browse: true})
	expect(t, do(t, h, "GET", "/static/small.txt"), 200, "0123456789")
	expect(t, do(t, h, "GET", "/static/"), 200, "<h1>home</h1>")
	expect(t, do(t, h, "GET", "/small.txt"), 404, anyBody)
	expect(t, do(t, h, "GET", "/static/../small.txt"), 404, anyBody) // normalized to /small.txt, outside the prefix
	expect(t, do(t, h, "GET", "/static/a/../small.txt"), 200, "0123456789")
	r := do(t, h, "GET", "/static/docs?x=1")
	if r.Status != 301 || r.Get("Location") != "/static/docs/?x=1" {
		t.Errorf("redirect under prefix: %d %q", r.Status, r.Get("Location"))
	}
	if page := do(t, h, "GET", "/static/assets/").Body.String(); !strings.Contains(page, "Index of /static/assets/") {
		t.Errorf("listing title under prefix:\n%s", page)
	}

	h2, _ := site(t, Options{Prefix: "/files"})
	expect(t, do(t, h2, "GET", "/files/small.txt"), 200, "0123456789")
	r = do(t, h2, "GET", "/files")
	if r.Status != 301 || r.Get("Location") != "/files/" {
		t.Errorf("prefix without slash: %d %q", r.Status, r.Get("Location"))
	}
	expect(t, do(t, h2, "GET", "/files/"), 200, "<h1>home</h1>")
	// A route prefix without a trailing slash also matches "/filessmall.txt"; the
	// remainder is looked up as "/small.txt".
	expect(t, do(t, h2, "GET", "/filessmall.txt"), 200, "0123456789")

	// A prefix with repeated slashes is the one routing normalizes it to, so
	// "match: {path: //assets/}", which gale check accepts, no longer fails at start;
	// redirects under it are built from the normal form and are never
	// protocol-relative.
	h3, _ := site(t, Options{Prefix: "//evil.example//"})
	expect(t, do(t, h3, "GET", "/evil.example/small.txt"), 200, "0123456789")
	r = do(t, h3, "GET", "/evil.example/docs")
	if r.Status != 301 || r.Get("Location") != "/evil.example/docs/" {
		t.Errorf("redirect under //evil.example//: %d %q", r.Status, r.Get("Location"))
	}
}

func TestServeRevalidateEveryRequest(t *testing.T) {
	h, _ := site(t, Options{OpenFileCache: CacheOptions{Revalidate: -1}})
	loads := countLoads(h)
	for range 3 {
		expect(t, do(t, h, "GET", "/small.txt"), 200, "0123456789")
	}
	if loads.Load() != 3 {
		t.Errorf("%d loads for 3 requests with revalidation on every request", loads.Load())
	}
}

func TestServeFreshAfterEdit(t *testing.T) {
	h, root := site(t, Options{OpenFileCache: CacheOptions{Revalidate: time.Second}})
	r := do(t, h, "GET", "/small.txt")
	if err := os.WriteFile(filepath.Join(root, "small.txt"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	r2 := newRecorder(t, "GET", "/small.txt")
	r2.Clock = r.Clock.Add(2 * time.Second)
	h.ServeExchange(r2)
	expect(t, r2, 200, "edited")
	if r2.Get("ETag") == r.Get("ETag") {
		t.Error("ETag unchanged after an edit")
	}
}

func TestNewValidates(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"f": "x"})
	bad := []Options{
		{},
		{Root: filepath.Join(root, "missing")},
		{Root: filepath.Join(root, "f")},
		{Root: root, FollowSymlinks: "sometimes"},
		{Root: root, Dotfiles: "hide"},
		{Root: root, Index: []string{"../x"}},
		{Root: root, Index: []string{""}},
		{Root: root, Fallback: "index.html"},
		{Root: root, Fallback: "/../x"},
		{Root: root, Fallback: "/dir/"},
		{Root: root, CacheControl: "max-age=1\r\nSet-Cookie: a=b"},
		{Root: root, Prefix: "static"},
		{Root: root, Prefix: "/a b"},
		{Root: root, Prefix: "/a?b"},
	}
	for _, o := range bad {
		if h, err := New(o); err == nil {
			h.Close()
			t.Errorf("New(%+v) accepted", o)
		}
	}
	for _, o := range []Options{
		{Root: root},
		{Root: root + "/", FollowSymlinks: SymlinksNever, Dotfiles: DotfilesAllow, Fallback: "/f", Index: []string{"f"}},
		{Root: root, FollowSymlinks: SymlinksAlways, OpenFileCache: CacheOptions{Max: -1, Revalidate: time.Minute}},
		{Root: root, Prefix: "/static/", Dotfiles: DotfilesIgnore, OpenFileCache: CacheOptions{Revalidate: -1}},
	} {
		h, err := New(o)
		if err != nil {
			t.Errorf("New(%+v): %v", o, err)
			continue
		}
		h.Close()
	}
}

// TestServeFileChangedInPlace truncates, extends and rewrites a file served from its
// descriptor between requests that all fall within the cache's revalidation interval
// (one Clock): each response must carry the file's current length, bytes and
// entity-tag, never the cached length around new bytes or a body cut short.
func TestServeFileChangedInPlace(t *testing.T) {
	h, root := site(t, Options{OpenFileCache: CacheOptions{Revalidate: time.Hour}})
	p := filepath.Join(root, "big.bin")
	get := func(want string, hdr ...string) *recorder {
		t.Helper()
		r := do(t, h, "GET", "/big.bin", hdr...)
		status := 200
		if len(hdr) > 0 {
			status = 206
		}
		if r.Status != status || r.ContentLength != int64(len(want)) || r.Body.String() != want {
			t.Fatalf("status %d, Content-Length %d, body %d bytes (matches: %v); want %d, %d bytes",
				r.Status, r.ContentLength, r.Body.Len(), r.Body.String() == want, status, len(want))
		}
		return r
	}
	first := get(bigBody)

	if err := os.Truncate(p, 20_000); err != nil {
		t.Fatal(err)
	}
	shrunk := get(bigBody[:20_000])
	if shrunk.Get("ETag") == first.Get("ETag") {
		t.Error("ETag unchanged after truncation")
	}

	grown := strings.ToUpper(bigContent(150_000)) // same inode, new bytes, longer
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(grown), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	extended := get(grown)
	if extended.Get("ETag") == shrunk.Get("ETag") {
		t.Error("ETag unchanged after extension")
	}
	get(grown[140_000:], "Range", "bytes=140000-")

	// The same length rewritten in place, with a new modification time.
	same := strings.Repeat("z", len(grown))
	if err := os.WriteFile(p, []byte(same), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if r := get(same); r.Get("ETag") == extended.Get("ETag") {
		t.Error("ETag unchanged after a rewrite of the same length")
	}
}

// TestServeFutureDates covers dates after the server's clock: a file whose mtime lies
// in the future reports the response's Date as its Last-Modified (RFC 9110 §8.8.2.1)
// and compares as that time, and an If-Modified-Since later than the clock is ignored
// instead of answering 304 for any file.
func TestServeFutureDates(t *testing.T) {
	h, root := site(t, Options{})
	now := time.Now().Truncate(time.Second)
	future := now.Add(48 * time.Hour)
	if err := os.Chtimes(filepath.Join(root, "big.bin"), future, future); err != nil {
		t.Fatal(err)
	}
	at := func(clock time.Time, method, target string, hdr ...string) *recorder {
		t.Helper()
		r := newRecorder(t, method, target, hdr...)
		r.Clock = clock
		h.ServeExchange(r)
		return r
	}
	nowDate := now.UTC().Format(http.TimeFormat)
	r := at(now, "GET", "/big.bin")
	expect(t, r, 200, bigBody)
	if got := r.Get("Last-Modified"); got != nowDate {
		t.Errorf("future mtime: Last-Modified %q, want the Date %q", got, nowDate)
	}
	if r.Get("ETag") == "" {
		t.Error("future mtime: no ETag")
	}
	// The future mtime is not a validator: a date before it but after the clock is
	// ignored, so the file is sent.
	expect(t, at(now, "GET", "/big.bin", "If-Modified-Since", future.Add(-time.Hour).UTC().Format(http.TimeFormat)), 200, anyBody)
	// A later request's Last-Modified moves with the clock, so the earlier one is
	// not a match for If-Range and not "unmodified since".
	later := now.Add(5 * time.Second)
	expect(t, at(later, "GET", "/big.bin", "Range", "bytes=0-1", "If-Range", nowDate), 200, anyBody)
	expect(t, at(later, "GET", "/big.bin", "If-Unmodified-Since", nowDate), 412, anyBody)
	expect(t, at(later, "GET", "/big.bin", "If-Modified-Since", nowDate), 200, anyBody)
	r = at(later, "GET", "/big.bin", "Range", "bytes=0-1,4-5")
	if r.Status != 206 || r.Get("Last-Modified") != later.UTC().Format(http.TimeFormat) {
		t.Errorf("multipart: %d, Last-Modified %q", r.Status, r.Get("Last-Modified"))
	}

	// A file with a past mtime: an If-Modified-Since after the clock is ignored (200),
	// one between the mtime and the clock gives 304.
	past := now.Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(root, "small.txt"), past, past); err != nil {
		t.Fatal(err)
	}
	r = at(now, "GET", "/small.txt")
	if got := r.Get("Last-Modified"); got != past.UTC().Format(http.TimeFormat) {
		t.Fatalf("past mtime: Last-Modified %q", got)
	}
	expect(t, at(now, "GET", "/small.txt", "If-Modified-Since", nowDate), 304, "")
	expect(t, at(now, "HEAD", "/small.txt", "If-Modified-Since", future.UTC().Format(http.TimeFormat)), 200, "")
	expect(t, at(now, "GET", "/small.txt", "If-Modified-Since", "Fri, 31 Dec 9999 23:59:59 GMT"), 200, "0123456789")
}

// TestServeFileReplacedOrDeleted replaces a file served from its descriptor by a
// rename, then deletes it, between requests within the revalidation interval: the
// old file has no name left, so the next request serves the new file, then 404.
func TestServeFileReplacedOrDeleted(t *testing.T) {
	h, root := site(t, Options{OpenFileCache: CacheOptions{Revalidate: time.Hour}})
	p := filepath.Join(root, "big.bin")
	expect(t, do(t, h, "GET", "/big.bin"), 200, bigBody)
	next := strings.ToUpper(bigContent(len(bigBody))) // same length
	tmp := filepath.Join(root, "big.bin.tmp")
	if err := os.WriteFile(tmp, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil { // as rsync -t leaves it
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	expect(t, do(t, h, "GET", "/big.bin"), 200, next)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	expect(t, do(t, h, "GET", "/big.bin"), 404, anyBody)
}

// TestServePrefixDotSegment: a prefix without a trailing slash ends inside a segment,
// so the remainder's first segment can be "." or "..", which normalization never saw as
// a dot segment ("/files.." is the name "files.."). Looked up as it was, "/files../x"
// named root/../x: with follow_symlinks always (no RESOLVE_BENEATH) and dotfiles
// allowed it served the file beside the root, nginx's alias off-by-slash traversal.
// Such a remainder names nothing below the root and is answered 404.
func TestServePrefixDotSegment(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	writeTree(t, parent, map[string]string{"secret.txt": "SECRET", "root/small.txt": "0123456789", "root/docs/a.txt": "a"})
	for _, policy := range []string{SymlinksAlways, SymlinksInsideRoot, SymlinksNever} {
		for _, dot := range []string{DotfilesAllow, DotfilesIgnore, DotfilesDeny} {
			h := newHandler(t, Options{Root: root, Prefix: "/files", FollowSymlinks: policy, Dotfiles: dot, Browse: true})
			for _, target := range []string{"/files../secret.txt", "/files..", "/files../", "/files.", "/files./", "/files./small.txt", "/files../root/small.txt", "/files../?x=1"} {
				r := do(t, h, "GET", target)
				if r.Status != 404 || strings.Contains(r.Body.String(), "SECRET") || r.Get("Location") != "" {
					t.Errorf("%s/%s: GET %s: %d %q Location %q, want 404", policy, dot, target, r.Status, r.Body.String(), r.Get("Location"))
				}
			}
			expect(t, do(t, h, "GET", "/files/small.txt"), 200, "0123456789")
			expect(t, do(t, h, "GET", "/filessmall.txt"), 200, "0123456789")
			if dot != DotfilesDeny {
				expect(t, do(t, h, "GET", "/files.../x"), 404, anyBody) // "..." is an ordinary (missing) name
			}
		}
	}
}

// TestServeErrorIsLogged: a request answered 500 because of an unexpected system error
// leaves a log line with the path and the error, the system call's name included; the
// 500 alone told the operator nothing (nginx logs such failures at crit). Lookups that
// end in 404 or 403 are not logged.
func TestServeErrorIsLogged(t *testing.T) {
	var logs bytes.Buffer
	h, _ := site(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	load := h.cache.load
	h.cache.load = func(key string) (*entry, error) {
		if key == "small.txt" || key == "docs/index.html" {
			return nil, os.NewSyscallError("openat2", syscall.EIO)
		}
		return load(key)
	}
	expect(t, do(t, h, "GET", "/small.txt"), 500, anyBody)
	expect(t, do(t, h, "GET", "/docs/"), 500, anyBody)
	expect(t, do(t, h, "GET", "/missing.txt"), 404, anyBody)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines, got:\n%s", logs.String())
	}
	for i, path := range []string{"/small.txt", "/docs/"} {
		if l := lines[i]; !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "path="+path) || !strings.Contains(l, "openat2: input/output error") {
			t.Errorf("log line %d: %s", i, l)
		}
	}
}

// TestServeListFieldsOnSeveralLines: a list-based field may arrive as several field
// lines, which mean the lines joined with commas (RFC 9110 §5.3). Only the first line
// was read, so an If-None-Match whose matching tag was on its second line got 200, an
// If-Match one 412, and an Accept-Encoding or Accept split over two lines lost its
// second half.
func TestServeListFieldsOnSeveralLines(t *testing.T) {
	h, _ := site(t, Options{Browse: true})
	etag := do(t, h, "GET", "/small.txt").Get("ETag")
	expect(t, do(t, h, "GET", "/small.txt", "If-None-Match", `"other"`, "If-None-Match", etag), 304, "")
	expect(t, do(t, h, "GET", "/small.txt", "If-None-Match", `"other"`, "If-None-Match", `"more"`), 200, "0123456789")
	expect(t, do(t, h, "GET", "/small.txt", "If-Match", `"other"`, "If-Match", etag), 200, "0123456789")
	expect(t, do(t, h, "GET", "/small.txt", "If-Match", `"other"`, "if-match", `"more"`), 412, anyBody)
	r := do(t, h, "GET", "/app.js", "Accept-Encoding", "identity;q=0.5", "Accept-Encoding", "gzip")
	if r.Get("Content-Encoding") != "gzip" || r.Body.String() != "GZIP" {
		t.Errorf("Accept-Encoding on two lines: Content-Encoding %q, body %q", r.Get("Content-Encoding"), r.Body.String())
	}
	r = do(t, h, "GET", "/app.js", "Accept-Encoding", "gzip", "Accept-Encoding", "gzip;q=0, identity")
	if r.Get("Content-Encoding") != "gzip" { // the first occurrence of a coding counts
		t.Errorf("repeated coding: Content-Encoding %q", r.Get("Content-Encoding"))
	}
	r = do(t, h, "GET", "/assets/", "Accept", "text/html;q=0.5", "Accept", "application/json")
	if r.Get("Content-Type") != "application/json" {
		t.Errorf("Accept on two lines: Content-Type %q", r.Get("Content-Type"))
	}
}
