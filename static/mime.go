package static

import (
	"mime"
	"strings"
)

// builtinTypes maps lower-case extensions to the types browsers expect for the web's
// common files. It wins over the system tables, which differ between distributions
// (some still say application/javascript or lack .webp, .avif, .wasm, .mjs).
var builtinTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".htm":         "text/html; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".jsonld":      "application/ld+json",
	".webmanifest": "application/manifest+json",
	".xml":         "application/xml; charset=utf-8",
	".rss":         "application/rss+xml; charset=utf-8",
	".atom":        "application/atom+xml; charset=utf-8",
	".txt":         "text/plain; charset=utf-8",
	".csv":         "text/csv; charset=utf-8",
	".md":          "text/markdown; charset=utf-8",
	".yaml":        "application/yaml",
	".yml":         "application/yaml",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".ico":         "image/x-icon",
	".bmp":         "image/bmp",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".ttf":         "font/ttf",
	".otf":         "font/otf",
	".eot":         "application/vnd.ms-fontobject",
	".mp4":         "video/mp4",
	".webm":        "video/webm",
	".ogv":         "video/ogg",
	".ts":          "video/mp2t",
	".m3u8":        "application/vnd.apple.mpegurl",
	".mpd":         "application/dash+xml",
	".mp3":         "audio/mpeg",
	".ogg":         "audio/ogg",
	".oga":         "audio/ogg",
	".opus":        "audio/ogg",
	".wav":         "audio/wav",
	".flac":        "audio/flac",
	".m4a":         "audio/mp4",
	".aac":         "audio/aac",
	".pdf":         "application/pdf",
	".wasm":        "application/wasm",
	".zip":         "application/zip",
	".gz":          "application/gzip",
	".br":          "application/x-brotli",
	".zst":         "application/zstd",
	".tar":         "application/x-tar",
}

const defaultType = "application/octet-stream"

// contentType returns the Content-Type for a file name: the built-in table, then the
// mime package (system tables), then application/octet-stream. A text/* type without
// a charset parameter gets "; charset=utf-8".
func contentType(name string) string {
	ext := extension(name)
	if ext == "" {
		return defaultType
	}
	lower := strings.ToLower(ext)
	if t, ok := builtinTypes[lower]; ok {
		return t
	}
	t := mime.TypeByExtension(lower)
	if t == "" {
		return defaultType
	}
	if strings.HasPrefix(t, "text/") && !strings.Contains(t, "charset=") {
		t += "; charset=utf-8"
	}
	return t
}

// extension returns the suffix of the last path segment starting at its last dot, or
// "" when the segment has no dot or only a leading one (".profile").
func extension(name string) string {
	for i := len(name) - 1; i > 0; i-- {
		switch name[i] {
		case '/':
			return ""
		case '.':
			if name[i-1] == '/' {
				return ""
			}
			return name[i:]
		}
	}
	return ""
}
