package server

import (
	"bufio"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
)

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

var sniffCases = []struct {
	in   string
	want Protocol
}{
	{h2Preface, ProtoH2},
	{h2Preface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00", ProtoH2},
	{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ProtoHTTP1},
	{"POST / HTTP/1.1\r\n", ProtoHTTP1},
	{"PRI * HTTP/1.1\r\n\r\n", ProtoHTTP1}, // diverges from the preface at the version
	{"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n\r\n", ProtoProxyV1},
	{"PROXYX", ProtoHTTP1},
	{"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c", ProtoProxyV2},
	{"\r\nGET / HTTP/1.1\r\n\r\n", ProtoHTTP1}, // a leading empty line is HTTP/1
	{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", ProtoTLS},
	{"\x16\x02", ProtoHTTP1},
	{"\x80\x01", ProtoHTTP1},
}

// TestSniff feeds every case whole and at every prefix length (the byte-at-a-time
// arrival): each prefix is undecided or already the final answer, and the whole
// input decides.
func TestSniff(t *testing.T) {
	for _, tc := range sniffCases {
		in := []byte(tc.in)
		got, ok := Sniff(in)
		if !ok || got != tc.want {
			t.Errorf("Sniff(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
		checkSniffPrefixes(t, in)
	}
	if _, ok := Sniff(nil); ok {
		t.Error("Sniff(nil) decided")
	}
	for _, undecided := range []string{"P", "PR", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r", "\x16", "PROXY", "\r\n\r\n\x00\r\nQUIT"} {
		if p, ok := Sniff([]byte(undecided)); ok {
			t.Errorf("Sniff(%q) decided %v with too few bytes", undecided, p)
		}
	}
}

// checkSniffPrefixes asserts that decisions on prefixes of in never change.
func checkSniffPrefixes(t testing.TB, in []byte) {
	t.Helper()
	final, finalOK := Sniff(in)
	decided := false
	var first Protocol
	for k := 0; k <= len(in); k++ {
		p, ok := Sniff(in[:k])
		if decided && (!ok || p != first) {
			t.Fatalf("Sniff(%q) = %v, %v after %q decided %v", in[:k], p, ok, in[:k-1], first)
		}
		if ok && !decided {
			decided, first = true, p
			if k > MaxSniff {
				t.Fatalf("Sniff needed %d bytes of %q, more than MaxSniff", k, in)
			}
		}
	}
	if finalOK && first != final {
		t.Fatalf("Sniff(%q): prefixes decided %v, whole %v", in, first, final)
	}
}

func FuzzSniff(f *testing.F) {
	for _, tc := range sniffCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkSniffPrefixes(t, in) })
}

// fakeH2 stands in for an HTTP/2 connection handler: it checks that its input
// starts with the whole preface and answers "h2 <bytes so far>\n" for each read.
type fakeH2 struct {
	mu   sync.Mutex
	seen map[*engine.Conn][]byte
}

func (h *fakeH2) OnOpen(c *engine.Conn) {
	h.mu.Lock()
	h.seen[c] = nil
	h.mu.Unlock()
}
func (h *fakeH2) OnData(c *engine.Conn, in []byte) int {
	h.mu.Lock()
	all := append(h.seen[c], in...)
	h.seen[c] = all
	h.mu.Unlock()
	if !strings.HasPrefix(string(all), h2Preface) && !strings.HasPrefix(h2Preface, string(all)) {
		c.Write([]byte("bad preface\n"))
		c.CloseAfterFlush(true)
		return len(in)
	}
	if len(all) >= len(h2Preface) {
		c.Write([]byte("h2 " + string(all[len(h2Preface):]) + "\n"))
	}
	return len(in)
}
func (h *fakeH2) OnEOF(c *engine.Conn)      { c.CloseAfterFlush(true) }
func (h *fakeH2) OnDrain(c *engine.Conn)    {}
func (h *fakeH2) OnTimeout(c *engine.Conn)  { c.Close(nil) }
func (h *fakeH2) OnShutdown(c *engine.Conn) { c.Close(nil) }
func (h *fakeH2) OnClose(c *engine.Conn, err error) {
	h.mu.Lock()
	delete(h.seen, c)
	h.mu.Unlock()
}

// startDispatch runs one port that dispatches h2-preface connections to a fakeH2 and
// everything else to an HTTP/1 handler.
func startDispatch(t *testing.T, sniffTimeout time.Duration) (*Server, *Listener) {
	t.Helper()
	s := startServer(t, echoPath, nil)
	l, err := s.ListenDispatch("127.0.0.1:0", Dispatch{HTTP1: echoPath, H2: &fakeH2{seen: map[*engine.Conn][]byte{}}, SniffTimeout: sniffTimeout})
	if err != nil {
		t.Fatal(err)
	}
	return s, l
}

// writeSlowly sends msg one byte at a time, each only after the dispatcher has
// looked at the bytes so far, so every byte arrives in its own read until the
// connection is decided.
func writeSlowly(t *testing.T, w io.Writer, l *Listener, msg string) {
	t.Helper()
	for i := 0; i < len(msg); i++ {
		before := l.dp.sniffs.Load()
		if _, err := w.Write([]byte{msg[i]}); err != nil {
			t.Fatal(err)
		}
		if i >= MaxSniff {
			continue // decided by now; the protocol handler reads the rest
		}
		deadline := time.Now().Add(10 * time.Second)
		for l.dp.sniffs.Load() == before {
			if _, ok := Sniff([]byte(msg[:i])); ok && i > 0 {
				break // decided: the dispatcher is out of the way
			}
			if time.Now().After(deadline) {
				t.Fatalf("dispatcher did not see byte %d", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestDispatchH2VsHTTP1 serves HTTP/1.1 and h2-preface clients on one port, written
// whole and byte by byte: each reaches its own handler with every byte it sent.
func TestDispatchH2VsHTTP1(t *testing.T) {
	_, l := startDispatch(t, 0)
	for _, slow := range []bool{false, true} {
		send := func(c io.Writer, msg string) {
			if slow {
				writeSlowly(t, c, l, msg)
			} else {
				io.WriteString(c, msg)
			}
		}
		// HTTP/1.1, including a method that shares a prefix with the preface.
		for _, method := range []string{"GET", "PRIX"} {
			c := testkit.Dial(t, l.Addr)
			send(c, method+" /hello HTTP/1.1\r\nHost: x\r\n\r\n")
			resp := testkit.ReadResponse(t, bufio.NewReader(c), method)
			if got := testkit.Body(t, resp); resp.StatusCode != 200 || got != "/hello" {
				t.Fatalf("slow=%v %s: %d %q", slow, method, resp.StatusCode, got)
			}
		}
		// The preface and a first frame header.
		c := testkit.Dial(t, l.Addr)
		send(c, h2Preface+"abc")
		br := bufio.NewReader(c)
		// The handler answers each read with everything after the preface so far; the
		// last answer holds all of it.
		var line string
		for !strings.HasSuffix(line, "abc\n") {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("slow=%v h2: %v after %q", slow, err, line)
			}
			if !strings.HasPrefix(l, "h2 ") {
				t.Fatalf("slow=%v h2: %q", slow, l)
			}
			line = l
		}
	}
}

// TestDispatchUnconfiguredAndTimeout: a TLS-looking client with no TLS handler goes
// to HTTP/1 (which rejects it), and a client stuck in an undecided prefix is closed
// after the sniff timeout.
func TestDispatchUnconfiguredAndTimeout(t *testing.T) {
	_, l := startDispatch(t, 200*time.Millisecond)
	c := testkit.Dial(t, l.Addr)
	io.WriteString(c, "\x16\x03\x01\x00\x05hello\r\n\r\n")
	resp := testkit.ReadResponse(t, bufio.NewReader(c), "GET")
	if resp.StatusCode != 400 {
		t.Fatalf("TLS bytes to HTTP/1: status %d, want 400", resp.StatusCode)
	}
	c2 := testkit.Dial(t, l.Addr)
	io.WriteString(c2, "PRI * HTTP/2")
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("undecided client: read %d, %v; want EOF after the sniff timeout", n, err)
	}
}
