package l4proto

import (
	"encoding/binary"
	"errors"
	"strings"
)

// MaxClientHello is the largest ClientHello handshake message (its body, without
// the four-byte handshake header) ServerName accepts. Hellos with post-quantum
// key shares are about 2 KiB; 16 KiB leaves room for large extensions while
// bounding what a proxy holds before it picks an upstream.
const MaxClientHello = 16 << 10

// Errors of ServerName. All are connection-level: the connection is closed.
var (
	// ErrNotTLS means the bytes do not start with a TLS handshake record.
	ErrNotTLS = errors.New("l4proto: not a TLS handshake")
	// ErrHelloTooLarge means the ClientHello is larger than MaxClientHello.
	ErrHelloTooLarge = errors.New("l4proto: TLS ClientHello larger than the 16 KiB limit")
	// ErrBadHello means the records or the ClientHello are malformed.
	ErrBadHello = errors.New("l4proto: malformed TLS ClientHello")
)

// recordHeader is the size of a TLS record header: type, version, length.
const recordHeader = 5

// ServerName reads the TLS ClientHello at the start of b (the first bytes a
// client sent) and returns the server name it asks for, lower-cased, or "" when
// it has no server_name extension. done is false, with a nil error, while b
// holds only part of the ClientHello, which may be split across several TLS
// records and any number of reads. b is not modified; the caller forwards it
// unchanged. It fails with ErrNotTLS, ErrHelloTooLarge or ErrBadHello.
func ServerName(b []byte) (name string, done bool, err error) {
	msg, done, err := helloMessage(b)
	if !done || err != nil {
		return "", done, err
	}
	name, err = helloServerName(msg)
	return name, err == nil, err
}

// helloMessage gathers the ClientHello handshake message from the handshake
// records at the start of b, copying only when it spans more than one record.
func helloMessage(b []byte) (msg []byte, done bool, err error) {
	var joined []byte
	want := -1 // handshake message length including its 4-byte header, once known
	for first := true; ; first = false {
		if len(b) == 0 {
			return nil, false, nil
		}
		if b[0] != 0x16 {
			if first {
				return nil, false, ErrNotTLS
			}
			return nil, false, ErrBadHello // another record type inside the ClientHello
		}
		if len(b) >= 2 && b[1] != 3 {
			return nil, false, ErrNotTLS
		}
		if len(b) < recordHeader {
			return nil, false, nil
		}
		rl := int(binary.BigEndian.Uint16(b[3:5]))
		if rl == 0 || rl > 1<<14 {
			return nil, false, ErrBadHello
		}
		frag := b[recordHeader:min(len(b), recordHeader+rl)]
		if first && len(frag) == rl && len(frag) >= 4 {
			// The common case: the message header is in the first record whole.
			if want = 4 + hsLen(frag); frag[0] == 1 && want <= len(frag) && want-4 <= MaxClientHello {
				return frag[:want], true, nil
			}
		}
		joined = append(joined, frag...)
		if len(joined) >= 4 {
			if joined[0] != 1 {
				return nil, false, ErrBadHello // not a ClientHello
			}
			want = 4 + hsLen(joined)
			if want-4 > MaxClientHello {
				return nil, false, ErrHelloTooLarge
			}
			if len(joined) >= want {
				return joined[:want], true, nil
			}
		}
		if len(frag) < rl {
			return nil, false, nil
		}
		b = b[recordHeader+rl:]
	}
}

// hsLen is the 24-bit body length of the handshake message header at b[0:4].
func hsLen(b []byte) int { return int(b[1])<<16 | int(b[2])<<8 | int(b[3]) }

// reader walks a byte slice; any read past its end sets bad.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if n > len(r.b) {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() int {
	v := r.take(1)
	if len(v) < 1 {
		return 0
	}
	return int(v[0])
}

func (r *reader) u16() int {
	v := r.take(2)
	if len(v) < 2 {
		return 0
	}
	return int(binary.BigEndian.Uint16(v))
}

// vec reads a vector with an n-byte length prefix.
func (r *reader) vec(n int) []byte {
	if n == 1 {
		return r.take(r.u8())
	}
	return r.take(r.u16())
}

// helloServerName finds the host_name entry of the server_name extension in a
// whole ClientHello message (handshake header included).
func helloServerName(msg []byte) (string, error) {
	r := &reader{b: msg[4:]}
	r.take(2 + 32) // legacy_version, random
	r.vec(1)       // legacy_session_id
	r.vec(2)       // cipher_suites
	r.vec(1)       // legacy_compression_methods
	if r.bad {
		return "", ErrBadHello
	}
	if len(r.b) == 0 {
		return "", nil // no extensions at all
	}
	exts := &reader{b: r.vec(2)}
	if r.bad || len(r.b) != 0 {
		return "", ErrBadHello
	}
	for len(exts.b) > 0 {
		typ := exts.u16()
		body := exts.vec(2)
		if exts.bad {
			return "", ErrBadHello
		}
		if typ != 0 {
			continue
		}
		list := &reader{b: (&reader{b: body}).vec(2)}
		for len(list.b) > 0 {
			kind := list.u8()
			host := list.vec(2)
			if list.bad {
				return "", ErrBadHello
			}
			if kind == 0 {
				return hostName(host)
			}
		}
		return "", nil
	}
	return "", nil
}

// hostName checks and lower-cases a server name: 1-255 bytes of printable ASCII
// without spaces, as DNS names are written; a trailing dot is dropped. A name
// that is only a dot is malformed (it would read as a hello without a name).
func hostName(h []byte) (string, error) {
	if len(h) == 0 || len(h) > 255 || string(h) == "." {
		return "", ErrBadHello
	}
	for _, c := range h {
		if c <= ' ' || c >= 0x7f {
			return "", ErrBadHello
		}
	}
	return strings.TrimSuffix(strings.ToLower(string(h)), "."), nil
}
