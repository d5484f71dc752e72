package dnsresolve

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/dnsresolve/dnstest"
	"golang.org/x/net/dns/dnsmessage"
)

func targets(ts []Target) string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s/%d", t.Addr, t.Weight))
	}
	return strings.Join(out, " ")
}

func TestLookupHostAndSRV(t *testing.T) {
	dns := dnstest.Start(t)
	dns.SetHost("app.test", "127.0.0.3", "127.0.0.2", "::1")
	dns.SetHost("a.test", "127.0.0.10")
	dns.SetHost("b.test", "127.0.0.11")
	dns.SetSRV("_http._tcp.app.test",
		dnstest.SRV{Priority: 10, Weight: 5, Port: 8001, Target: "a.test"},
		dnstest.SRV{Priority: 10, Weight: 0, Port: 8002, Target: "b.test"},
		dnstest.SRV{Priority: 20, Weight: 9, Port: 8003, Target: "a.test"})
	r := &Resolver{Server: dns.Addr, Timeout: time.Second}
	ctx := context.Background()
	got, err := r.Lookup(ctx, "app.test:9000")
	if err != nil {
		t.Fatal(err)
	}
	if s := targets(got); s != "127.0.0.2:9000/1 127.0.0.3:9000/1 [::1]:9000/1" {
		t.Fatalf("host: %s", s)
	}
	got, err = r.Lookup(ctx, "srv:_http._tcp.app.test")
	if err != nil {
		t.Fatal(err)
	}
	if s := targets(got); s != "127.0.0.10:8001/5 127.0.0.11:8002/1" {
		t.Fatalf("srv (lowest priority only, weight at least 1): %s", s)
	}
	if _, err := r.Lookup(ctx, "nope.test:80"); err == nil || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Fatalf("unknown name: %v", err)
	}
	// A literal resolves to itself without a query.
	before := dns.Queries.Load()
	if got, err := r.Lookup(ctx, "127.0.0.9:80"); err != nil || targets(got) != "127.0.0.9:80/1" || dns.Queries.Load() != before {
		t.Fatalf("literal: %v %v", got, err)
	}
	if got, err := r.Lookup(ctx, "localhost:81"); err != nil || targets(got) != "127.0.0.1:81/1" || dns.Queries.Load() != before {
		t.Fatalf("localhost: %v %v", got, err)
	}
}

// A server that never answers makes a lookup fail by its timeout.
func TestLookupTimeout(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	r := &Resolver{Server: netip.MustParseAddrPort(pc.LocalAddr().String()), Timeout: 100 * time.Millisecond}
	start := time.Now()
	if _, err := r.Lookup(context.Background(), "app.test:80"); err == nil {
		t.Fatal("no error from a silent server")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestIsNameAndCheck(t *testing.T) {
	for s, want := range map[string]bool{"127.0.0.1:80": false, "[::1]:80": false, "app.test:80": true, "srv:_http._tcp.x": true, "nope": false} {
		if IsName(s) != want {
			t.Errorf("IsName(%q) = %v", s, !want)
		}
	}
	for _, bad := range []string{"app.test", "app.test:0", "app..test:80", "srv:", "srv:a b", "ex ample:80"} {
		if Check(bad) == nil {
			t.Errorf("Check(%q) accepted", bad)
		}
	}
	if err := Check("app-1.test:8080"); err != nil {
		t.Error(err)
	}
}

// FuzzAnswer feeds arbitrary datagrams to the answer parser: it never panics,
// an accepted answer is a success, and every address it yields comes from an A
// or AAAA record (4 or 16 bytes).
func FuzzAnswer(f *testing.F) {
	q := dnsmessage.MustNewName("app.test.")
	for _, m := range []dnsmessage.Message{
		{Header: dnsmessage.Header{ID: 7, Response: true}, Answers: []dnsmessage.Resource{
			{Header: dnsmessage.ResourceHeader{Name: q, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}, Body: &dnsmessage.AResource{A: [4]byte{127, 0, 0, 2}}},
			{Header: dnsmessage.ResourceHeader{Name: q, Type: dnsmessage.TypeAAAA, Class: dnsmessage.ClassINET}, Body: &dnsmessage.AAAAResource{AAAA: [16]byte{15: 1}}}}},
		{Header: dnsmessage.Header{ID: 7, Response: true, RCode: dnsmessage.RCodeNameError}},
		{Header: dnsmessage.Header{ID: 7, Response: true, Truncated: true}},
		{Header: dnsmessage.Header{ID: 8, Response: true}},
	} {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		m, ok, err := parseAnswer(pkt, 7, "app.test.", dnsmessage.TypeA)
		if !ok || err != nil {
			if m != nil {
				t.Fatal("a message with an error or a foreign answer")
			}
			return
		}
		if m.RCode != dnsmessage.RCodeSuccess || m.Truncated || m.ID != 7 {
			t.Fatalf("accepted %+v", m.Header)
		}
		for _, a := range addrsOf(m.Answers) {
			if !a.IsValid() {
				t.Fatal("invalid address")
			}
		}
	})
}
