// Package dnstest runs a tiny authoritative DNS server on 127.0.0.1 for tests: A,
// AAAA and SRV records set by the test, answered over UDP. It is imported by tests
// only.
package dnstest

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// SRV is one SRV record.
type SRV struct {
	Priority, Weight, Port uint16
	Target                 string
}

// Server is the test DNS server.
type Server struct {
	Addr    netip.AddrPort
	Queries atomic.Int64

	mu    sync.Mutex
	hosts map[string][]netip.Addr // lower-case name with the final dot
	srvs  map[string][]SRV
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: netip.MustParseAddrPort(pc.LocalAddr().String()), hosts: map[string][]netip.Addr{}, srvs: map[string][]SRV{}}
	t.Cleanup(func() { pc.Close() })
	go s.serve(pc)
	return s
}

func fqdn(n string) string {
	n = strings.ToLower(n)
	if !strings.HasSuffix(n, ".") {
		n += "."
	}
	return n
}

// SetHost sets the addresses of name (A and AAAA by family); none removes it.
func (s *Server) SetHost(name string, addrs ...string) {
	var list []netip.Addr
	for _, a := range addrs {
		list = append(list, netip.MustParseAddr(a))
	}
	s.mu.Lock()
	s.hosts[fqdn(name)] = list
	s.mu.Unlock()
}

// SetSRV sets the SRV records of name.
func (s *Server) SetSRV(name string, recs ...SRV) {
	s.mu.Lock()
	s.srvs[fqdn(name)] = recs
	s.mu.Unlock()
}

func (s *Server) serve(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var q dnsmessage.Message
		if q.Unpack(buf[:n]) != nil || len(q.Questions) != 1 {
			continue
		}
		s.Queries.Add(1)
		if out, err := s.answer(&q); err == nil {
			pc.WriteTo(out, from)
		}
	}
}

func (s *Server) answer(q *dnsmessage.Message) ([]byte, error) {
	qq := q.Questions[0]
	name := strings.ToLower(qq.Name.String())
	m := dnsmessage.Message{Header: dnsmessage.Header{ID: q.ID, Response: true, Authoritative: true}, Questions: q.Questions}
	s.mu.Lock()
	defer s.mu.Unlock()
	hosts, hasHost := s.hosts[name]
	srvs, hasSRV := s.srvs[name]
	if !hasHost && !hasSRV {
		m.RCode = dnsmessage.RCodeNameError
		return m.Pack()
	}
	hdr := dnsmessage.ResourceHeader{Name: qq.Name, Class: dnsmessage.ClassINET, TTL: 1}
	addHost := func(dst *[]dnsmessage.Resource, n dnsmessage.Name, addrs []netip.Addr, t dnsmessage.Type) {
		for _, a := range addrs {
			h := hdr
			h.Name = n
			switch {
			case a.Is4() && (t == dnsmessage.TypeA || t == dnsmessage.TypeSRV):
				h.Type = dnsmessage.TypeA
				*dst = append(*dst, dnsmessage.Resource{Header: h, Body: &dnsmessage.AResource{A: a.As4()}})
			case a.Is6() && (t == dnsmessage.TypeAAAA || t == dnsmessage.TypeSRV):
				h.Type = dnsmessage.TypeAAAA
				*dst = append(*dst, dnsmessage.Resource{Header: h, Body: &dnsmessage.AAAAResource{AAAA: a.As16()}})
			}
		}
	}
	switch qq.Type {
	case dnsmessage.TypeA, dnsmessage.TypeAAAA:
		addHost(&m.Answers, qq.Name, hosts, qq.Type)
	case dnsmessage.TypeSRV:
		for _, r := range srvs {
			tn := dnsmessage.MustNewName(fqdn(r.Target))
			h := hdr
			h.Type = dnsmessage.TypeSRV
			m.Answers = append(m.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.SRVResource{Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: tn}})
			addHost(&m.Additionals, tn, s.hosts[fqdn(r.Target)], dnsmessage.TypeSRV)
		}
	}
	return m.Pack()
}
