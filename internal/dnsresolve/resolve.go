// Package dnsresolve resolves the host names and SRV records of dynamic upstream
// servers with a small stub resolver: one UDP query per name and type to one
// server, parsed with golang.org/x/net/dns/dnsmessage. It never uses the system
// resolver, so that the server queried, the timeout and the record types are
// explicit, and tests can point it at a DNS server of their own.
package dnsresolve

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Target is one resolved server.
type Target struct {
	Addr   netip.AddrPort
	Weight int    // the SRV weight (at least 1), or 1 for a host name
	Name   string // the configured name it came from
}

// SRVPrefix marks an SRV spec: "srv:_http._tcp.example.com".
const SRVPrefix = "srv:"

// Errors.
var (
	ErrNoRecords = errors.New("dnsresolve: no records")
	ErrTruncated = errors.New("dnsresolve: truncated answer, also over TCP")
)

// IsName reports whether a configured server address needs resolving: an SRV
// spec or host:port whose host is not an IP literal.
func IsName(s string) bool {
	if strings.HasPrefix(s, SRVPrefix) {
		return true
	}
	if _, err := netip.ParseAddrPort(s); err == nil {
		return false
	}
	host, port, err := net.SplitHostPort(s)
	return err == nil && host != "" && port != ""
}

// Check validates a spec without resolving it.
func Check(s string) error {
	if name, ok := strings.CutPrefix(s, SRVPrefix); ok {
		if !validName(name) {
			return fmt.Errorf("invalid SRV name %q: expected like _http._tcp.example.com", name)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("expected host:port, got %q", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q is out of range 1-65535", port)
	}
	if !validName(host) {
		return fmt.Errorf("invalid host name %q", host)
	}
	return nil
}

func validName(n string) bool {
	n = strings.TrimSuffix(n, ".")
	if n == "" || len(n) > 253 {
		return false
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Resolver queries one DNS server.
type Resolver struct {
	Server  netip.AddrPort
	Timeout time.Duration // per query; default 2s
}

// Lookup resolves spec: host:port to its A and AAAA addresses with the port;
// srv:NAME to the targets of the lowest-priority SRV records, each target's
// addresses with the record's port and weight. The result is sorted.
func (r *Resolver) Lookup(ctx context.Context, spec string) ([]Target, error) {
	var out []Target
	if name, ok := strings.CutPrefix(spec, SRVPrefix); ok {
		srvs, extra, err := r.srv(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, s := range srvs {
			addrs := extra[strings.ToLower(s.target)]
			if len(addrs) == 0 {
				if addrs, err = r.hostAddrs(ctx, s.target); err != nil {
					return nil, fmt.Errorf("SRV target %s: %w", s.target, err)
				}
			}
			for _, a := range addrs {
				out = append(out, Target{Addr: netip.AddrPortFrom(a, s.port), Weight: max(int(s.weight), 1), Name: spec})
			}
		}
	} else {
		host, port, err := net.SplitHostPort(spec)
		if err != nil {
			return nil, err
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", port, err)
		}
		addrs, err := r.hostAddrs(ctx, host)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			out = append(out, Target{Addr: netip.AddrPortFrom(a, uint16(p)), Weight: 1, Name: spec})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", spec, ErrNoRecords)
	}
	slices.SortFunc(out, func(a, b Target) int { return a.Addr.Compare(b.Addr) })
	return slices.CompactFunc(out, func(a, b Target) bool { return a.Addr == b.Addr }), nil
}

// hostAddrs returns the A and AAAA addresses of host (an IP literal as itself,
// localhost as 127.0.0.1 without a query, as listen addresses take it).
func (r *Resolver) hostAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	if strings.EqualFold(host, "localhost") {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}, nil
	}
	var out []netip.Addr
	var errs []error
	for _, t := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
		m, err := r.query(ctx, host, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, addrsOf(m.Answers)...)
	}
	if len(out) == 0 {
		if len(errs) > 0 {
			return nil, fmt.Errorf("%s: %w", host, errors.Join(errs...))
		}
		return nil, fmt.Errorf("%s: %w", host, ErrNoRecords)
	}
	return out, nil
}

type srvRecord struct {
	target             string
	port, weight, prio uint16
}

// srv returns the lowest-priority SRV records of name and the addresses the
// answer's additional section gave for their targets.
func (r *Resolver) srv(ctx context.Context, name string) ([]srvRecord, map[string][]netip.Addr, error) {
	m, err := r.query(ctx, name, dnsmessage.TypeSRV)
	if err != nil {
		return nil, nil, err
	}
	var recs []srvRecord
	for _, a := range m.Answers {
		if b, ok := a.Body.(*dnsmessage.SRVResource); ok {
			recs = append(recs, srvRecord{target: b.Target.String(), port: b.Port, weight: b.Weight, prio: b.Priority})
		}
	}
	if len(recs) == 0 {
		return nil, nil, fmt.Errorf("%s: %w", name, ErrNoRecords)
	}
	best := recs[0].prio
	for _, s := range recs {
		best = min(best, s.prio)
	}
	recs = slices.DeleteFunc(recs, func(s srvRecord) bool { return s.prio != best })
	extra := map[string][]netip.Addr{}
	for _, a := range m.Additionals {
		n := strings.ToLower(a.Header.Name.String())
		switch b := a.Body.(type) {
		case *dnsmessage.AResource:
			extra[n] = append(extra[n], netip.AddrFrom4(b.A))
		case *dnsmessage.AAAAResource:
			extra[n] = append(extra[n], netip.AddrFrom16(b.AAAA))
		}
	}
	return recs, extra, nil
}

// query sends one question over UDP and returns the parsed answer.
func (r *Resolver) query(ctx context.Context, name string, t dnsmessage.Type) (*dnsmessage.Message, error) {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	qn, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, fmt.Errorf("dnsresolve: name %q: %w", name, err)
	}
	var idb [2]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: qn, Type: t, Class: dnsmessage.ClassINET}}}
	pkt, err := q.Pack()
	if err != nil {
		return nil, err
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", r.Server.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := c.Write(pkt); err != nil {
		return nil, err
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("dnsresolve: %s %s: %w", name, t, err)
		}
		m, ok, err := parseAnswer(buf[:n], id, name, t)
		if !ok {
			continue // not our answer: keep waiting until the deadline
		}
		if err == ErrTruncated {
			return r.queryTCP(ctx, pkt, id, name, t, deadline) // RFC 7766: ask again over TCP
		}
		return m, err
	}
}

// queryTCP sends the packed question pkt over TCP (a 2-byte length before each
// message, RFC 1035 §4.2.2), for an answer that did not fit in a datagram.
func (r *Resolver) queryTCP(ctx context.Context, pkt []byte, id uint16, name string, t dnsmessage.Type, deadline time.Time) (*dnsmessage.Message, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", r.Server.String())
	if err != nil {
		return nil, fmt.Errorf("dnsresolve: %s %s over TCP: %w", name, t, err)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...)); err != nil {
		return nil, fmt.Errorf("dnsresolve: %s %s over TCP: %w", name, t, err)
	}
	var lb [2]byte
	if _, err := io.ReadFull(c, lb[:]); err != nil {
		return nil, fmt.Errorf("dnsresolve: %s %s over TCP: %w", name, t, err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(lb[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, fmt.Errorf("dnsresolve: %s %s over TCP: %w", name, t, err)
	}
	m, ok, err := parseAnswer(buf, id, name, t)
	if !ok {
		return nil, fmt.Errorf("dnsresolve: %s %s over TCP: not an answer to the question", name, t)
	}
	return m, err
}

// parseAnswer parses one datagram: ok is false when it is not the answer to
// query id (or not a DNS message at all); err reports an answer that is an
// error (truncated, NXDOMAIN, another RCODE).
func parseAnswer(pkt []byte, id uint16, name string, t dnsmessage.Type) (*dnsmessage.Message, bool, error) {
	var m dnsmessage.Message
	if err := m.Unpack(pkt); err != nil || m.ID != id || !m.Response {
		return nil, false, nil
	}
	switch {
	case m.Truncated:
		return nil, true, ErrTruncated
	case m.RCode == dnsmessage.RCodeNameError:
		return nil, true, fmt.Errorf("dnsresolve: %s: no such name (NXDOMAIN)", name)
	case m.RCode != dnsmessage.RCodeSuccess:
		return nil, true, fmt.Errorf("dnsresolve: %s %s: server answered %s", name, t, m.RCode)
	}
	return &m, true, nil
}

// addrsOf returns the addresses of the A and AAAA records among rs.
func addrsOf(rs []dnsmessage.Resource) []netip.Addr {
	var out []netip.Addr
	for _, a := range rs {
		switch b := a.Body.(type) {
		case *dnsmessage.AResource:
			out = append(out, netip.AddrFrom4(b.A))
		case *dnsmessage.AAAAResource:
			out = append(out, netip.AddrFrom16(b.AAAA))
		}
	}
	return out
}

// DefaultServer returns the first nameserver of /etc/resolv.conf, or
// 127.0.0.1:53.
func DefaultServer() netip.AddrPort {
	def := netip.MustParseAddrPort("127.0.0.1:53")
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return def
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if a, err := netip.ParseAddr(fields[1]); err == nil {
				return netip.AddrPortFrom(a, 53)
			}
		}
	}
	return def
}
