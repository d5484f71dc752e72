package l4proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"strconv"
)

// Limits of the PROXY protocol reader.
const (
	// MaxV1Header is the longest version 1 header, CRLF included (the
	// specification's bound: "PROXY UNKNOWN ffff:...:ffff ... 65535 65535\r\n").
	MaxV1Header = 107
	// MaxV2Body is the largest version 2 address and TLV block accepted (the
	// length field allows 65535; real senders use a few hundred bytes at most).
	MaxV2Body = 4096
)

// v2Sig is the twelve-byte signature that starts a version 2 header.
const v2Sig = "\r\n\r\n\x00\r\nQUIT\n"

// Command says what a PROXY header asks for.
type Command uint8

// Commands of the PROXY protocol.
const (
	// CmdProxy relays a connection for the client whose addresses the header
	// carries (Src, Dst), when it carries any (Unknown false).
	CmdProxy Command = iota
	// CmdLocal is a version 2 connection the proxy made on its own (a health
	// check): the receiver uses the real connection's addresses.
	CmdLocal
)

// Header is a parsed PROXY protocol header.
type Header struct {
	// Version is 1 (text) or 2 (binary).
	Version int
	// Command is CmdProxy or CmdLocal (version 2 only).
	Command Command
	// Unknown is true when the header carries no usable address: version 1
	// "UNKNOWN", version 2 AF_UNSPEC or AF_UNIX, or a LOCAL command.
	Unknown bool
	// Src and Dst are the client's address and the address it connected to;
	// zero when Unknown.
	Src, Dst netip.AddrPort
}

// ErrProxy is the class of every malformed PROXY header: errors.Is(err, ErrProxy)
// holds for all errors ParseProxy returns. It is a connection-level error: the
// connection that sent the header is closed.
var ErrProxy = errors.New("l4proto: malformed PROXY protocol header")

// proxyError is a malformed-header error with its reason.
type proxyError struct{ reason string }

func (e *proxyError) Error() string        { return "l4proto: PROXY header: " + e.reason }
func (e *proxyError) Is(target error) bool { return target == ErrProxy }

func perr(reason string) error { return &proxyError{reason} }

// ParseProxy reads a PROXY protocol header (version 1 or 2) at the start of b.
// It returns the header and the number of bytes it took (n > 0); or n == 0 and a
// nil error when b is a proper prefix of a header and more bytes are needed; or
// an error wrapping ErrProxy when b does not start with a valid header (including
// bytes that start neither signature, and headers longer than MaxV1Header or
// MaxV2Body). Version 2 TLVs are checked for bounds and skipped.
func ParseProxy(b []byte) (Header, int, error) {
	switch {
	case len(b) == 0:
		return Header{}, 0, nil
	case b[0] == 'P':
		return parseV1(b)
	case b[0] == '\r':
		return parseV2(b)
	}
	return Header{}, 0, perr("no PROXY signature")
}

// hasPrefixOf reports whether b and sig agree on their common length.
func hasPrefixOf(b []byte, sig string) bool {
	k := min(len(b), len(sig))
	return string(b[:k]) == sig[:k]
}

func parseV1(b []byte) (Header, int, error) {
	if !hasPrefixOf(b, "PROXY ") {
		return Header{}, 0, perr("no PROXY signature")
	}
	// The first CR or LF decides, so that every split of the input gives the
	// answer the whole does: a CR must be followed by the LF that ends the line
	// within MaxV1Header bytes, and an LF must follow a CR.
	i := bytes.IndexAny(b[:min(len(b), MaxV1Header)], "\r\n")
	switch {
	case i < 0 && len(b) < MaxV1Header:
		return Header{}, 0, nil
	case i < 0 || i == MaxV1Header-1 && b[i] == '\r':
		return Header{}, 0, perr("version 1 header longer than 107 bytes")
	case b[i] == '\n':
		return Header{}, 0, perr("line does not end in CRLF")
	case i+1 == len(b):
		return Header{}, 0, nil
	case b[i+1] != '\n':
		return Header{}, 0, perr("CR not followed by LF")
	}
	end := i + 1 // the LF
	line := string(b[len("PROXY ") : end-1])
	h := Header{Version: 1}
	f := splitSpaces(line)
	if len(f) >= 1 && f[0] == "UNKNOWN" {
		// The receiver must ignore anything after UNKNOWN.
		h.Unknown = true
		return h, end + 1, nil
	}
	if len(f) != 5 {
		return Header{}, 0, perr("version 1 needs protocol, two addresses and two ports")
	}
	var want4 bool
	switch f[0] {
	case "TCP4":
		want4 = true
	case "TCP6":
	default:
		return Header{}, 0, perr("unknown version 1 protocol " + strconv.Quote(f[0]))
	}
	src, err := v1Addr(f[1], f[3], want4)
	if err != nil {
		return Header{}, 0, err
	}
	dst, err := v1Addr(f[2], f[4], want4)
	if err != nil {
		return Header{}, 0, err
	}
	h.Src, h.Dst = src, dst
	return h, end + 1, nil
}

// splitSpaces splits s at single spaces; an empty field (two spaces, a leading
// or trailing space) makes the header invalid, which the field count catches.
func splitSpaces(s string) []string {
	var out []string
	for {
		i := indexSpace(s)
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
}

func indexSpace(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return i
		}
	}
	return -1
}

// v1Addr parses one address and port of a version 1 header.
func v1Addr(ip, port string, want4 bool) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" || a.Is4() != want4 {
		return netip.AddrPort{}, perr("bad address " + strconv.Quote(ip))
	}
	if len(port) == 0 || len(port) > 5 || (len(port) > 1 && port[0] == '0') {
		return netip.AddrPort{}, perr("bad port " + strconv.Quote(port))
	}
	p := 0
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return netip.AddrPort{}, perr("bad port " + strconv.Quote(port))
		}
		p = p*10 + int(port[i]-'0')
	}
	if p > 65535 {
		return netip.AddrPort{}, perr("bad port " + strconv.Quote(port))
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// Version 2 address families and transports (the high and low nibble of byte 13).
const (
	famUnspec = 0x0
	famInet   = 0x1
	famInet6  = 0x2
	famUnix   = 0x3
	trStream  = 0x1
)

func parseV2(b []byte) (Header, int, error) {
	if !hasPrefixOf(b, v2Sig) {
		return Header{}, 0, perr("no PROXY signature")
	}
	if len(b) < 16 {
		if len(b) > 12 && b[12]>>4 != 2 {
			return Header{}, 0, perr("version 2 signature with another version")
		}
		return Header{}, 0, nil
	}
	if b[12]>>4 != 2 {
		return Header{}, 0, perr("version 2 signature with another version")
	}
	h := Header{Version: 2}
	switch b[12] & 0xf {
	case 0:
		h.Command = CmdLocal
	case 1:
		h.Command = CmdProxy
	default:
		return Header{}, 0, perr("unknown version 2 command")
	}
	fam, tr := b[13]>>4, b[13]&0xf
	n := int(binary.BigEndian.Uint16(b[14:16]))
	if n > MaxV2Body {
		return Header{}, 0, perr("version 2 header longer than the 4096-byte limit")
	}
	if h.Command == CmdLocal {
		// The specification: a receiver must accept a LOCAL connection, use the
		// real endpoints and discard the protocol block, family included. Its
		// bytes are skipped unread (a health check's TLVs, or whatever address
		// block its sender filled in).
		if len(b) < 16+n {
			return Header{}, 0, nil
		}
		h.Unknown = true
		return h, 16 + n, nil
	}
	var need int
	switch fam {
	case famUnspec:
	case famInet:
		need = 12
	case famInet6:
		need = 36
	case famUnix:
		need = 216
	default:
		return Header{}, 0, perr("unknown version 2 address family")
	}
	if fam != famUnspec && tr != trStream {
		return Header{}, 0, perr("version 2 header for a datagram or unknown transport")
	}
	if n < need {
		return Header{}, 0, perr("version 2 address block shorter than its family needs")
	}
	if len(b) < 16+n {
		return Header{}, 0, nil
	}
	body := b[16 : 16+n]
	if err := checkTLVs(b[:16+n], 16+need); err != nil {
		return Header{}, 0, err
	}
	switch {
	case fam == famUnspec || fam == famUnix:
		h.Unknown = true
	case fam == famInet:
		h.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:12]))
	default:
		h.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])), binary.BigEndian.Uint16(body[34:36]))
	}
	return h, 16 + n, nil
}

// pp2TypeCRC32C is the TLV that carries the CRC-32C of the whole header.
const pp2TypeCRC32C = 0x03

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkTLVs walks the type-length-value records of the header hdr from off
// (after the addresses) and reports one that runs past the header. Their
// contents are not interpreted, except a PP2_TYPE_CRC32C checksum, which the
// specification says a receiver must verify: the CRC-32C of the whole header
// with the checksum's own four bytes taken as zero.
func checkTLVs(hdr []byte, off int) error {
	for b := hdr[off:]; len(b) > 0; {
		if len(b) < 3 {
			return perr("truncated version 2 TLV")
		}
		l := int(binary.BigEndian.Uint16(b[1:3]))
		if 3+l > len(b) {
			return perr("version 2 TLV runs past the header")
		}
		if b[0] == pp2TypeCRC32C {
			if l != 4 {
				return perr("version 2 CRC32C TLV not 4 bytes long")
			}
			at := len(hdr) - len(b) + 3 // the checksum's offset in hdr
			sum := crc32.Update(0, castagnoli, hdr[:at])
			sum = crc32.Update(sum, castagnoli, []byte{0, 0, 0, 0})
			sum = crc32.Update(sum, castagnoli, hdr[at+4:])
			if sum != binary.BigEndian.Uint32(hdr[at:at+4]) {
				return perr("version 2 CRC32C checksum does not match the header")
			}
		}
		b = b[3+l:]
	}
	return nil
}

// AppendV1 appends a version 1 header for a connection from src to dst. An
// invalid address on either side, or an IPv4 and an IPv6 address that cannot be
// brought to one family, gives "PROXY UNKNOWN\r\n".
func AppendV1(b []byte, src, dst netip.AddrPort) []byte {
	src, dst, ok := sameFamily(src, dst)
	if !ok {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	b = append(b, "PROXY TCP4 "...)
	if src.Addr().Is6() {
		b[len(b)-2] = '6'
	}
	b = src.Addr().AppendTo(b)
	b = append(b, ' ')
	b = dst.Addr().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(src.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(dst.Port()), 10)
	return append(b, "\r\n"...)
}

// AppendV2 appends a version 2 PROXY header (no TLVs) for a connection from src
// to dst; without usable addresses (as AppendV1) it sends AF_UNSPEC.
func AppendV2(b []byte, src, dst netip.AddrPort) []byte {
	b = append(b, v2Sig...)
	src, dst, ok := sameFamily(src, dst)
	switch {
	case !ok:
		return append(b, 0x21, 0x00, 0, 0)
	case src.Addr().Is4():
		b = append(b, 0x21, famInet<<4|trStream, 0, 12)
		s, d := src.Addr().As4(), dst.Addr().As4()
		b = append(append(b, s[:]...), d[:]...)
	default:
		b = append(b, 0x21, famInet6<<4|trStream, 0, 36)
		s, d := src.Addr().As16(), dst.Addr().As16()
		b = append(append(b, s[:]...), d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// sameFamily unmaps both addresses and, when one is IPv4 and the other IPv6,
// maps the IPv4 one into IPv6. It reports false when either is invalid.
func sameFamily(src, dst netip.AddrPort) (netip.AddrPort, netip.AddrPort, bool) {
	if !src.IsValid() || !dst.IsValid() {
		return src, dst, false
	}
	s, d := src.Addr().Unmap().WithZone(""), dst.Addr().Unmap().WithZone("")
	if s.Is4() != d.Is4() {
		s, d = netip.AddrFrom16(s.As16()), netip.AddrFrom16(d.As16())
	}
	return netip.AddrPortFrom(s, src.Port()), netip.AddrPortFrom(d, dst.Port()), true
}
