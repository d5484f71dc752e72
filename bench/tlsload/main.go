// Command tlsload measures TLS servers for bench/tls: new or resumed handshakes
// per second (each connection: handshake, one HTTP/1.1 request, close), and the
// memory a server holds per idle TLS connection.
//
//	tlsload -addr 127.0.0.1:8443 -c 32 -d 10s            new TLS 1.3 handshakes/s
//	tlsload -addr 127.0.0.1:8443 -c 32 -d 10s -resume    resumed handshakes/s
//	tlsload -addr 127.0.0.1:8443 -idle 2000 -pids PID    idle memory per connection
//
// Key exchange is X25519 only (no post-quantum hybrid) so that servers built on
// different TLS libraries do the same work; the certificate is not verified
// (the server's key is the bench's own). Output is one line of key=value pairs.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "server host:port")
	conc := flag.Int("c", 32, "concurrent connections")
	dur := flag.Duration("d", 10*time.Second, "duration of the handshake measurement")
	resume := flag.Bool("resume", false, "resume sessions (tickets) instead of full handshakes")
	idle := flag.Int("idle", 0, "open this many idle keep-alive connections (one request each) and report the server's memory per connection")
	pids := flag.String("pids", "", "with -idle: the server processes' pids, comma-separated, whose VmRSS is summed")
	path := flag.String("path", "/", "request path")
	flag.Parse()
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519}, ServerName: "localhost"}
	if *resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(*conc * 2)
	}
	req := "GET " + *path + " HTTP/1.1\r\nHost: localhost\r\n\r\n"
	if *idle > 0 {
		idleMemory(*addr, cfg, req, *idle, *pids)
		return
	}
	handshakes(*addr, cfg, req, *conc, *dur, *resume)
}

// exchange makes one connection: handshake, request, response head and body
// (Content-Length), then close (or keep it open when keep is set).
func exchange(addr string, cfg *tls.Config, req string, keep bool) (*tls.Conn, bool, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, false, err
	}
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, cfg)
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, false, err
	}
	br := bufio.NewReader(c)
	n := -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, false, err
		}
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length:"); ok {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if line == "\r\n" {
			break
		}
	}
	if n < 0 {
		c.Close()
		return nil, false, fmt.Errorf("no content-length")
	}
	if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
		c.Close()
		return nil, false, err
	}
	resumed := c.ConnectionState().DidResume
	if keep {
		raw.SetDeadline(time.Time{})
		return c, resumed, nil
	}
	c.Close()
	return nil, resumed, nil
}

// handshakes runs conc loops of exchanges for dur and prints the rate.
func handshakes(addr string, cfg *tls.Config, req string, conc int, dur time.Duration, resume bool) {
	var ok, resumed, failed atomic.Int64
	if resume { // one full handshake per loop first, so that every later one can resume
		for range conc {
			exchange(addr, cfg, req, false)
		}
	}
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for time.Now().Before(stop) {
				_, r, err := exchange(addr, cfg, req, false)
				switch {
				case err != nil:
					failed.Add(1)
				case r:
					resumed.Add(1)
					ok.Add(1)
				default:
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	fmt.Printf("handshakes_per_s=%.0f ok=%d resumed=%d failed=%d seconds=%.2f\n", float64(ok.Load())/el, ok.Load(), resumed.Load(), failed.Load(), el)
	if failed.Load() > ok.Load()/100 {
		fmt.Fprintf(os.Stderr, "tlsload: %d of %d connections failed\n", failed.Load(), failed.Load()+ok.Load())
		os.Exit(1)
	}
	if resume && resumed.Load() < ok.Load()*9/10 {
		fmt.Fprintf(os.Stderr, "tlsload: only %d of %d handshakes resumed\n", resumed.Load(), ok.Load())
		os.Exit(1)
	}
}

// idleMemory opens n keep-alive connections, each after one request, and
// prints the server's RSS growth per connection.
func idleMemory(addr string, cfg *tls.Config, req string, n int, pids string) {
	before := rss(pids)
	conns := make([]*tls.Conn, 0, n)
	for len(conns) < n {
		c, _, err := exchange(addr, cfg, req, true)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tlsload:", err)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	time.Sleep(2 * time.Second) // let the servers settle (Go's scavenger, nginx's pools)
	after := rss(pids)
	fmt.Printf("idle_conns=%d rss_before_kb=%d rss_after_kb=%d bytes_per_conn=%.0f\n", n, before, after, float64(after-before)*1024/float64(n))
	for _, c := range slices.Backward(conns) {
		c.Close()
	}
}

// rss sums VmRSS (KiB) of the comma-separated pids.
func rss(pids string) int64 {
	var total int64
	for _, p := range strings.Split(pids, ",") {
		if p == "" {
			continue
		}
		b, err := os.ReadFile("/proc/" + p + "/status")
		if err != nil {
			fmt.Fprintln(os.Stderr, "tlsload:", err)
			os.Exit(1)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				total += kb
			}
		}
	}
	return total
}
