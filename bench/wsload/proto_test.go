package main

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gale-server/gale/bench/internal/wsproto"
)

// TestCentrifugoDeliveries decodes what the publisher's command puts in a publication:
// one push a message, several pushes a message (one a line), pushes that are not
// publications, a ping (answered with an empty object on the connection) and lines that
// are neither (counted).
func TestCentrifugoDeliveries(t *testing.T) {
	p := newCentrifugo("bench", 64)
	sent := time.Unix(0, 1764670000123456789)
	// The data string exactly as the publisher builds it.
	putHex(p.cmd[p.dataAt:], 42)
	putHex(p.cmd[p.dataAt+16:], uint64(sent.UnixNano()))
	data := string(p.cmd[p.dataAt-1 : p.dataAt+62+1])
	if len(data) != 64 {
		t.Fatalf("data string is %d bytes, want 64", len(data))
	}
	push := func(seq uint64) string {
		b := []byte(data)
		putHex(b[1:], seq)
		return fmt.Sprintf(`{"push":{"channel":"bench","pub":{"data":%s,"offset":%d}}}`, b, seq)
	}
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	c := &conn{c: client}
	pong := make(chan []byte, 1)
	go func() {
		f, err := wsproto.ReadFrame(bufio.NewReader(server), make([]byte, 64))
		if err != nil {
			pong <- nil
			return
		}
		pong <- append([]byte(nil), f.Payload...)
	}()

	for _, tc := range []struct {
		name    string
		msg     string
		seqs    []uint64
		bad     int
		answers bool
	}{
		{"one push", push(42), []uint64{42}, 0, false},
		{"batched", push(1) + "\n" + push(2) + "\n" + push(3), []uint64{1, 2, 3}, 0, false},
		{"join push", `{"push":{"channel":"bench","join":{"info":{"client":"x"}}}}`, nil, 0, false},
		{"error reply", `{"id":5,"error":{"code":103,"message":"permission denied"}}`, nil, 1, false},
		{"bad digits", `{"push":{"channel":"bench","pub":{"data":"zz"}}}`, nil, 1, false},
		{"ping then push", "{}\n" + push(7), []uint64{7}, 0, true},
	} {
		var got []uint64
		bad := p.deliveries(c, []byte(tc.msg), func(seq uint64, at time.Time, size int) {
			if !at.Equal(sent) || size != 64 {
				t.Errorf("%s: delivery sent at %v, %d bytes", tc.name, at, size)
			}
			got = append(got, seq)
		})
		if fmt.Sprint(got) != fmt.Sprint(tc.seqs) || bad != tc.bad {
			t.Errorf("%s: deliveries %v, %d bad; want %v, %d", tc.name, got, bad, tc.seqs, tc.bad)
		}
		if tc.answers {
			if b := <-pong; string(b) != "{}" {
				t.Errorf("%s: answered the ping with %q", tc.name, b)
			}
		}
	}
}

// TestHex round-trips the 16-digit fields and refuses short or non-hex input.
func TestHex(t *testing.T) {
	for _, v := range []uint64{0, 1, 0xdeadbeef, 1<<64 - 1} {
		b := make([]byte, 16)
		putHex(b, v)
		if got, ok := getHex(b); !ok || got != v {
			t.Errorf("%#x: got %#x, %v", v, got, ok)
		}
	}
	for _, s := range []string{"", "0123456789abcde", "0123456789abcdeg", "0123456789ABCDEF"} {
		if _, ok := getHex([]byte(s)); ok {
			t.Errorf("getHex(%q) accepted", s)
		}
	}
}
