//go:build linux && !galenet

package wsserver

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gale-server/gale/server"
)

// TestHeavyIdleMemory opens idle WebSockets from raw sockets (the client side holds
// nothing but descriptors) and measures the server's live heap per connection after
// garbage collection: the engine Conn and the wsserver Conn must stay within 256 bytes.
// It measures the epoll engine (the portable engine runs a goroutine per connection).
// GALE_HEAVY=1 opens 15,000 (fewer when the descriptor limit cannot be raised: both
// ends live in this process; bench/conns measures 15,000 across processes); otherwise
// 1,000.
func TestHeavyIdleMemory(t *testing.T) {
	n := 1000
	if os.Getenv("GALE_HEAVY") == "1" {
		n = 15000
	} else {
		t.Logf("reduced size; GALE_HEAVY=1 runs 15,000 connections")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if need := uint64(2*(n+n/10) + 200); lim.Cur < need { // both ends, and the warm-up batch
		old := lim
		lim.Cur = max(need, lim.Cur)
		lim.Max = max(lim.Max, lim.Cur)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			lim = old
			n = int(min(uint64(n), (old.Cur-200)*10/22))
			t.Logf("descriptor limit %d: measuring %d connections", old.Cur, n)
		} else {
			t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
		}
	}
	per, rss := measureIdle(t, n, "")
	if per > 256 {
		t.Fatalf("an idle WebSocket costs %.0f bytes of live heap, want at most 256", per)
	}
	// permessage-deflate without context takeover adds nothing: the parameters are shared.
	perC, rssC := measureIdle(t, n, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
	if perC > 256 {
		t.Fatalf("an idle compressed WebSocket costs %.0f bytes of live heap, want at most 256", perC)
	}
	// Resident memory after a trim is the live heap plus the runtime's metadata and
	// size-class rounding; only with many connections is the figure steady enough.
	if n >= 5000 && max(rss, rssC) > 256 {
		t.Fatalf("an idle WebSocket costs %.0f (compressed %.0f) bytes of RSS after a trim, want at most 256", rss, rssC)
	}
}

// measureIdle opens n idle WebSockets (after a warm-up tenth) to a one-loop server,
// with the request header line ext, and returns the live heap bytes per connection and
// the resident bytes per connection after debug.FreeOSMemory (as the serving process's
// memtrim leaves it), logging where the resident bytes are (memClasses).
func measureIdle(t *testing.T, n int, ext string) (float64, float64) {
	ws, err := New(Echo{}, Options{Compression: ext != ""})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Handler: ws, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Shutdown(t.Context())
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	sa := &syscall.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	req := []byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n" + ext + "\r\n")
	open := func(k int) []int {
		fds := make([]int, 0, k)
		buf := make([]byte, 512)
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
			got := 0
			for !bytes.Contains(buf[:got], []byte("\r\n\r\n")) {
				m, err := syscall.Read(fd, buf[got:])
				if err != nil || m <= 0 {
					t.Fatalf("handshake %d: %v", i, err)
				}
				got += m
			}
			if !bytes.HasPrefix(buf, []byte("HTTP/1.1 101")) {
				t.Fatalf("handshake %d: %q", i, buf[:got])
			}
		}
		return fds
	}
	closeAll := func(fds []int) {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
	// Warm up the loop (buffers, tables) with a first batch, then measure a second.
	warm := open(n / 10)
	defer closeAll(warm)
	before := liveHeap()
	mBefore := memClasses()
	fds := open(n)
	defer closeAll(fds)
	// Every handshake was answered, so every connection is open.
	if got := ws.Stats().Opened; got != uint64(n+n/10) {
		t.Fatalf("%d opened, want %d", got, n+n/10)
	}
	after := liveHeap()
	mAfter := memClasses()
	per := float64(int64(after)-int64(before)) / float64(n)
	t.Logf("%d idle WebSockets: live heap %.0f B/conn (engine Conn + wsserver Conn + engine tables)", n, per)
	var b strings.Builder
	for i, name := range memClassNames {
		fmt.Fprintf(&b, " %s=%.1f", name, float64(int64(mAfter[i])-int64(mBefore[i]))/float64(n))
	}
	rss := float64(int64(mAfter[len(mAfter)-1])-int64(mBefore[len(mBefore)-1])) / float64(n)
	t.Logf("per connection after a trim, B:%s", b.String())
	return per, rss
}

// memClassNames are the runtime/metrics memClasses reads (without the prefix
// /memory/classes/ and the suffix :bytes), then the process's resident set.
var memClassNames = []string{
	"heap/objects", "heap/unused", "heap/free", "heap/stacks", "os-stacks",
	"metadata/mspan/inuse", "metadata/mspan/free", "metadata/mcache/inuse", "metadata/other",
	"profiling/buckets", "other", "RSS",
}

// memClasses runs debug.FreeOSMemory and returns the runtime's memory classes named by
// memClassNames and the resident set size (from /proc/self/statm).
func memClasses() []uint64 {
	debug.FreeOSMemory()
	samples := make([]metrics.Sample, len(memClassNames)-1)
	for i := range samples {
		samples[i].Name = "/memory/classes/" + memClassNames[i] + ":bytes"
	}
	metrics.Read(samples)
	out := make([]uint64, len(memClassNames))
	for i, s := range samples {
		out[i] = s.Value.Uint64()
	}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			out[len(out)-1] = pages * uint64(os.Getpagesize())
		}
	}
	return out
}

// liveHeap returns the bytes of live heap objects after two collections.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
