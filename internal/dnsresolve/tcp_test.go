package dnsresolve

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// TestTruncatedFallsBackToTCP: a server whose UDP answer is truncated is asked
// again over TCP on the same address, and the TCP answer's addresses are used.
func TestTruncatedFallsBackToTCP(t *testing.T) {
	// The UDP port the kernel picks may be taken for TCP by another process; a few
	// fresh UDP ports are tried before giving up.
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ln == nil; attempt++ {
		p, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", p.LocalAddr().String())
		if err != nil {
			p.Close()
			if attempt == 20 {
				t.Fatal(err)
			}
			continue
		}
		pc, ln = p, l
	}
	defer pc.Close()
	defer ln.Close()
	answer := func(q []byte, truncated bool) []byte {
		var m dnsmessage.Message
		if err := m.Unpack(q); err != nil {
			return nil
		}
		m.Response, m.Truncated = true, truncated
		if !truncated && m.Questions[0].Type == dnsmessage.TypeA {
			m.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: m.Questions[0].Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5},
				Body: &dnsmessage.AResource{A: [4]byte{127, 0, 0, 9}}}}
		}
		b, _ := m.Pack()
		return b
	}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(answer(buf[:n], true), from)
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var lb [2]byte
				if _, err := io.ReadFull(c, lb[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(lb[:]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				a := answer(q, false)
				c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(a))), a...))
			}()
		}
	}()
	r := &Resolver{Server: netip.MustParseAddrPort(pc.LocalAddr().String()), Timeout: 2 * time.Second}
	ts, err := r.Lookup(context.Background(), "big.test:80")
	if err != nil {
		t.Fatal(err)
	}
	if got := targets(ts); got != "127.0.0.9:80/1" {
		t.Fatalf("targets %s, want 127.0.0.9:80 from the TCP answer", got)
	}
}
