//go:build linux && !galenet

// The portable engine (galenet) runs a goroutine per connection, so the figure is the
// epoll engine's.
package server

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/gale-server/gale/http2"
	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/net/http2/hpack"
)

// TestHeavyH2IdleMemory opens idle HTTP/2 connections from raw sockets (the client side
// holds nothing but descriptors), each after one request and its response, and measures
// the server's live heap per connection after garbage collection: the engine Conn, the
// h2conn, the http2.Conn and its two HPACK tables, nothing else (no read or write buffer).
// It must stay within 2.5 KiB (2,358 B measured: about 860 B of HPACK table entries,
// the http2.Conn's 576, the engine's Conn and the h2conn). GALE_HEAVY=1 opens 9,000
// (both ends live in this process); otherwise 500. bench/conns -h2 measures the RSS
// side against nginx.
func TestHeavyH2IdleMemory(t *testing.T) {
	n := 500
	if os.Getenv("GALE_HEAVY") == "1" {
		n = 9000
	} else {
		t.Logf("reduced size; GALE_HEAVY=1 runs 9,000 connections")
	}
	need := uint64(2*(n+n/10) + 200) // both ends, and the warm-up batch
	if got := testkit.RaiseFileLimit(t, need); got < need {
		n = int(min(uint64(n), (got-200)*10/22))
		t.Logf("descriptor limit %d: measuring %d connections", got, n)
	}
	hello := []byte("hello, world\n")
	h := exchFunc(func(x Exchange) { x.Respond(200, "text/plain", hello) })
	srv, err := New(Options{Handler: h, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := srv.ListenHTTP2("127.0.0.1:0", h, HTTP2Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	shutdownAtCleanup(t, srv)
	ap, err := netip.ParseAddrPort(l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	sa := &syscall.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}

	// The client's first flight: preface, empty SETTINGS, the ACK of the server's
	// SETTINGS (sent at accept), and one GET with a browser's fields.
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "x"},
		{"user-agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/130.0"},
		{"accept", "text/html,application/xhtml+xml"}, {"accept-language", "en-US,en;q=0.5"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	req := append([]byte(http2.Preface), http2.AppendSettings(nil, false)...)
	req = http2.AppendSettings(req, true)
	req = http2.AppendHeaders(req, 1, blk.Bytes(), true, http2.MinMaxFrameSize)

	open := func(k int) []int {
		fds := make([]int, 0, k)
		buf := make([]byte, 4096)
		for i := 0; i < k; i++ {
			fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			fds = append(fds, fd)
			if err := syscall.Connect(fd, sa); err != nil {
				t.Fatal(err)
			}
			if _, err := syscall.Write(fd, req); err != nil {
				t.Fatal(err)
			}
			if !readEndStream(fd, buf) {
				t.Fatalf("connection %d: no complete response on stream 1", i)
			}
		}
		return fds
	}
	closeAll := func(fds []int) {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
	warm := open(n / 10)
	defer closeAll(warm)
	before := liveHeap()
	fds := open(n)
	defer closeAll(fds)
	if got := l.dp.by[ProtoH2].(*HTTP2).Conns(); got != int64(n+n/10) {
		t.Fatalf("%d HTTP/2 connections open, want %d", got, n+n/10)
	}
	after := liveHeap()
	per := float64(int64(after)-int64(before)) / float64(n)
	t.Logf("%d idle HTTP/2 connections after one request: live heap %.0f B/conn", n, per)
	if per > 2560 {
		t.Fatalf("an idle HTTP/2 connection costs %.0f bytes of live heap, want at most 2560", per)
	}
}

// readEndStream reads frames from fd until one on stream 1 carries END_STREAM; it
// reports false on EOF, an error or a full buffer first (the server's preface and a
// small response fit in buf many times over).
func readEndStream(fd int, buf []byte) bool {
	got := 0
	for got < len(buf) {
		m, err := syscall.Read(fd, buf[got:])
		if err != nil || m <= 0 {
			return false
		}
		got += m
		for off := 0; got-off >= 9; {
			ln := int(binary.BigEndian.Uint32(buf[off:])>>8) + 9
			if got-off < ln {
				break
			}
			typ, flags, id := buf[off+3], buf[off+4], binary.BigEndian.Uint32(buf[off+5:])&0x7fffffff
			if id == 1 && (typ == 0 || typ == 1) && flags&1 != 0 {
				return true
			}
			off += ln
		}
	}
	return false
}

// liveHeap returns the bytes of live heap objects after two collections.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
