package server

import (
	"strings"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/http2"
)

// H2CUpgradeFilter is an optional interface of a listener's Handler: when it is
// present, an HTTP/1.1 request asking for "Upgrade: h2c" switches to HTTP/2 only if
// AllowH2CUpgrade says yes; otherwise the request is served as HTTP/1.1 and its
// Upgrade field ignored. The daemon's router refuses it for routes that must stay
// HTTP/1.1 (the reverse proxy, WebSocket). It runs on the loop, before the handler.
type H2CUpgradeFilter interface {
	AllowH2CUpgrade(req *http1.Request) bool
}

// switchingH2C ends the 101 response of an h2c upgrade (RFC 7540 §3.2), after its
// status line, Date and Server.
const switchingH2C = "Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n"

// tryH2C switches the connection to HTTP/2 when req asks for it as RFC 7540 §3.2
// says (Upgrade naming h2c, Connection naming Upgrade and HTTP2-Settings, exactly one
// valid HTTP2-Settings field) and the request carries no body: it writes the 101,
// hands the connection to the listener's HTTP/2 handler with req as stream 1 and
// reports true. Anything else (a body, TLS, a malformed field, a filter that says
// no) reports false and the request is served as HTTP/1.1 without the upgrade, which
// the RFC allows a server to ignore.
func (cn *conn) tryH2C(ec *engine.Conn, req *http1.Request) bool {
	h2 := cn.ch.h2c
	if h2 == nil || !req.Upgrade || req.Minor != 1 || req.Chunked || req.ContentLength > 0 ||
		(req.Form != http1.FormOrigin && req.Form != http1.FormAbsolute && req.Form != http1.FormAsterisk) ||
		cn.lower() != nil || !req.HasToken("upgrade", "h2c") || !req.HasToken("connection", "http2-settings") {
		return false
	}
	var sv []byte
	n := 0
	for i := range req.Headers {
		if http1.EqualFold(req.Headers[i].Name, "http2-settings") {
			sv, n = req.Headers[i].Value, n+1
		}
	}
	if n != 1 {
		return false // RFC 7540 §3.2.1: MUST NOT upgrade without exactly one
	}
	settings, err := http2.DecodeUpgradeSettings(string(sv))
	if err != nil {
		return false
	}
	if cn.pumped && cn.ls.pumps[cn].Pending() {
		return false
	}
	if f, ok := cn.ch.box().h.(H2CUpgradeFilter); ok && !f.AllowH2CUpgrade(req) {
		return false
	}
	ur := http2.UpgradeRequest{Method: string(req.Method), Authority: string(req.Host)}
	if req.Form == http1.FormAbsolute {
		ur.Path = string(req.Path)
		if req.Query != nil {
			ur.Path += "?" + string(req.Query)
		}
	} else {
		ur.Path = string(req.Target)
	}
	ur.Header = make([]http2.Field, 0, len(req.Headers))
	for _, f := range req.Headers {
		name, value := strings.ToLower(string(f.Name)), string(f.Value)
		if http2.UpgradeHeader(name, value) && !req.HasToken("connection", name) {
			ur.Header = append(ur.Header, http2.Field{Name: name, Value: value})
		}
	}
	cn.ls.requests.Add(^uint64(0)) // stream 1 counts the request again
	b := http1.AppendStatusLine(cn.ls.scratch[:0], 1, 101)
	b = http1.AppendDateAt(b, ec.Loop().Now())
	b = append(append(b, cn.ls.srv.serverH...), switchingH2C...)
	ec.Write(b)
	cn.ls.scratch = b
	cn.upgraded = true
	if cn.pumped {
		cn.closePump()
	}
	ec.CancelTimeout()
	ec.SetContext(nil)
	ec.SetHandler(h2)
	h2.openUpgraded(ec, settings, ur)
	ec.ResumeRead()
	return true
}

// openUpgraded starts an HTTP/2 connection after the 101 of an h2c upgrade: the server
// preface goes out, then ur is served as stream 1. The bytes the client sent after the
// request head (its connection preface) reach OnData next.
func (h *HTTP2) openUpgraded(ec *engine.Conn, settings []byte, ur http2.UpgradeRequest) {
	h.open(ec, nil)
	hc := ec.Context().(*h2conn)
	hc.inFeed = true
	_, _ = hc.c.Upgrade(settings, ur) // a malformed request resets stream 1
	hc.inFeed = false
	hc.flush()
}
