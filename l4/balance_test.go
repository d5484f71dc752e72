package l4

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/lb"
)

// tagged starts n servers that answer every connection with their index and
// close.
func tagged(t *testing.T, n int) []netip.AddrPort {
	var out []netip.AddrPort
	for i := range n {
		out = append(out, netip.MustParseAddrPort(serve(t, func(c *net.TCPConn) {
			fmt.Fprint(c, i)
			c.CloseWrite()
			io.Copy(io.Discard, c)
		})))
	}
	return out
}

// whoAnswers connects through the proxy and returns what the server sent.
func whoAnswers(t *testing.T, addr string) string {
	c := dial(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a held relay fails the test, not hangs it
	c.CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read %q: %v", b, err)
	}
	return string(b)
}

// TestBalanceKeyedByClient: with hash, maglev and ip_hash every connection of
// one client address goes to the same server; round robin spreads them.
func TestBalanceKeyedByClient(t *testing.T) {
	for _, m := range []string{lb.Hash, lb.Maglev, lb.IPHash, lb.RoundRobin} {
		t.Run(m, func(t *testing.T) {
			g, err := NewGroup(tagged(t, 3), m, lb.Options{Loops: 2})
			if err != nil {
				t.Fatal(err)
			}
			_, addr := startProxy(t, Options{Upstreams: g})
			seen := map[string]int{}
			for range 12 {
				seen[whoAnswers(t, addr)]++
			}
			if m == lb.RoundRobin {
				if len(seen) != 3 {
					t.Errorf("round robin reached %v", seen)
				}
				return
			}
			if len(seen) != 1 {
				t.Errorf("one client address reached several servers: %v", seen)
			}
		})
	}
}

// TestBalanceLeastConnRelays: least_conn counts open relays, so while one
// relay holds the first server, new connections go to the others.
func TestBalanceLeastConnRelays(t *testing.T) {
	release := make(chan struct{})
	hold := serve(t, func(c *net.TCPConn) {
		fmt.Fprint(c, "held")
		<-release
	})
	servers := append([]netip.AddrPort{netip.MustParseAddrPort(hold)}, tagged(t, 2)...)
	g, err := NewGroup(servers, lb.LeastConn, lb.Options{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	px, addr := startProxy(t, Options{Upstreams: g})
	defer close(release)
	// Ties rotate, so one of the first three connections reaches the holding
	// server; keep that relay open.
	var first net.Conn
	for range 3 {
		c := dial(t, addr)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4)
		n, _ := io.ReadFull(c, buf)
		if string(buf[:n]) == "held" {
			first = c
			break
		}
		c.Close()
	}
	if first == nil {
		t.Fatal("no connection reached the holding server")
	}
	defer first.Close()
	for i := range 20 {
		// Each relay ends before the next connection, so only the held one counts.
		testkit.WaitFor(t, "the earlier relays to end", func() bool { return px.Stats().Active == 1 })
		if got := whoAnswers(t, addr); got == "held" {
			t.Fatalf("connection %d went to the server holding a relay open", i)
		}
	}
}
