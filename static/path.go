package static

import "github.com/gale-server/gale/http1"

// maxPathLen bounds the normalized request path; longer paths are answered 414.
const maxPathLen = 4096

// cleanedPath is a request path reduced to a relative, slash-separated file path that
// cannot name anything above the root.
type cleanedPath struct {
	// rel has no leading or trailing slash, no empty, "." or ".." segment and no NUL,
	// backslash or control byte. "" is the root directory itself.
	rel string
	// dir reports that the request path ended in '/', which asks for a directory.
	dir bool
	// dotfile reports that some segment starts with '.', other than ".well-known".
	dotfile bool
}

// splitPath turns a path in the normal form of http1.NormalizePath (with or without
// its leading '/') into the file path below the root: 414 when it is longer than
// maxPathLen, else status 0. All decoding, dot-segment removal and refusal of NUL,
// backslash, encoded '/' and climbing above the root happened in NormalizePath, the
// one function routing uses too, so the file served is the path routes matched.
func splitPath(norm []byte) (cleanedPath, int) {
	var p cleanedPath
	if len(norm) > maxPathLen {
		return p, 414
	}
	if len(norm) > 0 && norm[0] == '/' {
		norm = norm[1:]
	}
	if len(norm) == 0 {
		p.dir = true
		return p, 0
	}
	if norm[len(norm)-1] == '/' {
		p.dir, norm = true, norm[:len(norm)-1]
	}
	for i := 0; i < len(norm); i++ {
		if (i == 0 || norm[i-1] == '/') && norm[i] == '.' && !wellKnown(norm[i:]) {
			p.dotfile = true
			break
		}
	}
	p.rel = string(norm)
	return p, 0
}

// wellKnown reports whether the segment at the start of s is ".well-known" (RFC 8615),
// which is not treated as a dotfile.
func wellKnown(s []byte) bool {
	const wk = ".well-known"
	return len(s) >= len(wk) && string(s[:len(wk)]) == wk && (len(s) == len(wk) || s[len(wk)] == '/')
}

// cleanPath normalizes a raw request path (as sent, without the query) with
// http1.NormalizePath and splits it; a path NormalizePath refuses gets its status.
// It serves callers that have no normalized path: options and requests built by hand.
func cleanPath(raw []byte) (cleanedPath, int) {
	if len(raw) > maxPathLen {
		return cleanedPath{}, 414
	}
	norm, err := http1.NormalizePath(nil, raw)
	if err != nil {
		return cleanedPath{}, err.Status
	}
	return splitPath(norm)
}

// escapePath percent-encodes a cleaned relative path for use in a Location field or
// an href with http1.AppendEscapedPath, whose output NormalizePath maps back to rel.
func escapePath(rel string) string {
	return string(http1.AppendEscapedPath(make([]byte, 0, len(rel)+16), []byte(rel)))
}
