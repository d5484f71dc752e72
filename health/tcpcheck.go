package health

import (
	"bytes"
	"time"

	"github.com/gale-server/gale/engine"
)

// TCPCheck is the exchange of a tcp check once connected: Send is written, then
// the check passes when Expect occurs in the first MaxCheckBody bytes the server
// sends within the timeout. Without Expect the connect alone passes (after Send
// is queued).
type TCPCheck struct {
	Send, Expect []byte
}

// tcpOpened runs when a tcp check's connect completed.
func (p *probe) tcpOpened(ec *engine.Conn) {
	t := &p.g.opts.Check.TCP
	if len(t.Send) > 0 {
		p.out.Write(t.Send)
	}
	if len(t.Expect) == 0 {
		p.finish(ec, true, "")
		return
	}
	ec.SetTimeout(max(p.g.opts.Check.Timeout-time.Since(p.started), time.Millisecond))
}

// tcpData looks for the expected bytes in what the server sent so far.
func (p *probe) tcpData(ec *engine.Conn, in []byte) int {
	want := p.g.opts.Check.TCP.Expect
	if room := MaxCheckBody - len(p.seen); room > 0 {
		p.seen = append(p.seen, in[:min(len(in), room)]...)
	}
	switch {
	case bytes.Contains(p.seen, want):
		p.finish(ec, true, "")
	case len(p.seen) >= MaxCheckBody:
		p.finish(ec, false, "the expected bytes were not in the first 64 KiB received")
	}
	return len(in)
}
