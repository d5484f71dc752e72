package l4

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPingPong measures the round trip of a small message through the
// relay, on the copy path and on the splice path (forced from the first byte:
// small reads never start splicing on their own).
func BenchmarkPingPong(b *testing.B) {
	for _, tc := range []struct {
		name  string
		after int64
	}{{"copy", 0}, {"splice", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			upstream := serve(b, func(c *net.TCPConn) { io.Copy(c, c) })
			_, addr := startProxy(b, Options{Upstreams: group(upstream), SpliceAfter: tc.after, spliceSmall: tc.after > 0})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := make([]byte, 512)
			c.Write(msg)
			io.ReadFull(c, msg)
			b.ResetTimer()
			cpu := cpuTime()
			for b.Loop() {
				c.Write(msg)
				io.ReadFull(c, msg)
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkBulk measures CPU time per GB of a one-way transfer on each path.
func BenchmarkBulk(b *testing.B) {
	for _, tc := range []struct {
		name  string
		after int64
	}{{"copy", 0}, {"splice", 256 << 10}} {
		b.Run(tc.name, func(b *testing.B) {
			const size = 256 << 20
			upstream := serve(b, func(c *net.TCPConn) { io.Copy(io.Discard, c) })
			_, addr := startProxy(b, Options{Upstreams: group(upstream), SpliceAfter: tc.after})
			buf := make([]byte, 1<<20)
			b.SetBytes(size)
			var cpu time.Duration
			for b.Loop() {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				start := cpuTime()
				for sent := 0; sent < size; sent += len(buf) {
					c.Write(buf)
				}
				c.(*net.TCPConn).CloseWrite()
				io.ReadAll(c)
				cpu += cpuTime() - start
				c.Close()
			}
			b.ReportMetric(cpu.Seconds()/(float64(b.N)*size/1e9), "cpu-s/GB")
		})
	}
}
