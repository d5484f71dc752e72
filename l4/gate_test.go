package l4

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/l4proto"
)

// addrEcho answers each connection's bytes with "<remote address> <bytes>", so a
// test sees which client address the handler behind a Gate was given.
type addrEcho struct{ engine.NopHandler }

func (addrEcho) OnData(c *engine.Conn, in []byte) int {
	c.Write([]byte(c.RemoteAddr().String() + " " + string(in)))
	c.CloseAfterFlush(true)
	return len(in)
}

func (addrEcho) OnEOF(c *engine.Conn) { c.Close(nil) }

// startGate runs an engine whose listener accepts through a Gate trusting nets
// in front of addrEcho.
func startGate(t *testing.T, nets ...string) (*Gate, string, *testkit.SyncBuffer) {
	t.Helper()
	eng, err := engine.New(engine.Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	var trusted []netip.Prefix
	for _, n := range nets {
		trusted = append(trusted, netip.MustParsePrefix(n))
	}
	g := NewGate(addrEcho{}, GateOptions{Trusted: trusted, Timeout: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	addr, err := eng.Listen("127.0.0.1:0", g)
	if err != nil {
		t.Fatal(err)
	}
	eng.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		eng.Shutdown(ctx)
	})
	return g, addr, logs
}

// exchange writes each piece (flushed separately), half-closes and reads the answer.
func exchange(t *testing.T, addr string, pieces ...string) (string, error) {
	t.Helper()
	c := testkit.Dial(t, addr)
	for _, p := range pieces {
		if _, err := c.Write([]byte(p)); err != nil {
			return "", err
		}
		time.Sleep(5 * time.Millisecond) // separate segments, to split the header across reads
	}
	got, err := io.ReadAll(c)
	return string(got), err
}

func TestGateV1(t *testing.T) {
	g, addr, _ := startGate(t, "127.0.0.0/8")
	hdr := "PROXY TCP4 192.0.2.7 198.51.100.1 40000 443\r\n"
	for _, split := range []int{len(hdr), 1, 6, len(hdr) - 1} {
		got, err := exchange(t, addr, hdr[:split], hdr[split:]+"hello")
		if want := "192.0.2.7:40000 hello"; err != nil || got != want {
			t.Fatalf("split at %d: %q, %v; want %q", split, got, err, want)
		}
	}
	if s := g.Stats(); s.Accepted != 4 || s.BadProxy != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestGateV2(t *testing.T) {
	_, addr, _ := startGate(t, "127.0.0.1/32")
	src, dst := netip.MustParseAddrPort("[2001:db8::5]:1234"), netip.MustParseAddrPort("[2001:db8::1]:443")
	hdr := l4proto.AppendV2(nil, src, dst)
	got, err := exchange(t, addr, string(hdr[:13]), string(hdr[13:])+"x")
	if want := src.String() + " x"; err != nil || got != want {
		t.Fatalf("%q, %v; want %q", got, err, want)
	}
}

func TestGateBadHeaders(t *testing.T) {
	g, addr, logs := startGate(t, "127.0.0.0/8")
	for i, bad := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",                       // no header at all
		"PROXY TCP4 300.0.0.1 10.0.0.1 1 2\r\n",                   // bad address
		"PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n",             // a field missing
		"PROXY " + strings.Repeat("x", 200),                       // longer than a v1 header
		"\r\n\r\n\x00\r\nQUIT\n\x21\x12\x00\x0c" + "abcdefghijkl", // v2 over UDP
	} {
		got, err := exchange(t, addr, bad)
		if got != "" {
			t.Fatalf("bad header %d answered %q (%v); want the connection closed", i, got, err)
		}
	}
	// A trusted peer that sends nothing is closed at the timeout.
	c := testkit.Dial(t, addr)
	start := time.Now()
	if got, _ := io.ReadAll(c); len(got) != 0 || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("silent connection: %q after %v", got, time.Since(start))
	}
	// One that ends inside its header is refused like a bad one (it was closed
	// without a count); one that ends before sending anything is not counted.
	for _, in := range []string{"PROXY TCP4 192.0.2.7", ""} {
		c := testkit.Dial(t, addr)
		c.Write([]byte(in))
		c.CloseWrite()
		if got, _ := io.ReadAll(c); len(got) != 0 {
			t.Fatalf("%q then FIN: answered %q", in, got)
		}
	}
	testkit.WaitFor(t, "the refusals to be counted", func() bool { return g.Stats().BadProxy == 7 })
	if s := g.Stats(); s.Accepted != 0 {
		t.Fatalf("stats %+v", s)
	}
	if n := strings.Count(logs.String(), "msg=\"closing a connection"); n != 7 {
		t.Fatalf("%d log lines about PROXY headers, want 7:\n%s", n, logs)
	}
}

// TestGateUntrusted checks that a connection from outside the trusted networks
// is never parsed: a PROXY header it sends is data, and its own address stays.
func TestGateUntrusted(t *testing.T) {
	g, addr, _ := startGate(t, "10.0.0.0/8")
	c := testkit.Dial(t, addr)
	c.Write([]byte("PROXY TCP4 192.0.2.7 198.51.100.1 40000 443\r\n"))
	got, _ := io.ReadAll(c)
	if want := fmt.Sprintf("%s PROXY TCP4", c.LocalAddr()); !strings.HasPrefix(string(got), want) {
		t.Fatalf("%q, want it to start with %q", got, want)
	}
	if s := g.Stats(); s.Passed != 1 || s.Accepted != 0 || s.BadProxy != 0 {
		t.Fatalf("stats %+v", s)
	}
}
