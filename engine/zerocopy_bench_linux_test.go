//go:build linux && !galenet

package engine

import (
	"fmt"
	"io"
	"net"
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

func benchZeroCopy(b *testing.B, size int, zc bool) {
	body := make([]byte, size)
	threshold := -1
	if zc {
		threshold = 1
	}
	h := &script{data: func(c *Conn, in []byte) int {
		for range in {
			c.WriteRef(body, func() {})
		}
		return len(in)
	}}
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
