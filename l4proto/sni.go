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
// unchanged. It fails with ErrNotTLS, ErrHelloTooLarge or ErrBadHello. A caller
// that asks again as more bytes arrive should use a HelloReader, which reads
// only the new bytes each time.
func ServerName(b []byte) (name string, done bool, err error) {
	var r HelloReader
	return r.Read(b)
}

// HelloReader is ServerName for a ClientHello that arrives in pieces: each
// call to Read is given every byte received so far (b extends the b of the
// call before), and it walks only the bytes it has not seen, so a hello
// trickled in many small records and reads costs time linear in its size.
// (Reading every prefix from its start cost time quadratic in it: a 15 KB hello
// sent in one-byte records, one per segment, took over a second of CPU.) Its
// answers are those of ServerName on the same bytes. The zero value is ready;
// it keeps the handshake message bytes gathered so far when the hello spans
// records, at most the message and one record's fragment.
type HelloReader struct {
	pos     int    // bytes of b walked: record headers and fragment bytes taken
	recLeft int    // fragment bytes of the current record not yet taken; 0 at a record header
	records int    // record headers read
	msg     []byte // handshake message bytes gathered across records
	end     bool   // the answer below is final
	name    string
	err     error
}

// Read reads the ClientHello in b, the bytes received so far, as ServerName does.
func (r *HelloReader) Read(b []byte) (name string, done bool, err error) {
	if r.end {
		return r.name, r.err == nil, r.err
	}
	msg, done, err := r.message(b)
	if !done && err == nil {
		return "", false, nil
	}
	if err == nil {
		name, err = helloServerName(msg)
	}
	r.end, r.name, r.err, r.msg = true, name, err, nil
	return name, err == nil, err
}

// message gathers the ClientHello handshake message from the handshake records
// at the start of b, from where the last call stopped; it copies only when the
// message spans more than one record.
func (r *HelloReader) message(b []byte) (msg []byte, done bool, err error) {
	for {
		if r.recLeft == 0 {
			h := b[r.pos:]
			if len(h) == 0 {
				return nil, false, nil
			}
			if h[0] != 0x16 {
				if r.records == 0 {
					return nil, false, ErrNotTLS
				}
				return nil, false, ErrBadHello // another record type inside the ClientHello
			}
			if len(h) >= 2 && h[1] != 3 {
				return nil, false, ErrNotTLS
			}
			if len(h) < recordHeader {
				return nil, false, nil
			}
			rl := int(binary.BigEndian.Uint16(h[3:5]))
			if rl == 0 || rl > 1<<14 {
				return nil, false, ErrBadHello
			}
			r.records++
			r.pos += recordHeader
			r.recLeft = rl
			if frag := b[r.pos:min(len(b), r.pos+rl)]; r.records == 1 && len(frag) == rl && len(frag) >= 4 {
				// The common case: the message is in the first record whole.
				if want := 4 + hsLen(frag); frag[0] == 1 && want <= len(frag) && want-4 <= MaxClientHello {
					return frag[:want], true, nil
				}
			}
		}
		take := min(r.recLeft, len(b)-r.pos)
		r.msg = append(r.msg, b[r.pos:r.pos+take]...)
		r.pos += take
		r.recLeft -= take
		if len(r.msg) >= 4 {
			if r.msg[0] != 1 {
				return nil, false, ErrBadHello // not a ClientHello
			}
			want := 4 + hsLen(r.msg)
			if want-4 > MaxClientHello {
				return nil, false, ErrHelloTooLarge
			}
			if len(r.msg) >= want {
				return r.msg[:want], true, nil
			}
		}
		if r.recLeft > 0 {
			return nil, false, nil
		}
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
