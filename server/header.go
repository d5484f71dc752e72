package server

import "strings"

// Header is a response header list. It keeps insertion order and compares names
// case-insensitively. A Date or Server field in it replaces the one the server
// would add, and an empty one means none. It is owned by the request's loop.
type Header struct {
	kv  []headerField
	raw []byte // pre-rendered "Name: value\r\n" lines appended verbatim
}

type headerField struct{ name, value string }

// Set replaces every field called name with one field.
func (h *Header) Set(name, value string) {
	for i := range h.kv {
		if strings.EqualFold(h.kv[i].name, name) {
			h.kv[i].value = value
			h.delFrom(name, i+1)
			return
		}
	}
	h.kv = append(h.kv, headerField{name, value})
}

// Add appends a field, keeping existing fields of the same name.
func (h *Header) Add(name, value string) { h.kv = append(h.kv, headerField{name, value}) }

// Get returns the first value of name, or "".
func (h *Header) Get(name string) string {
	for i := range h.kv {
		if strings.EqualFold(h.kv[i].name, name) {
			return h.kv[i].value
		}
	}
	return ""
}

// Has reports whether a field called name is present.
func (h *Header) Has(name string) bool {
	for i := range h.kv {
		if strings.EqualFold(h.kv[i].name, name) {
			return true
		}
	}
	return false
}

// replaces reports whether the handler set the field name, which then stands
// instead of the server's own (Date, Server); a field with an empty value asks
// for none at all, and is removed.
func (h *Header) replaces(name string) bool {
	if !h.Has(name) {
		return false
	}
	if h.Get(name) == "" {
		h.Del(name)
	}
	return true
}

// Del removes every field called name.
func (h *Header) Del(name string) { h.delFrom(name, 0) }

func (h *Header) delFrom(name string, from int) {
	out := h.kv[:from]
	for _, f := range h.kv[from:] {
		if !strings.EqualFold(f.name, name) {
			out = append(out, f)
		}
	}
	for i := len(out); i < len(h.kv); i++ {
		h.kv[i] = headerField{}
	}
	h.kv = out
}

// AppendRaw appends pre-rendered header lines ("Name: value\r\n" each) verbatim. The
// caller guarantees they are well formed; the static file cache uses it to avoid
// re-rendering fixed headers.
func (h *Header) AppendRaw(lines []byte) { h.raw = append(h.raw, lines...) }

// Each calls f for every field in order.
func (h *Header) Each(f func(name, value string)) {
	for _, kv := range h.kv {
		f(kv.name, kv.value)
	}
}

// Reset empties the list, keeping its storage.
func (h *Header) Reset() {
	for i := range h.kv {
		h.kv[i] = headerField{}
	}
	h.kv = h.kv[:0]
	h.raw = h.raw[:0]
}
