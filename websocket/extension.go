package websocket

import (
	"strconv"

	"github.com/gale-server/gale/http1"
)

// DeflateOptions is the server's policy for permessage-deflate (RFC 7692). The parameters
// are what the server asks for on top of what the client offers.
type DeflateOptions struct {
	// ServerNoContextTakeover makes the server compress every message on its own (no
	// compressor is held between messages). It is also set when the client asks for it.
	ServerNoContextTakeover bool
	// ClientNoContextTakeover asks the client to do the same, so that the server keeps no
	// Window of the client's messages. It is also set when the client offers it.
	ClientNoContextTakeover bool
	// ServerMaxWindowBits (8-15, 0 for 15) bounds the LZ77 window of the server's
	// compressor. Below 15 see DeflateParams.ServerMaxWindowBits.
	ServerMaxWindowBits int
	// ClientMaxWindowBits (8-15, 0 for 15) asks the client for a smaller window; it can
	// only be asked when the client offers client_max_window_bits.
	ClientMaxWindowBits int
	// Level is the compress/flate level for the server's messages; 0 means
	// flate.BestSpeed.
	Level int
}

// DefaultDeflateOptions returns no context takeover in both directions, so that an idle
// connection holds no compression state, full windows and flate.BestSpeed.
func DefaultDeflateOptions() DeflateOptions {
	return DeflateOptions{ServerNoContextTakeover: true, ClientNoContextTakeover: true}
}

// DeflateParams are the negotiated permessage-deflate parameters.
type DeflateParams struct {
	// ServerNoContextTakeover: the server resets its compressor for every message.
	ServerNoContextTakeover bool
	// ClientNoContextTakeover: the client resets its compressor for every message.
	ClientNoContextTakeover bool
	// ServerMaxWindowBits (8-15) bounds the server's window. compress/flate always uses a
	// 32 KiB window, so below 15 gale's Compressor keeps the promise another way: the
	// negotiation also sets ServerNoContextTakeover, and only messages of at most
	// 1<<ServerMaxWindowBits bytes are compressed (no back-reference can then reach
	// further); longer ones are sent uncompressed, which RFC 7692 §6 allows.
	ServerMaxWindowBits int
	// ClientMaxWindowBits (8-15) bounds the client's window. The Decompressor accepts any
	// window, so this only matters to the client.
	ClientMaxWindowBits int
	// sendServerBits and sendClientBits say whether the response names the window sizes.
	sendServerBits, sendClientBits bool
}

// Send returns the rules for the messages an endpoint of role compresses: whether it
// keeps its compressor's context between messages, and its window bits.
func (p DeflateParams) Send(role Role) (takeover bool, windowBits int) {
	if role == RoleClient {
		return !p.ClientNoContextTakeover, p.ClientMaxWindowBits
	}
	return !p.ServerNoContextTakeover, p.ServerMaxWindowBits
}

// Receive returns the rules for the messages an endpoint of role decompresses: whether
// the peer keeps its context (so the Decompressor must keep its window), and the peer's
// window bits.
func (p DeflateParams) Receive(role Role) (takeover bool, windowBits int) {
	if role == RoleClient {
		return p.Send(RoleServer)
	}
	return p.Send(RoleClient)
}

// AppendExtension appends the Sec-WebSocket-Extensions value of the negotiation response.
func (p DeflateParams) AppendExtension(dst []byte) []byte {
	dst = append(dst, "permessage-deflate"...)
	if p.ServerNoContextTakeover {
		dst = append(dst, "; server_no_context_takeover"...)
	}
	if p.ClientNoContextTakeover {
		dst = append(dst, "; client_no_context_takeover"...)
	}
	if p.sendServerBits {
		dst = append(dst, "; server_max_window_bits="...)
		dst = strconv.AppendInt(dst, int64(p.ServerMaxWindowBits), 10)
	}
	if p.sendClientBits {
		dst = append(dst, "; client_max_window_bits="...)
		dst = strconv.AppendInt(dst, int64(p.ClientMaxWindowBits), 10)
	}
	return dst
}

// deflateOffer is one parsed permessage-deflate element of Sec-WebSocket-Extensions.
type deflateOffer struct {
	serverNoCT, clientNoCT bool
	serverBits             int // 0 when absent
	clientBits             int // 0 when absent, -1 when present without a value
}

// negotiateDeflate accepts the first valid permessage-deflate offer in the request's
// Sec-WebSocket-Extensions fields (RFC 7692 §5, §7.1). Invalid offers (unknown or
// repeated parameters, values out of range) are declined and the next one is tried.
func negotiateDeflate(h Header, opt *DeflateOptions) (DeflateParams, bool) {
	for i := 0; ; i++ {
		v, ok := h.Field("Sec-WebSocket-Extensions", i)
		if !ok {
			return DeflateParams{}, false
		}
		for list := v; list != nil; {
			var ext []byte
			ext, list = nextItem(list, ',')
			o, ok := parseDeflateOffer(ext)
			if ok {
				return respond(o, opt), true
			}
		}
	}
}

// respond computes the parameters of the response accepting offer o.
func respond(o deflateOffer, opt *DeflateOptions) DeflateParams {
	p := DeflateParams{
		ServerNoContextTakeover: o.serverNoCT || opt.ServerNoContextTakeover,
		ClientNoContextTakeover: o.clientNoCT || opt.ClientNoContextTakeover,
		ServerMaxWindowBits:     15,
		ClientMaxWindowBits:     15,
	}
	if b := opt.ServerMaxWindowBits; b >= 8 && b < 15 {
		p.ServerMaxWindowBits, p.sendServerBits = b, true
	}
	if o.serverBits > 0 {
		p.sendServerBits = true
		p.ServerMaxWindowBits = min(p.ServerMaxWindowBits, o.serverBits)
	}
	if p.ServerMaxWindowBits < 15 {
		p.ServerNoContextTakeover = true
	}
	if o.clientBits > 0 {
		p.ClientMaxWindowBits = o.clientBits
	}
	if b := opt.ClientMaxWindowBits; o.clientBits != 0 && b >= 8 && b < p.ClientMaxWindowBits {
		p.ClientMaxWindowBits, p.sendClientBits = b, true
	}
	return p
}

// parseDeflateOffer parses one extension element; ok is false when it is not
// permessage-deflate or breaks RFC 7692 §7.1.
func parseDeflateOffer(ext []byte) (o deflateOffer, ok bool) {
	name, params := nextItem(ext, ';')
	if !foldEq(name, "permessage-deflate") {
		return o, false
	}
	seen := 0
	for params != nil {
		var p []byte
		p, params = nextItem(params, ';')
		key, val, hasVal := cutParam(p)
		var bit int
		switch {
		case foldEq(key, "server_no_context_takeover") && !hasVal:
			bit, o.serverNoCT = 1, true
		case foldEq(key, "client_no_context_takeover") && !hasVal:
			bit, o.clientNoCT = 2, true
		case foldEq(key, "server_max_window_bits") && hasVal:
			bit, o.serverBits = 4, windowBits(val)
			if o.serverBits == 0 {
				return o, false
			}
		case foldEq(key, "client_max_window_bits"):
			bit, o.clientBits = 8, -1
			if hasVal {
				if o.clientBits = windowBits(val); o.clientBits == 0 {
					return o, false
				}
			}
		default:
			return o, false
		}
		if seen&bit != 0 {
			return o, false
		}
		seen |= bit
	}
	return o, true
}

// cutParam splits "name[=value]" and unquotes a quoted-string value.
func cutParam(p []byte) (key, val []byte, hasVal bool) {
	for i, c := range p {
		if c == '=' {
			key, val = http1.TrimOWS(p[:i]), http1.TrimOWS(p[i+1:])
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = unquote(val[1 : len(val)-1])
			}
			return key, val, true
		}
	}
	return p, nil, false
}

// unquote removes quoted-pair backslashes (RFC 9110 §5.6.4).
func unquote(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			i++
		}
		out = append(out, b[i])
	}
	return out
}

// windowBits parses a window size: a decimal 8-15 without leading zeros, else 0.
func windowBits(v []byte) int {
	switch {
	case len(v) == 1 && v[0] >= '8' && v[0] <= '9':
		return int(v[0] - '0')
	case len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5':
		return 10 + int(v[1]-'0')
	}
	return 0
}

// ParseDeflateResponse reads the permessage-deflate parameters a server accepted, for an
// endpoint in the client role: ok is false when the response names no permessage-deflate;
// a response with more than one, with unknown or repeated parameters or values out of
// range is an error (RFC 7692 §5: the client fails the connection).
func ParseDeflateResponse(h Header) (p DeflateParams, ok bool, err error) {
	for i := 0; ; i++ {
		v, more := h.Field("Sec-WebSocket-Extensions", i)
		if !more {
			return p, ok, nil
		}
		for list := v; list != nil; {
			var ext []byte
			ext, list = nextItem(list, ',')
			if len(ext) == 0 {
				continue
			}
			o, valid := parseDeflateOffer(ext)
			if !valid || ok || o.clientBits < 0 {
				return p, false, errBadExtension
			}
			ok = true
			p = DeflateParams{ServerNoContextTakeover: o.serverNoCT, ClientNoContextTakeover: o.clientNoCT, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
			if o.serverBits > 0 {
				p.ServerMaxWindowBits = o.serverBits
			}
			if o.clientBits > 0 {
				p.ClientMaxWindowBits = o.clientBits
			}
		}
	}
}

var errBadExtension = &HandshakeError{Status: 400, Reason: "invalid or unexpected Sec-WebSocket-Extensions in the response"}
