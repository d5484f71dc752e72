//go:build linux && !galenet

package engine

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkZeroCopy sends bodies of several sizes queued with WriteRef, with and
// without zero-copy (MSG_ZEROCOPY on epoll, IORING_OP_SEND_ZC on io_uring: both
// backends, io_uring where the kernel has it), to a client in the same process
// over loopback, and reports
// the process's CPU time (user + system, both ends) per GiB sent. On loopback the
// kernel copies zero-copy data on delivery anyway, so "zc" here measures what
// zero-copy costs on top (page pinning, completion notifications, the error-queue
// reads), not what it saves on a real NIC. Run:
//
//	go test -run '^$' -bench ZeroCopy -benchtime 200x ./engine
func BenchmarkZeroCopy(b *testing.B) {
	zcKeepCopied = true
	defer func() { zcKeepCopied = false }()
	backends := []string{BackendEpoll}
	if uringZCSupported() {
		backends = append(backends, BackendIOURing)
	}
	defer func() { zcBackend = BackendEpoll }()
	for _, backend := range backends {
		for _, size := range []int{16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20} {
			for _, zc := range []bool{false, true} {
				name := fmt.Sprintf("engine=%s/size=%dK/zc=%v", backend, size>>10, zc)
				zcBackend = backend
				b.Run(name, func(b *testing.B) { benchZeroCopy(b, size, zc) })
			}
		}
	}
}

// zcSender returns a handler that answers every byte it reads with size bytes queued
// by reference (WriteRef), and the engine's ZeroCopy threshold: 1 (every shared
// segment zero-copy) when zc, else -1 (off).
func zcSender(size int, zc bool) (*script, int) {
	body := make([]byte, size)
	threshold := -1
	if zc {
		threshold = 1
	}
	return &script{data: func(c *Conn, in []byte) int {
		for range in {
			c.WriteRef(body, func() {})
		}
		return len(in)
	}}, threshold
}

func benchZeroCopy(b *testing.B, size int, zc bool) {
	h, threshold := zcSender(size, zc)
	e, addr := startZeroCopy(b, h, threshold)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Minute))
	buf := make([]byte, 256<<10)
	cpu0 := cpuTime()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write([]byte{'g'})
		if _, err := io.ReadFull(c, buf[:min(size, len(buf))]); err != nil {
			b.Fatal(err)
		}
		for left := size - min(size, len(buf)); left > 0; {
			n, err := c.Read(buf[:min(left, len(buf))])
			if err != nil {
				b.Fatal(err)
			}
			left -= n
		}
	}
	b.StopTimer()
	gib := float64(size) * float64(b.N) / (1 << 30)
	b.ReportMetric((cpuTime()-cpu0).Seconds()/gib, "cpu-s/GiB")
	if zc && e.Stats().ZeroCopySends == 0 {
		b.Fatal("no zero-copy sends")
	}
}

// cpuTime returns the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkZeroCopyVeth is BenchmarkZeroCopy with the client in another network
// namespace, reached over a veth pair, so that the CPU figure (this process's:
// the server alone) leaves the client out. It runs only with ZC_NETNS naming the
// namespace and ZC_LISTEN this side's veth address (host:0), both set up by hand:
//
//	ip netns add urzc; ip link add urzc0 type veth peer name urzc1
//	ip link set urzc1 netns urzc; ip addr add 10.216.55.1/30 dev urzc0; ip link set urzc0 up
//	ip netns exec urzc ip addr add 10.216.55.2/30 dev urzc1; ip netns exec urzc ip link set urzc1 up
//	ZC_NETNS=urzc ZC_LISTEN=10.216.55.1:0 go test -run '^$' -bench ZeroCopyVeth -benchtime 100x ./engine
//
// veth delivers to a socket on the same host, so the kernel copies zero-copy data
// there too (and reports it copied); what this adds to the loopback figure is the
// server's cost without the client's.
func BenchmarkZeroCopyVeth(b *testing.B) {
	ns, listen := os.Getenv("ZC_NETNS"), os.Getenv("ZC_LISTEN")
	if ns == "" || listen == "" {
		b.Skip("set ZC_NETNS and ZC_LISTEN (see the comment)")
	}
	zcKeepCopied = true
	defer func() { zcKeepCopied = false; zcBackend = BackendEpoll }()
	backends := []string{BackendEpoll}
	if uringZCSupported() {
		backends = append(backends, BackendIOURing)
	}
	for _, backend := range backends {
		for _, size := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20} {
			for _, zc := range []bool{false, true} {
				zcBackend = backend
				b.Run(fmt.Sprintf("engine=%s/size=%dK/zc=%v", backend, size>>10, zc), func(b *testing.B) {
					benchZeroCopyVeth(b, ns, listen, size, zc)
				})
			}
		}
	}
}

// vethClient asks for a body (one byte) and reads it whole, n times.
const vethClient = `
import socket, sys
host, port, size, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection((host, port))
buf = bytearray(1 << 20)
for _ in range(n):
    s.sendall(b"g")
    left = size
    while left:
        k = s.recv_into(buf, min(left, len(buf)))
        if k == 0:
            sys.exit("short body")
        left -= k
`

func benchZeroCopyVeth(b *testing.B, ns, listen string, size int, zc bool) {
	h, threshold := zcSender(size, zc)
	e, addr := startEngineConfig(b, h, Config{Workers: 1, ZeroCopy: threshold, Backend: zcBackend}, listen)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("ip", "netns", "exec", ns, "python3", "-c", vethClient, host, port, fmt.Sprint(size), fmt.Sprint(b.N))
	cpu0 := cpuTime()
	b.SetBytes(int64(size))
	b.ResetTimer()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("client: %v\n%s", err, out)
	}
	b.StopTimer()
	gib := float64(size) * float64(b.N) / (1 << 30)
	b.ReportMetric((cpuTime()-cpu0).Seconds()/gib, "server-cpu-s/GiB")
	if s := e.Stats(); zc && s.ZeroCopySends == 0 {
		b.Fatal("no zero-copy sends")
	} else if zc {
		b.ReportMetric(float64(s.ZeroCopyCopied)/float64(s.ZeroCopySends), "copied/zc-send")
	}
}
