package static

import (
	"strings"
	"testing"
)

func TestContentType(t *testing.T) {
	tests := map[string]string{
		"index.html":         "text/html; charset=utf-8",
		"a/B.HTML":           "text/html; charset=utf-8",
		"app.js":             "text/javascript; charset=utf-8",
		"mod.mjs":            "text/javascript; charset=utf-8",
		"s.css":              "text/css; charset=utf-8",
		"d.json":             "application/json",
		"i.svg":              "image/svg+xml",
		"f.woff2":            "font/woff2",
		"w.wasm":             "application/wasm",
		"p.png":              "image/png",
		"noext":              defaultType,
		".profile":           defaultType,
		"dir.d/noext":        defaultType,
		"x.unknown-ext-zzzz": defaultType,
		"trailing.":          defaultType,
	}
	for name, want := range tests {
		if got := contentType(name); got != want {
			t.Errorf("contentType(%q) = %q, want %q", name, got, want)
		}
	}
	// Types from the system tables: text types get a charset.
	for _, name := range []string{"a.txt", "a.csv"} {
		if got := contentType(name); !strings.Contains(got, "charset=utf-8") {
			t.Errorf("contentType(%q) = %q, want a charset", name, got)
		}
	}
}
