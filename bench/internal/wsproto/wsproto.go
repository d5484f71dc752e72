// Package wsproto is the small RFC 6455 subset that gale's benchmark tools share: the
// opening handshake from both sides and reading and writing single frames over buffered
// streams. It is benchmark tooling, not gale's WebSocket implementation: it handles
// unfragmented messages, masks what a client sends and checks nothing beyond what the tools
// need to tell a working server from a broken one.
package wsproto

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
)

// Opcodes from RFC 6455 section 5.2.
const (
	OpText   = 0x1
	OpBinary = 0x2
	OpClose  = 0x8
	OpPing   = 0x9
	OpPong   = 0xA
)

// acceptGUID is the fixed GUID of RFC 6455 section 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// MaxPayload bounds the payload ReadFrame accepts, so a broken peer cannot make a tool
// allocate without limit.
const MaxPayload = 16 << 20

// ErrTooLarge is returned by ReadFrame for a frame whose payload exceeds MaxPayload.
var ErrTooLarge = errors.New("wsproto: frame payload too large")

// NewKey returns a fresh random Sec-WebSocket-Key value (16 random bytes, base64).
func NewKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

// Accept returns the Sec-WebSocket-Accept value a server must answer for key.
func Accept(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// UpgradeRequest returns the bytes of a client opening handshake for path on host with key.
func UpgradeRequest(host, path, key string) []byte {
	return UpgradeRequestExt(host, path, key, "")
}

// UpgradeRequestExt is UpgradeRequest with a Sec-WebSocket-Extensions field offering ext
// (none when ext is empty).
func UpgradeRequestExt(host, path, key, ext string) []byte {
	if ext != "" {
		ext = "\r\nSec-WebSocket-Extensions: " + ext
	}
	return []byte("GET " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13" + ext + "\r\n\r\n")
}

// DeflateOffer is the permessage-deflate offer of the tools: no context takeover in either
// direction, so every message is compressed and inflated on its own (RFC 7692 section 7).
const DeflateOffer = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"

// ReadUpgradeResponse reads a server's handshake answer from r and returns nil when it is
// a 101 response carrying the Sec-WebSocket-Accept value that matches key.
func ReadUpgradeResponse(r *bufio.Reader, key string) error {
	_, err := ReadUpgradeResponseExt(r, key)
	return err
}

// ReadUpgradeResponseExt is ReadUpgradeResponse that also returns the response's
// Sec-WebSocket-Extensions value (empty when the server accepted no extension).
func ReadUpgradeResponseExt(r *bufio.Reader, key string) (string, error) {
	tp := textproto.NewReader(r)
	line, err := tp.ReadLine()
	if err != nil {
		return "", err
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(line, "HTTP/1.1 101") {
		return "", fmt.Errorf("wsproto: upgrade answered %q", line)
	}
	if got := hdr.Get("Sec-WebSocket-Accept"); got != Accept(key) {
		return "", fmt.Errorf("wsproto: bad Sec-WebSocket-Accept %q", got)
	}
	return hdr.Get("Sec-WebSocket-Extensions"), nil
}

// Frame is one WebSocket frame as read from the wire, with its payload already unmasked.
type Frame struct {
	Fin     bool
	Rsv1    bool // set on the first frame of a compressed message (permessage-deflate)
	Opcode  byte
	Payload []byte
}

// ReadFrame reads one frame from r, unmasking the payload if the sender masked it. The
// payload is read into buf when it fits, so a caller that reuses buf avoids allocations;
// the returned Payload aliases buf in that case.
func ReadFrame(r *bufio.Reader, buf []byte) (Frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: h[0]&0x80 != 0, Rsv1: h[0]&0x40 != 0, Opcode: h[0] & 0x0F}
	masked := h[1]&0x80 != 0
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return Frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return Frame{}, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > MaxPayload {
		return Frame{}, ErrTooLarge
	}
	var mask [4]byte
	if masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return Frame{}, err
		}
	}
	if uint64(cap(buf)) >= n {
		f.Payload = buf[:n]
	} else {
		f.Payload = make([]byte, n)
	}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return Frame{}, err
	}
	if masked {
		for i := range f.Payload {
			f.Payload[i] ^= mask[i&3]
		}
	}
	return f, nil
}

// AppendFrame appends one final frame with opcode and payload to dst. When mask is true
// (client to server) the payload is masked with a random key, as RFC 6455 section 5.3
// requires of clients; servers pass false.
func AppendFrame(dst []byte, opcode byte, payload []byte, mask bool) []byte {
	return appendFrame(dst, 0x80|opcode, payload, mask)
}

// AppendCompressed is AppendFrame for a payload already compressed with permessage-deflate
// (RSV1 set, RFC 7692 section 6).
func AppendCompressed(dst []byte, opcode byte, payload []byte, mask bool) []byte {
	return appendFrame(dst, 0xC0|opcode, payload, mask)
}

func appendFrame(dst []byte, b0 byte, payload []byte, mask bool) []byte {
	if !mask {
		return append(appendHeader(dst, b0, 0, len(payload)), payload...)
	}
	var key [4]byte
	if _, err := rand.Read(key[:]); err != nil {
		panic(err)
	}
	return appendMasked(dst, b0, payload, key)
}
