package server

import (
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/engine"
)

// Protocol is what a connection's first bytes (or its TLS ALPN result) say it speaks.
type Protocol uint8

// The protocols Sniff recognizes. ProtoHTTP1 is also the answer for anything
// unrecognized: HTTP/1 is the default, and its parser rejects garbage with a 400.
const (
	ProtoHTTP1   Protocol = iota // anything else
	ProtoH2                      // the HTTP/2 client connection preface (prior knowledge, RFC 9113 §3.4)
	ProtoTLS                     // a TLS handshake record: 0x16 0x03
	ProtoProxyV1                 // the PROXY protocol v1 text header: "PROXY "
	ProtoProxyV2                 // the PROXY protocol v2 binary signature
)

// String returns a short name for logs.
func (p Protocol) String() string {
	switch p {
	case ProtoH2:
		return "h2"
	case ProtoTLS:
		return "tls"
	case ProtoProxyV1:
		return "proxy-v1"
	case ProtoProxyV2:
		return "proxy-v2"
	}
	return "http/1.1"
}

// Prefixes Sniff compares against. Each is matched whole; a connection is
// undecided only while its bytes are a proper prefix of one of them.
var sniffPrefixes = [...]struct {
	p   Protocol
	sig string
}{
	{ProtoH2, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
	{ProtoTLS, "\x16\x03"},
	{ProtoProxyV1, "PROXY "},
	{ProtoProxyV2, "\r\n\r\n\x00\r\nQUIT\n"},
}

// MaxSniff is the most bytes Sniff needs to decide (the HTTP/2 preface).
const MaxSniff = 24

// Sniff decides the protocol from a connection's first bytes. It returns ok=false
// while in is too short to tell (a proper prefix of a signature), and otherwise the
// protocol, which never changes as more bytes arrive. It reads at most MaxSniff
// bytes and never allocates.
func Sniff(in []byte) (p Protocol, ok bool) {
	undecided := false
	for _, s := range sniffPrefixes {
		n := min(len(in), len(s.sig))
		if string(in[:n]) != s.sig[:n] {
			continue
		}
		if n == len(s.sig) {
			return s.p, true
		}
		undecided = true
	}
	if undecided {
		return ProtoHTTP1, false
	}
	return ProtoHTTP1, true
}

// Dispatch chooses a protocol handler per connection of one listener. HTTP1 serves
// every connection whose first bytes are not claimed by a configured handler; the
// others are engine.Handlers of their protocol (an HTTP/2 connection, a TLS
// terminator that calls ForALPN after its handshake, a PROXY protocol reader that
// hands over to HTTP1 once the header is read). A nil field sends that protocol to
// HTTP1 as well.
type Dispatch struct {
	// HTTP1 serves HTTP/1.x (required).
	HTTP1 Handler
	// H2 receives connections that start with the HTTP/2 preface, preface included.
	// An *HTTP2 (Server.NewHTTP2) without a handler of its own serves the listener's.
	H2 engine.Handler
	// TLS receives connections that start with a TLS handshake record.
	TLS engine.Handler
	// Proxy receives connections that start with a PROXY protocol v1 or v2 header.
	Proxy engine.Handler
	// Plain, when set, serves the connections whose first bytes are plain HTTP/1
	// (and those of a recognized protocol without a handler) instead of HTTP1,
	// which still serves the streams a layer hands over (ForALPN, HTTP1Over): a
	// TLS-only port answers plain requests with an error or a redirect.
	Plain Handler
	// H2CUpgrade lets HTTP/1.1 requests switch the connection to HTTP/2 with
	// "Upgrade: h2c" (RFC 7540 §3.2) when H2 is an *HTTP2: a request without a body,
	// on a plain connection, with one valid HTTP2-Settings field, gets 101 and is
	// answered as stream 1. Off, such requests are served as HTTP/1.1 (see
	// H2CUpgradeFilter for a per-request veto).
	H2CUpgrade bool
	// SniffTimeout bounds the wait for enough bytes to decide (default: the server's
	// HeaderTimeout). A connection still undecided then is closed.
	SniffTimeout time.Duration
}

// dispatcher is the listener's engine.Handler until a connection is decided; it
// keeps no per-connection state (the undecided bytes are the engine's retained
// input). Immutable after ListenDispatch.
type dispatcher struct {
	http1   *connHandler
	plain   *connHandler                     // Dispatch.Plain, nil when unset
	by      [ProtoProxyV2 + 1]engine.Handler // index: Protocol; nil entries go to http1
	timeout time.Duration
	sniffs  atomic.Int64 // OnData calls that looked at bytes, for tests
}

var _ engine.Handler = (*dispatcher)(nil)

// ListenDispatch adds a listening address whose connections are dispatched by their
// first bytes (see Sniff and Dispatch). The returned Listener swaps the HTTP1 handler.
func (s *Server) ListenDispatch(addr string, d Dispatch) (*Listener, error) {
	dp, err := s.newDispatcher(d)
	if err != nil {
		return nil, err
	}
	bound, err := s.eng.ListenWith(addr, s.accepting(dp), s.listenOpts())
	if err != nil {
		return nil, err
	}
	s.addrs = append(s.addrs, bound)
	return &Listener{Addr: bound, ch: dp.http1, dp: dp}, nil
}

// ListenFDsDispatch serves inherited listening sockets like ListenDispatch.
func (s *Server) ListenFDsDispatch(fds []int, d Dispatch) (*Listener, error) {
	dp, err := s.newDispatcher(d)
	if err != nil {
		return nil, err
	}
	if err := s.eng.ListenFDsWith(fds, s.accepting(dp), s.listenOpts()); err != nil {
		return nil, err
	}
	return &Listener{ch: dp.http1, dp: dp}, nil
}

func (s *Server) newDispatcher(d Dispatch) (*dispatcher, error) {
	if d.HTTP1 == nil {
		return nil, &DispatchError{Msg: "Dispatch.HTTP1 is required"}
	}
	ch := &connHandler{srv: s}
	ch.handler.Store(&handlerBox{d.HTTP1})
	dp := &dispatcher{http1: ch, timeout: d.SniffTimeout}
	if dp.timeout <= 0 {
		dp.timeout = s.opts.HeaderTimeout
	}
	if d.Plain != nil {
		dp.plain = &connHandler{srv: s}
		dp.plain.handler.Store(&handlerBox{d.Plain})
	}
	dp.by[ProtoH2], dp.by[ProtoTLS] = d.H2, d.TLS
	if h2, ok := d.H2.(*HTTP2); ok {
		h2.linkHandler(&ch.handler)
		if d.H2CUpgrade {
			ch.h2c = h2
		}
	}
	dp.by[ProtoProxyV1], dp.by[ProtoProxyV2] = d.Proxy, d.Proxy
	return dp, nil
}

// DispatchError is an invalid Dispatch.
type DispatchError struct{ Msg string }

func (e *DispatchError) Error() string { return "server: " + e.Msg }

// ForALPN returns the handler for a protocol negotiated with TLS ALPN: the
// Dispatch's H2 for "h2" when set, and the HTTP/1.1 handler (as an engine.Handler)
// for "http/1.1", an empty result or anything else. A TLS terminator calls it after
// the handshake and passes it the decrypted stream.
func (l *Listener) ForALPN(proto string) engine.Handler {
	if proto == "h2" && l.dp != nil && l.dp.by[ProtoH2] != nil {
		return l.dp.by[ProtoH2]
	}
	return l.ch
}

// HTTP1Handler returns the listener's HTTP/1.1 protocol handler as an
// engine.Handler, for a protocol that hands a connection over to HTTP/1 (a PROXY
// protocol reader, a TLS terminator).
func (l *Listener) HTTP1Handler() engine.Handler { return l.ch }

func (d *dispatcher) OnOpen(ec *engine.Conn) { ec.SetTimeout(d.timeout) }

// OnData sniffs; when decided, it re-parents the connection and passes it the same
// bytes, so the chosen handler's first OnData sees the connection from byte one.
func (d *dispatcher) OnData(ec *engine.Conn, in []byte) int {
	d.sniffs.Add(1)
	p, ok := Sniff(in)
	if !ok {
		return 0 // the engine keeps the bytes and adds the next read to them
	}
	h := d.by[p]
	if h == nil {
		h = d.http1
		if d.plain != nil {
			h = d.plain
		}
	}
	ec.CancelTimeout()
	ec.SetHandler(h)
	h.OnOpen(ec)
	return h.OnData(ec, in)
}

// OnEOF closes an undecided connection: what it sent cannot be a whole request.
func (d *dispatcher) OnEOF(ec *engine.Conn) { ec.Close(nil) }

func (d *dispatcher) OnDrain(ec *engine.Conn) {}

// OnTimeout closes a connection that did not send enough bytes to decide in time.
func (d *dispatcher) OnTimeout(ec *engine.Conn) { ec.Close(nil) }

func (d *dispatcher) OnShutdown(ec *engine.Conn) { ec.Close(nil) }

func (d *dispatcher) OnClose(ec *engine.Conn, err error) {}
