package l4

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
)

// stream is a deterministic pseudo-random byte source of n bytes.
func stream(seed uint64, n int64) io.Reader {
	return io.LimitReader(&prng{rand.NewPCG(seed, seed)}, n)
}

type prng struct{ src *rand.PCG }

func (p *prng) Read(b []byte) (int, error) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], p.src.Uint64())
	}
	if i < len(b) {
		var t [8]byte
		binary.LittleEndian.PutUint64(t[:], p.src.Uint64())
		copy(b[i:], t[:])
	}
	return len(b), nil
}

// sum is what one side of a bulk transfer received: its SHA-256, its length and
// the error that ended the read (nil at a clean end of stream).
type sum struct {
	sha [32]byte
	n   int64
	err error
}

func digest(r io.Reader) sum {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return sum{[32]byte(h.Sum(nil)), n, err}
}

// send writes n bytes of stream(seed) to c and half-closes it; the first error
// (a write, the half-close) is returned.
func send(c *net.TCPConn, seed uint64, n int64) error {
	if k, err := io.Copy(c, stream(seed, n)); err != nil {
		return fmt.Errorf("wrote %d of %d bytes: %w", k, n, err)
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("half-close: %w", err)
	}
	return nil
}

// slowReader reads its first 16 MiB in small pieces with a pause between them
// (about 8 MB/s), so that the writer on the other side of the relay runs far
// ahead of it and fills the socket buffers and the relay's queue; then it reads
// at full speed.
type slowReader struct {
	r    io.Reader
	read int
}

func (s *slowReader) Read(b []byte) (int, error) {
	if s.read >= 16<<20 {
		return s.r.Read(b)
	}
	time.Sleep(2 * time.Millisecond)
	n, err := s.r.Read(b[:min(len(b), 16<<10)])
	s.read += n
	return n, err
}

// bulk sends size bytes each way at once through a relay and checks both with
// SHA-256; slowUp / slowDown make the upstream or the client a slow reader. Every
// write, half-close and read error is reported, and a deadline that expires is an
// error too (not a short stream).
func bulk(t *testing.T, size int64, spliceAfter int64, slowUp, slowDown bool) (Stats, string) {
	deadline := time.Now().Add(time.Duration(size>>20)*time.Second + 2*time.Minute)
	upGot := make(chan sum, 1)
	upSent := make(chan error, 1)
	upstream := serve(t, func(c *net.TCPConn) {
		c.SetDeadline(deadline)
		sent := make(chan error, 1)
		go func() { sent <- send(c, 2, size) }()
		var r io.Reader = c
		if slowUp {
			r = &slowReader{r: c}
		}
		upGot <- digest(r)
		upSent <- <-sent
	})
	px, addr := startProxy(t, Options{Upstreams: group(upstream), SpliceAfter: spliceAfter})
	c := dial(t, addr)
	c.SetDeadline(deadline)
	downSent := make(chan error, 1)
	go func() { downSent <- send(c, 1, size) }()
	var r io.Reader = c
	if slowDown {
		r = &slowReader{r: c}
	}
	down := digest(r)
	wantDown := digest(stream(2, size))
	wantUp := digest(stream(1, size))
	if err := <-downSent; err != nil {
		t.Errorf("client send: %v", err)
	}
	if down.err != nil || down.n != size || down.sha != wantDown.sha {
		t.Errorf("client received %d of %d bytes (sha ok %v), read error %v", down.n, size, down.sha == wantDown.sha, down.err)
	}
	up := <-upGot
	if err := <-upSent; err != nil {
		t.Errorf("upstream send: %v", err)
	}
	if up.err != nil || up.n != size || up.sha != wantUp.sha {
		t.Errorf("upstream received %d of %d bytes (sha ok %v), read error %v", up.n, size, up.sha == wantUp.sha, up.err)
	}
	if t.Failed() {
		t.FailNow()
	}
	testkit.WaitFor(t, "the relay to end", func() bool { return px.Stats().Active == 0 })
	return px.Stats(), px.eng.Backend()
}

// bulkCases are the bulk transfers: each path, with a fast or a slow reader on
// either side.
var bulkCases = []struct {
	name            string
	spliceAfter     int64
	slowUp, slowDwn bool
}{
	{"splice", 256 << 10, false, false},
	{"copy", 0, false, false},
	{"splice slow client", 256 << 10, false, true},
	{"splice slow upstream", 256 << 10, true, false},
	{"copy slow client", 0, false, true},
	{"copy slow upstream", 0, true, false},
}

// TestBulk moves 32 MiB each way in every bulk case, splicing or copying, on
// either backend (scripts/test.sh runs this package on both with -race).
// TestHeavyBulk moves 1 GiB on either.
func TestBulk(t *testing.T) { testBulk(t, 32<<20) }

// TestHeavyBulk moves 1 GiB each way in every bulk case, with GALE_HEAVY=1.
func TestHeavyBulk(t *testing.T) {
	if os.Getenv("GALE_HEAVY") == "" {
		t.Skip("set GALE_HEAVY=1 to move 1 GiB each way through the relay")
	}
	testBulk(t, 1<<30)
}

func testBulk(t *testing.T, size int64) {
	for _, tc := range bulkCases {
		t.Run(tc.name, func(t *testing.T) {
			s, backend := bulk(t, size, tc.spliceAfter, tc.slowUp, tc.slowDwn)
			if tc.spliceAfter == 0 && s.Spliced != 0 {
				t.Fatalf("splice_after 0 spliced: %+v", s)
			}
			if tc.spliceAfter > 0 && spliceWorks && s.Spliced < uint64(size) {
				t.Fatalf("a bulk transfer on %s should move mostly by splice: %+v", backend, s)
			}
			if s.Copied+s.Spliced != 2*uint64(size) {
				t.Fatalf("relay counted %d bytes, want %d: %+v", s.Copied+s.Spliced, 2*size, s)
			}
			if (tc.slowUp || tc.slowDwn) && s.Backpressure == 0 {
				t.Fatalf("a slow reader must pause the fast side: %+v", s)
			}
		})
	}
}

// blockingEcho writes back what it reads with one blocking write per read, so
// it stops reading while its own output waits, and half-closes at the end.
func blockingEcho(c *net.TCPConn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			c.CloseWrite()
			return
		}
	}
}

// echoBack sends size bytes on c while reading the echo, and checks it.
func echoBack(t *testing.T, c *net.TCPConn, size int64, stats func() Stats) {
	t.Helper()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	sent := make(chan error, 1)
	go func() { sent <- send(c, 3, size) }()
	got, want := digest(c), digest(stream(3, size))
	if err := <-sent; err != nil {
		t.Errorf("client send: %v", err)
	}
	if got.err != nil || got.n != size || got.sha != want.sha {
		t.Fatalf("echo: %d of %d bytes (sha ok %v), read error %v; stats %+v",
			got.n, size, got.sha == want.sha, got.err, stats())
	}
}

// TestEchoFullDuplex sends a bulk stream to an upstream that echoes it with one
// blocking write per read (blockingEcho), and reads the echo at the same time.
// Each direction must move on its own: when the relay stopped reading the
// upstream because its queue toward the upstream was above the engine's
// high-water mark (the upstream was not reading it, being blocked on its
// write), neither side moved again and the transfer hung.
func TestEchoFullDuplex(t *testing.T) {
	const size = 16 << 20
	for _, tc := range []struct {
		name        string
		spliceAfter int64
	}{{"copy", 0}, {"splice", 256 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			px, addr := startProxy(t, Options{Upstreams: group(serve(t, blockingEcho)), SpliceAfter: tc.spliceAfter})
			echoBack(t, dial(t, addr), size, px.Stats)
			testkit.WaitFor(t, "the relay to end", func() bool { return px.Stats().Active == 0 })
		})
	}
}

// joiner accepts a client, dials up and joins the two with a Tunnels, as the
// HTTP proxy does for an upgraded connection.
type joiner struct {
	engine.NopHandler
	tun *Tunnels
	up  netip.AddrPort
}

func (j *joiner) OnOpen(c *engine.Conn) {
	c.PauseRead()
	if _, err := c.Loop().Dial(j.up, 5*time.Second, &joinUp{j: j, down: c}); err != nil {
		c.Close(err)
	}
}

// joinUp joins its client once the upstream connected.
type joinUp struct {
	engine.NopHandler
	j    *joiner
	down *engine.Conn
}

func (u *joinUp) OnOpen(c *engine.Conn) {
	u.down.SetHandler(u.j.tun.Handler())
	u.j.tun.Join(u.down, c)
}

// TestTunnelsEchoFullDuplex is TestEchoFullDuplex through Tunnels.Join (the
// HTTP proxy's plain WebSocket tunnels), on the copy path.
func TestTunnelsEchoFullDuplex(t *testing.T) {
	eng, err := engine.New(engine.Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	tun := NewTunnels(eng, time.Minute, 0, slog.New(slog.DiscardHandler))
	addr, err := eng.Listen("127.0.0.1:0", &joiner{tun: tun, up: netip.MustParseAddrPort(serve(t, blockingEcho))})
	if err != nil {
		t.Fatal(err)
	}
	runEngine(t, eng)
	echoBack(t, dial(t, addr), 16<<20, tun.Stats)
	testkit.WaitFor(t, "the tunnel to end", func() bool { return tun.Stats().Active == 0 })
}

// TestUpstreamClosesAheadOfSlowClient: an upstream that writes 8 MiB and closes at
// once, behind a client that reads slowly, copying and splicing. The relay is
// paused for the client when the upstream's FIN arrives, with bytes before it still
// in the socket; the client must get all of them, then the end of stream.
func TestUpstreamClosesAheadOfSlowClient(t *testing.T) {
	const size = 8 << 20
	want := digest(stream(3, size))
	for _, tc := range []struct {
		name        string
		spliceAfter int64
	}{{"copy", 0}, {"splice", 256 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			upstream := serve(t, func(c *net.TCPConn) {
				c.SetDeadline(time.Now().Add(time.Minute))
				io.Copy(c, stream(3, size))
				// serve closes c when this returns: a full close, not a half-close.
			})
			px, addr := startProxy(t, Options{Upstreams: group(upstream), SpliceAfter: tc.spliceAfter})
			// A small receive buffer, set before the connect (shrinking it on an
			// established connection stalls loopback transfers in the kernel).
			d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) {
					syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10)
				})
			}}
			nc, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c := nc.(*net.TCPConn)
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute))
			got := digest(&slowReader{r: c})
			if got.err != nil || got.n != size || got.sha != want.sha {
				t.Fatalf("client received %d of %d bytes (sha ok %v), read error %v", got.n, size, got.sha == want.sha, got.err)
			}
			c.Close()
			testkit.WaitFor(t, "the relay to end", func() bool { return px.Stats().Active == 0 })
		})
	}
}
