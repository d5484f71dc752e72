package static

import (
	"strconv"
	"strings"
)

// variantKey is the cache key of the precompressed variant of rel in coding i of
// encodings. The NUL separator cannot occur in a cleaned path, so a variant never
// shares a key with a file requested by name: /app.js.br asked for directly is served
// as itself (application/x-brotli, no Content-Encoding), while the variant entry for
// /app.js carries app.js's type and Content-Encoding: br.
func variantKey(rel string, i int) string {
	return rel + "\x00" + encodings[i].name
}

// splitKey undoes variantKey: it returns the requested path and the index of the
// coding in encodings, or -1 for the identity entry.
func splitKey(key string) (rel string, coding int) {
	rel, name, ok := strings.Cut(key, "\x00")
	if !ok {
		return key, -1
	}
	for i, e := range encodings {
		if e.name == name {
			return rel, i
		}
	}
	return key, -1
}

// loadCandidate opens the file of a cache key beneath the root and builds an
// unpublished entry (refs 0) with its validators and rendered header lines. For an
// identity entry it also probes the .br, .zst and .gz siblings. A directory gives
// errIsDir (errNotFound for a variant: a directory is never a variant).
func (h *Handler) loadCandidate(key string) (*entry, error) {
	rel, coding := splitKey(key)
	name := rel
	if coding >= 0 {
		name = rel + encodings[coding].suffix
	}
	f, fi, err := h.open(name)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		f.Close()
		if coding >= 0 {
			return nil, errNotFound
		}
		return nil, errIsDir
	}
	e := &entry{
		key:    key,
		file:   f,
		fd:     int(f.Fd()),
		fi:     fi,
		size:   fi.Size(),
		mtime:  fi.ModTime().UnixNano(),
		modSec: fi.ModTime().Unix(),
		ctype:  contentType(rel),
	}
	e.releaseFn = e.release
	if coding < 0 {
		e.siblings = h.probeSiblings(rel)
		for i := range encodings {
			if e.siblings&encodings[i].enc != 0 {
				e.variants[i] = variantKey(rel, i)
			}
		}
	}
	h.renderHeaders(e, coding)
	return e, nil
}

// probeSiblings reports which precompressed siblings of rel exist as regular files.
func (h *Handler) probeSiblings(rel string) encoding {
	var found encoding
	for _, enc := range encodings {
		f, fi, err := h.open(rel + enc.suffix)
		if err != nil {
			continue
		}
		f.Close()
		if fi.Mode().IsRegular() {
			found |= enc.enc
		}
	}
	return found
}

// renderHeaders fills the entity-tag and the pre-rendered header lines of e. The
// entity-tag is strong, "<hex mtime ns>-<hex size>" plus "-<coding>" for a variant, so
// each representation has its own tag and If-Range works on every one of them.
func (h *Handler) renderHeaders(e *entry, coding int) {
	var b strings.Builder
	b.WriteByte('"')
	b.WriteString(strconv.FormatInt(e.mtime, 16))
	b.WriteByte('-')
	b.WriteString(strconv.FormatInt(e.size, 16))
	if coding >= 0 {
		b.WriteByte('-')
		b.WriteString(encodings[coding].name)
	}
	b.WriteByte('"')
	e.etag = b.String()

	meta := make([]byte, 0, 128)
	meta = appendField(meta, "Last-Modified", formatHTTPDate(e.modSec))
	e.lmLen = len(meta)
	meta = appendField(meta, "ETag", e.etag)
	if h.cacheControl != "" {
		meta = appendField(meta, "Cache-Control", h.cacheControl)
	}
	if coding >= 0 || e.siblings != 0 {
		meta = appendField(meta, "Vary", "Accept-Encoding")
	}
	e.hdrMeta = meta
	e.hdrType = appendField(nil, "Content-Type", e.ctype)
	body := appendField(nil, "Accept-Ranges", "bytes")
	if coding >= 0 {
		body = appendField(body, "Content-Encoding", encodings[coding].name)
		e.encoded = true
	}
	e.hdrBody = body
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}
