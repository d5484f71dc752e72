package l4proto

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

// captureConn records what is written to it and fails every read, so that a TLS
// client handshake writes its ClientHello and stops.
type captureConn struct {
	net.Conn
	out []byte
}

func (c *captureConn) Write(p []byte) (int, error) { c.out = append(c.out, p...); return len(p), nil }
func (c *captureConn) Read([]byte) (int, error)    { return 0, errors.New("capture: no server") }
func (c *captureConn) Close() error                { return nil }
func (c *captureConn) SetDeadline(time.Time) error { return nil }
func (c *captureConn) SetReadDeadline(time.Time) error {
	return nil
}
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }

// clientHello returns the first flight of a Go TLS client asking for name.
func clientHello(t testing.TB, name string) []byte {
	c := &captureConn{}
	tls.Client(c, &tls.Config{ServerName: name, InsecureSkipVerify: name == ""}).Handshake()
	if len(c.out) < 50 {
		t.Fatalf("captured only %d bytes", len(c.out))
	}
	return c.out
}

// reframe cuts the handshake messages of one-record hello into records of at most
// size bytes each.
func reframe(hello []byte, size int) []byte {
	body := hello[recordHeader:]
	var out []byte
	for len(body) > 0 {
		k := min(size, len(body))
		out = append(out, 0x16, 3, 1, byte(k>>8), byte(k))
		out = append(out, body[:k]...)
		body = body[k:]
	}
	return out
}

func TestServerName(t *testing.T) {
	for _, name := range []string{"a.example", "Mixed.Case.Example", ""} {
		hello := clientHello(t, name)
		want := map[string]string{"Mixed.Case.Example": "mixed.case.example"}[name]
		if want == "" {
			want = name
		}
		for _, size := range []int{1 << 14, 100, 7, 1} {
			in := reframe(hello, size)
			if size == 1 && len(in) > 3000 {
				in = in[:3000] // keep the byte-at-a-time walk short; still a prefix
			}
			o := sniAllWays(t, in)
			if size == 1 && len(in) == 3000 && len(reframe(hello, 1)) > 3000 {
				if !o.more {
					t.Fatalf("truncated one-byte records: got %v, want need-more", o)
				}
				continue
			}
			if o.err != nil || o.val != want {
				t.Fatalf("%q in records of %d: got %v, want %q", name, size, o, want)
			}
		}
	}
}

// TestServerNameMinimal reads the name of a hand-made hello whose only
// extension is server_name, with a trailing dot dropped.
func TestServerNameMinimal(t *testing.T) {
	if o := sniAllWays(t, helloWithName("Tiny.Example.")); o.err != nil || o.val != "tiny.example" {
		t.Fatalf("got %v, want tiny.example", o)
	}
}

func TestServerNameErrors(t *testing.T) {
	hello := clientHello(t, "a.example")
	big := []byte{0x16, 3, 1, 0x40, 0, 1, 0, 0x40, 0x01}
	badName := append([]byte(nil), hello...)
	copy(badName[len(badName)-len("a.example"):], "a.ex mple") // wrong if the name is not last
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"http", []byte("GET / HTTP/1.1\r\n\r\n"), ErrNotTLS},
		{"ssl2-ish version", []byte{0x16, 2, 0, 0, 5}, ErrNotTLS},
		{"alert record", []byte{0x15, 3, 1, 0, 2, 2, 40}, ErrNotTLS},
		{"empty record", []byte{0x16, 3, 1, 0, 0}, ErrBadHello},
		{"record over 16K", []byte{0x16, 3, 1, 0x40, 0x01}, ErrBadHello},
		{"server hello", []byte{0x16, 3, 3, 0, 4, 2, 0, 0, 0}, ErrBadHello},
		{"oversized hello", big, ErrHelloTooLarge},
		{"truncated body", []byte{0x16, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3}, ErrBadHello},
		{"record type change", append(reframe(hello, 10)[:15], 0x17, 3, 3, 0, 1, 0), ErrBadHello},
		{"name is a dot", helloWithName("."), ErrBadHello},
		{"empty name", helloWithName(""), ErrBadHello},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if o := sniAllWays(t, tc.in); !errors.Is(o.err, tc.want) {
				t.Fatalf("got %v, want %v", o, tc.want)
			}
		})
	}
	if _, _, err := ServerName(badName); err == nil {
		// The Go client puts server_name first, so the edit above may land in
		// another extension; either way the reader must not accept a space in a name.
		if name, _, _ := ServerName(badName); name == "a.ex mple" {
			t.Fatal("accepted a server name with a space")
		}
	}
}

// helloWithName is a minimal ClientHello record whose only extension is a
// server_name list holding the host_name name.
func helloWithName(name string) []byte {
	u16 := func(b []byte, n int) []byte { return append(b, byte(n>>8), byte(n)) }
	entry := u16(append([]byte{}, 0), len(name)) // host_name, its length
	entry = append(entry, name...)
	ext := u16(u16(u16(nil, 0), 2+len(entry)), len(entry)) // type 0, body length, list length
	ext = append(ext, entry...)
	body := append([]byte{3, 3}, make([]byte, 32)...) // legacy_version, random
	body = append(body, 0)                            // no session id
	body = append(body, 0, 2, 0x13, 0x01)             // one cipher suite
	body = append(body, 1, 0)                         // null compression
	body = u16(body, len(ext))
	body = append(body, ext...)
	msg := append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	return append(u16([]byte{0x16, 3, 1}, len(msg)), msg...)
}

// TestHelloReaderWalksEachByteOnce: fed a hello in one-byte records one byte
// at a time, a HelloReader has walked exactly the whole record headers and the
// fragment bytes given after each call, and gathered exactly those fragment
// bytes, so the work is linear in the
// hello's size. (ServerName on every prefix re-walked and re-joined all the
// records each time: a 15 KB hello trickled this way cost a relay over a
// second of CPU.)
func TestHelloReaderWalksEachByteOnce(t *testing.T) {
	hello := clientHello(t, "a.example")
	in := reframe(hello, 1)
	var r HelloReader
	for k := 1; k <= len(in); k++ {
		name, done, err := r.Read(in[:k])
		if err != nil {
			t.Fatalf("at %d: %v", k, err)
		}
		if done {
			if k != len(in) || name != "a.example" {
				t.Fatalf("done at %d of %d with %q", k, len(in), name)
			}
			return
		}
		// Whole records of six bytes, then the next header once it is whole.
		recs, rest := k/(recordHeader+1), k%(recordHeader+1)
		walked := recs * (recordHeader + 1)
		if rest == recordHeader {
			walked += recordHeader
		}
		if r.pos != walked || len(r.msg) != recs {
			t.Fatalf("after %d bytes: walked %d, gathered %d; want %d and %d", k, r.pos, len(r.msg), walked, recs)
		}
	}
	t.Fatal("the hello never completed")
}
