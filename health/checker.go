package health

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
)

// CheckOptions configure active health checks. A server goes down after Fall
// failed checks in a row and comes back up after Rise passed checks in a row
// (HAProxy's rise/fall); servers start up. A check is one connect (tcp) or one
// HTTP/1.1 request on a fresh connection (http), bounded by Timeout, every
// Interval plus a random share of Jitter.
type CheckOptions struct {
	Type     string // CheckTCP or CheckHTTP
	Interval time.Duration
	Timeout  time.Duration
	Jitter   time.Duration
	Rise     int
	Fall     int
	HTTP     HTTPCheck
	TCP      TCPCheck
	// TLS makes tcp checks go through Options.Dial too (a TLS handshake, then
	// TCP's send and expect through TLS): for servers that speak TLS.
	TLS bool
}

// HTTPCheck is the request an http check sends and what its response must be.
type HTTPCheck struct {
	Method string // default GET
	Path   string // default /
	Host   string // default the server's address
	// StatusMin and StatusMax bound the passing statuses (default 200-399).
	StatusMin, StatusMax int
	// BodyContains, when not empty, must occur in the first MaxCheckBody bytes
	// of the body.
	BodyContains string
}

// Check types.
const (
	CheckTCP  = "tcp"
	CheckHTTP = "http"
)

// MaxCheckBody is how much of a check response's body is searched.
const MaxCheckBody = 64 << 10

func (c *CheckOptions) validate() error {
	switch {
	case c.Type != CheckTCP && c.Type != CheckHTTP:
		return fmt.Errorf("health check type %q: expected tcp or http", c.Type)
	case c.Interval <= 0 || c.Timeout <= 0 || c.Jitter < 0:
		return errors.New("health check interval and timeout must be positive")
	case c.Rise < 1 || c.Fall < 1:
		return errors.New("health check rise and fall must be at least 1")
	}
	if c.HTTP.Method == "" {
		c.HTTP.Method = "GET"
	}
	if c.HTTP.Path == "" {
		c.HTTP.Path = "/"
	}
	if c.HTTP.StatusMin == 0 && c.HTTP.StatusMax == 0 {
		c.HTTP.StatusMin, c.HTTP.StatusMax = 200, 399
	}
	return nil
}

// startChecks arms the first check of every server, spread over one interval so
// that a group's checks do not all leave at once. Runs on the home loop.
func (g *Group) startChecks(l *engine.Loop) {
	c := g.opts.Check
	g.chain++
	gen := g.chain
	for i := range g.srv {
		first := c.Interval * time.Duration(i) / time.Duration(len(g.srv))
		l.AfterFunc(first, func() { g.probe(l, i, gen) })
	}
}

// next arms server i's next check (not when another process took a shared
// group's checks over).
func (g *Group) next(l *engine.Loop, i int, gen uint64) {
	if g.stop.Load() || gen != g.chain || g.opts.Shared != nil && !g.checking {
		return
	}
	c := g.opts.Check
	d := c.Interval
	if c.Jitter > 0 {
		d += rand.N(c.Jitter)
	}
	l.AfterFunc(d, func() { g.probe(l, i, gen) })
}

// probe is one check in progress. Owned by the home loop.
type probe struct {
	g       *Group
	l       *engine.Loop
	i       int
	gen     uint64 // the probe chain it belongs to
	started time.Time
	done    bool
	parser  http1.ResponseParser
	resp    http1.Response
	inBody  bool
	body    http1.BodyReader
	seen    []byte // body bytes kept for BodyContains
	out     Writer // where the request goes: the connection, or its TLS layer
}

// probe starts a check of server i.
func (g *Group) probe(l *engine.Loop, i int, gen uint64) {
	if g.stop.Load() || gen != g.chain {
		return
	}
	c := g.opts.Check
	p := &probe{g: g, l: l, i: i, gen: gen, started: time.Now()}
	var ec *engine.Conn
	var err error
	if d := g.opts.Dial; d != nil && (c.Type != CheckTCP || c.TLS) {
		ec, p.out, err = d(l, g.srv[i].addr, c.Timeout, checkHandler)
	} else {
		ec, err = l.Dial(g.srv[i].addr, c.Timeout, checkHandler)
		p.out = ec
	}
	if err != nil {
		p.finish(nil, false, err.Error())
		return
	}
	ec.SetContext(p)
}

// finish records the check's result once and arms the next check.
func (p *probe) finish(ec *engine.Conn, ok bool, why string) {
	if p.done {
		return
	}
	p.done = true
	if ec != nil && !ec.Closed() {
		if n, overTLS := p.out.(interface{ CloseNotify() }); overTLS && why != "timeout" {
			// A check over TLS that got its verdict ends in order: close_notify
			// before the FIN (RFC 8446 §6.1), not a truncation logged by the
			// origin at every interval.
			n.CloseNotify()
			ec.CloseAfterFlush(false)
		} else {
			ec.Close(nil)
		}
	}
	p.g.checked(p.i, ok, why)
	p.g.next(p.l, p.i, p.gen)
}

// checked applies one check result to server i's rise/fall counters. Runs on the
// home loop.
func (g *Group) checked(i int, ok bool, why string) {
	s := &g.srv[i]
	c := g.opts.Check
	if ok {
		why = "passed"
	}
	s.lastCheck.Store(&why)
	g.mu.Lock()
	defer g.mu.Unlock()
	down := s.flags.Load()&fDown != 0
	if ok {
		s.known = true
		s.checksOK.Add(1)
		s.okRun, s.failRun = s.okRun+1, 0
		if down && s.okRun >= c.Rise {
			g.log.Info("health: server up", "server", s.name, "rise", c.Rise)
			g.setFlag(i, fDown, false)
			g.publish(i, false)
		}
		return
	}
	// A server not checked yet starts up but goes down on its first failed
	// check, as HAProxy's default init-state "up" does: fall counts the
	// failures of a server known to be up (checked here, or followed while
	// another process ran a shared group's checks), and gave a dead server fall checks'
	// worth of requests at every start and at each reload that rebuilt its group.
	first := !s.known
	s.known = true
	s.checksFailed.Add(1)
	s.failRun, s.okRun = s.failRun+1, 0
	if !down && (s.failRun >= c.Fall || first) {
		g.log.Warn("health: server down", "server", s.name, "fall", c.Fall, "first_check", first, "last_check", why)
		g.setFlag(i, fDown, true)
		g.publish(i, true)
	}
}

// checkHandler is the engine.Handler of check connections; the context is the
// *probe.
type checkHandlerT struct{ engine.NopHandler }

var checkHandler engine.Handler = &checkHandlerT{}

func (*checkHandlerT) OnOpen(ec *engine.Conn) {
	p := ec.Context().(*probe)
	c := p.g.opts.Check
	if c.Type == CheckTCP {
		p.tcpOpened(ec)
		return
	}
	h := c.HTTP
	host := h.Host
	if host == "" {
		host = p.g.srv[p.i].addr.String()
	}
	b := http1.AppendRequestLine(nil, []byte(h.Method), []byte(h.Path))
	b = append(b, "Host: "...)
	b = append(b, host...)
	b = append(b, "\r\nUser-Agent: gale-health-check\r\nConnection: close\r\n\r\n"...)
	p.out.Write(b)
	ec.SetTimeout(max(c.Timeout-time.Since(p.started), time.Millisecond))
}

func (*checkHandlerT) OnData(ec *engine.Conn, in []byte) int {
	p := ec.Context().(*probe)
	if p.done {
		return len(in)
	}
	if p.g.opts.Check.Type == CheckTCP {
		return p.tcpData(ec, in)
	}
	h := &p.g.opts.Check.HTTP
	off := 0
	for !p.inBody {
		n, err := p.parser.Parse(in[off:], &p.resp)
		if err == http1.ErrNeedMore {
			return off
		}
		if err != nil {
			p.finish(ec, false, "invalid response: "+err.Error())
			return len(in)
		}
		off += n
		if p.resp.Informational() {
			// The final response may follow in the same read: the engine passes
			// unconsumed bytes again only with new ones, and a server that
			// closes after its answer sends none.
			p.parser.Reset()
			continue
		}
		st := p.resp.Status
		if st < h.StatusMin || st > h.StatusMax {
			p.finish(ec, false, "status "+strconv.Itoa(st))
			return len(in)
		}
		if h.BodyContains == "" {
			p.finish(ec, true, "")
			return len(in)
		}
		p.inBody = true
		p.body.InitResponse(&p.resp, h.Method == "HEAD")
	}
	for off < len(in) {
		data, used, end, err := p.body.Next(in[off:])
		off += used
		if room := MaxCheckBody - len(p.seen); room > 0 {
			p.seen = append(p.seen, data[:min(len(data), room)]...)
		}
		if bytes.Contains(p.seen, []byte(h.BodyContains)) {
			p.finish(ec, true, "")
			return len(in)
		}
		if err != nil || end || len(p.seen) >= MaxCheckBody {
			p.finish(ec, false, "body does not contain the expected text")
			return len(in)
		}
		if used == 0 {
			break
		}
	}
	return off
}

func (*checkHandlerT) OnEOF(ec *engine.Conn) {
	p := ec.Context().(*probe)
	if p.g.opts.Check.Type == CheckTCP {
		p.finish(ec, false, "connection closed before the expected bytes")
		return
	}
	if p.inBody && p.body.UntilClose() && bytes.Contains(p.seen, []byte(p.g.opts.Check.HTTP.BodyContains)) {
		p.finish(ec, true, "")
		return
	}
	p.finish(ec, false, "connection closed before a verdict")
}

func (*checkHandlerT) OnTimeout(ec *engine.Conn) {
	ec.Context().(*probe).finish(ec, false, "timeout")
}

func (*checkHandlerT) OnShutdown(ec *engine.Conn) {
	p := ec.Context().(*probe)
	p.done = true
	ec.Close(nil)
}

func (*checkHandlerT) OnClose(ec *engine.Conn, err error) {
	p, _ := ec.Context().(*probe)
	if p == nil || p.done {
		return
	}
	why := "connection closed"
	if err != nil {
		why = err.Error()
	}
	p.finish(ec, false, why)
}
