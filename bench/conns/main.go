// Command conns measures what idle connections cost a server. It opens -n concurrent TCP
// connections to -addr, spread over -procs client processes (it re-executes itself, so each
// child stays under its open-file limit) and over many source addresses in 127.0.0.0/8 (so
// that no single address runs out of ephemeral ports), sends one HTTP/1.1 keep-alive GET on
// each and reads the whole response (or performs a WebSocket upgrade with -ws, or one GET on
// HTTP/2 stream 1 with prior knowledge with -h2), then holds
// them all open for -hold and closes them.
//
// It reports the ramp rate, errors by kind, the memory of the server's process tree (sum of
// VmRSS of -pid and its descendants, or of the processes listening on -port) before and
// after, the bytes per connection, and the kernel's TCP socket memory from
// /proc/net/sockstat. The last line of the report, starting with GALECONNS, is for scripts.
//
//	conns -addr 127.0.0.1:8080 -n 15000 -hold 30s
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childEnv marks a process started by the parent to hold a share of the connections.
const childEnv = "GALE_CONNS_CHILD"

// options are the command-line flags, shared by the parent and its children.
type options struct {
	addr        string
	n           int
	procs       int
	ws          bool
	deflate     bool
	h2          bool
	path        string
	topics      int
	pid         int
	port        int
	hold        time.Duration
	perIP       int
	concurrency int
	timeout     time.Duration
	warm        int
	// The legit client measuring service (probe.go); off unless probeRate or probeNewRate > 0.
	probeRate    float64
	probeNewRate float64
	probeConns   int
	probeBase    time.Duration
	probePath    string
	first        int // child only: global index of the child's first connection
}

// readyReport is what a child prints (as one JSON line) once its connections are open.
type readyReport struct {
	OK      int            `json:"ok"`
	Errors  map[string]int `json:"errors"`
	StartNS int64          `json:"start_ns"`
	EndNS   int64          `json:"end_ns"`
}

// finalReport is what a child prints when told to close, after the hold.
type finalReport struct {
	ClosedDuringHold int `json:"closed_during_hold"`
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8080", "server address host:port")
	flag.IntVar(&o.n, "n", 1000, "connections to open")
	flag.IntVar(&o.procs, "procs", 0, "client processes (default: one per 10,000 connections)")
	flag.BoolVar(&o.ws, "ws", false, "perform a WebSocket upgrade instead of a GET")
	flag.BoolVar(&o.deflate, "deflate", false, "with -ws: offer permessage-deflate and require the server to accept it")
	flag.BoolVar(&o.h2, "h2", false, "speak HTTP/2 by prior knowledge (h2c): one GET on stream 1, then hold")
	flag.StringVar(&o.path, "path", "/", "request path")
	flag.IntVar(&o.topics, "topics", 0, "with -ws: append the connection's index modulo N to -path (N pub/sub topics; 0: the path as it is)")
	flag.IntVar(&o.pid, "pid", 0, "server PID (its descendants are included)")
	flag.IntVar(&o.port, "port", 0, "find the server by this listening port (default: the port of -addr)")
	flag.DurationVar(&o.hold, "hold", 10*time.Second, "how long to hold the connections")
	flag.IntVar(&o.perIP, "per-ip", 1000, "connections per source address")
	flag.IntVar(&o.concurrency, "c", 128, "connection attempts in flight per client process")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of connect and of the response")
	flag.IntVar(&o.warm, "warm", 0, "connections opened and closed before the first memory reading")
	flag.Float64Var(&o.probeRate, "probe-rate", 0, "requests/s of a legit client on keep-alive connections, unloaded before the ramp and during the hold (0: none)")
	flag.Float64Var(&o.probeNewRate, "probe-new-rate", 0, "requests/s of a legit client each on a new connection, unloaded before the ramp and during the hold (0: none)")
	flag.IntVar(&o.probeConns, "probe-conns", 4, "keep-alive connections of the legit client")
	flag.DurationVar(&o.probeBase, "probe-base", 10*time.Second, "how long the legit client measures before the ramp (the unloaded figure)")
	flag.StringVar(&o.probePath, "probe-path", "/", "path the legit client GETs (always HTTP/1.1, whatever -ws or -h2)")
	flag.IntVar(&o.first, "child-first", 0, "internal: first connection index of a child")
	flag.Parse()

	if os.Getenv(childEnv) == "1" {
		if err := runChild(o); err != nil {
			fmt.Fprintln(os.Stderr, "conns child:", err)
			os.Exit(1)
		}
		return
	}
	if err := runParent(o); err != nil {
		fmt.Fprintln(os.Stderr, "conns:", err)
		os.Exit(1)
	}
}

// child is one running client process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// spawn starts a child process holding count connections from global index first.
func spawn(o options, exe string, first, count int) (*child, error) {
	args := []string{"-addr", o.addr, "-n", strconv.Itoa(count), "-path", o.path,
		"-per-ip", strconv.Itoa(o.perIP), "-c", strconv.Itoa(o.concurrency),
		"-timeout", o.timeout.String(), "-child-first", strconv.Itoa(first)}
	if o.ws {
		args = append(args, "-ws", "-topics", strconv.Itoa(o.topics))
	}
	if o.deflate {
		args = append(args, "-deflate")
	}
	if o.h2 {
		args = append(args, "-h2")
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}, nil
}

// warmUp opens o.warm connections the same way, closes them and waits 3 s, so that
// the "before" reading already includes what a server sets up once (code paged in, tables,
// buffer pools) rather than charging it to the measured connections.
func warmUp(o options) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// Source addresses after the measured connections', so no port is reused in TIME_WAIT.
	c, err := spawn(o, exe, (o.n/o.perIP+1)*o.perIP, o.warm)
	if err != nil {
		return err
	}
	var r readyReport
	err = readJSON(c.out, &r)
	c.stdin.Close()
	c.cmd.Wait()
	if err != nil {
		return fmt.Errorf("warm-up child: %w", err)
	}
	fmt.Printf("warm-up: %d connections opened and closed\n", r.OK)
	time.Sleep(3 * time.Second) // the closes reach the server, which may settle its memory
	return nil
}

func runParent(o options) error {
	if o.n < 1 || o.perIP < 1 || o.concurrency < 1 {
		return fmt.Errorf("-n, -per-ip and -c must be positive")
	}
	if o.probeRate < 0 || o.probeNewRate < 0 || o.probeConns < 1 || o.probeBase <= 0 ||
		o.probeRate > 100000 || o.probeNewRate > 10000 {
		return fmt.Errorf("-probe-rate must be 0-100000, -probe-new-rate 0-10000, -probe-conns and -probe-base positive")
	}
	probing := o.probeRate > 0 || o.probeNewRate > 0
	if o.procs == 0 {
		o.procs = (o.n + 9999) / 10000
	}
	if o.procs > o.n {
		o.procs = o.n
	}
	_, hard, err := fileLimit()
	if err != nil {
		return err
	}
	perChild := (o.n + o.procs - 1) / o.procs
	if uint64(perChild)+64 > hard {
		return fmt.Errorf("%d connections per process exceed the open-file limit %d; raise -procs", perChild, hard)
	}
	if o.port == 0 {
		i := strings.LastIndexByte(o.addr, ':')
		if o.port, err = strconv.Atoi(o.addr[i+1:]); err != nil {
			return fmt.Errorf("no port in -addr %q", o.addr)
		}
	}
	roots, err := serverRoots(o.pid, o.port)
	if err != nil {
		return err
	}
	if o.warm > 0 {
		if err := warmUp(o); err != nil {
			return err
		}
	}
	var base [2]probeResult
	if probing {
		base[0], base[1] = probe(context.Background(), o, o.probeBase)
		fmt.Printf("unloaded probe, %s:\n", o.probeBase)
		printProbe(o, base)
	}
	quietSockets()
	if _, _, err := treeRSS(roots); err != nil {
		return err
	}
	slabBefore, unreclBefore, err := slabBytes()
	if err != nil {
		return err
	}
	cachesBefore, cachesErr := slabCaches() // root only: the breakdown is left out without it
	countersBefore, err := netCounters()
	if err != nil {
		return err
	}
	rssBefore, npids := lowRSS(roots)
	tcpBefore, err := tcpMemPages()
	if err != nil {
		return err
	}
	fmt.Printf("target %s, %d connections over %d client processes, %d per source address\n", o.addr, o.n, o.procs, o.perIP)
	fmt.Printf("server processes: %d (roots %v)\n", npids, roots)

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var children []*child
	defer func() {
		for _, c := range children {
			c.stdin.Close()
			c.cmd.Wait()
		}
	}()
	for i, first := 0, 0; first < o.n; i++ {
		count := min(perChild, o.n-first)
		c, err := spawn(o, exe, first, count)
		if err != nil {
			return err
		}
		children = append(children, c)
		first += count
	}

	ok, errs := 0, map[string]int{}
	var start, end int64
	for _, c := range children {
		var r readyReport
		if err := readJSON(c.out, &r); err != nil {
			return fmt.Errorf("child %d: %w", c.cmd.Process.Pid, err)
		}
		ok += r.OK
		for k, v := range r.Errors {
			errs[k] += v
		}
		if start == 0 || r.StartNS < start {
			start = r.StartNS
		}
		end = max(end, r.EndNS)
	}
	ramp := time.Duration(end - start)
	rssAfter := settledRSS(roots)
	tcpAfter, err := tcpMemPages()
	if err != nil {
		return err
	}

	page := int64(os.Getpagesize())
	perConn := func(delta int64) float64 {
		if ok == 0 {
			return 0
		}
		return float64(delta) / float64(ok)
	}
	rate := float64(ok) / ramp.Seconds()
	fmt.Printf("ramp: %d connected in %.3f s = %.0f conns/s\n", ok, ramp.Seconds(), rate)
	fmt.Printf("errors: %s\n", formatErrors(errs))
	fmt.Printf("server RSS: before %s, after %s, delta %s = %.0f B/conn\n",
		mib(rssBefore), mib(rssAfter), mib(rssAfter-rssBefore), perConn(rssAfter-rssBefore))
	fmt.Printf("kernel TCP memory (sockstat, client and server ends): before %d pages, after %d pages = %.1f B/conn\n",
		tcpBefore, tcpAfter, perConn((tcpAfter-tcpBefore)*page))
	slabAfter, unreclAfter, err := slabBytes()
	if err != nil {
		return err
	}
	fmt.Printf("kernel slab (/proc/meminfo, system-wide, client and server ends): before %s, after %s, delta %s = %.0f B/conn (unreclaimable %.0f B/conn)\n",
		mib(slabBefore), mib(slabAfter), mib(slabAfter-slabBefore), perConn(slabAfter-slabBefore), perConn(unreclAfter-unreclBefore))
	if cachesErr == nil {
		if cachesAfter, err := slabCaches(); err == nil {
			fmt.Printf("kernel slab by cache (/proc/slabinfo, active objects, both ends): %s\n", slabGrowth(cachesBefore, cachesAfter, ok, 10))
		}
	}
	fmt.Printf("sockstat TCP: %s\n", sockstatTCPAll())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	fmt.Printf("holding for %s\n", o.hold)
	cpuBefore, cpuErr := treeCPU(roots)
	holdStart := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	held := make(chan [2]probeResult, 1)
	go func() {
		var r [2]probeResult
		if probing {
			r[0], r[1] = probe(ctx, o, o.hold)
		} else {
			select {
			case <-ctx.Done():
			case <-time.After(o.hold):
			}
		}
		held <- r
	}()
	var load [2]probeResult
	select {
	case load = <-held:
	case s := <-sig:
		fmt.Printf("hold cut short by %v\n", s)
		cancel()
		load = <-held
	}
	p99 := [2]float64{-1, -1} // hold p99 / unloaded p99 of each kind; -1: not measured
	if probing {
		fmt.Printf("probe during the hold, %d connections open:\n", ok)
		printProbe(o, load)
		for i := range load {
			if b := base[i].quantile(0.99); b > 0 && load[i].n > 0 {
				p99[i] = float64(load[i].quantile(0.99)) / float64(b)
			}
		}
		fmt.Printf("p99 under load / unloaded: keep-alive %.2f, new connection %.2f (goal: at most 2)\n", p99[0], p99[1])
	}
	// What holding costs the server in CPU while the connections sit idle (timers, the
	// runtime), with the legit client's requests included when it runs.
	holdCPU := time.Duration(-1)
	if cpuAfter, err := treeCPU(roots); err == nil && cpuErr == nil {
		holdCPU = cpuAfter - cpuBefore
		secs := time.Since(holdStart).Seconds()
		fmt.Printf("server CPU during the hold: %.2f s in %.1f s = %.1f%% of one core\n",
			holdCPU.Seconds(), secs, 100*holdCPU.Seconds()/secs)
	}
	countersAfter, err := netCounters()
	if err != nil {
		return err
	}
	fmt.Printf("kernel TCP counters during ramp and hold: %s\n", counterDelta(countersBefore, countersAfter))
	// The connections have now been idle for the whole hold: what the server still holds
	// for them once it has had time to settle (a runtime giving free memory back, say).
	rssHeld, _ := lowRSS(roots)
	fmt.Printf("server RSS at the end of the hold: %s, delta %s = %.0f B/conn\n",
		mib(rssHeld), mib(rssHeld-rssBefore), perConn(rssHeld-rssBefore))
	// Every child is told at once, so that all of them look at their connections at the end
	// of the hold, not one after the other while the earlier ones close theirs.
	for _, c := range children {
		c.stdin.Close()
	}
	closed := 0
	for _, c := range children {
		var r finalReport
		if err := readJSON(c.out, &r); err == nil {
			closed += r.ClosedDuringHold
		}
	}
	fmt.Printf("closed by the server during the hold: %d\n", closed)
	var after [2]probeResult
	if probing {
		// The same measurement once the connections are gone: on a machine shared with other
		// work, how far the unloaded figure itself moves during the run.
		quietSockets()
		after[0], after[1] = probe(context.Background(), o, o.probeBase)
		fmt.Printf("unloaded probe again after the close, %s:\n", o.probeBase)
		printProbe(o, after)
	}
	nerr := 0
	for _, v := range errs {
		nerr += v
	}
	probeErrs := 0
	for _, r := range [...][2]probeResult{base, load, after} {
		probeErrs += r[0].errors() + r[1].errors()
	}
	fmt.Printf("GALECONNS n=%d ok=%d errors=%d ramp_s=%.3f conns_per_s=%.0f rss_before=%d rss_after=%d bytes_per_conn=%.0f tcp_mem_pages_before=%d tcp_mem_pages_after=%d sock_bytes_per_conn=%.1f closed_during_hold=%d rss_held=%d held_bytes_per_conn=%.0f slab_before=%d slab_after=%d slab_bytes_per_conn=%.0f probe_errors=%d p99_keep_base_us=%d p99_keep_hold_us=%d p99_keep_ratio=%.2f p99_new_base_us=%d p99_new_hold_us=%d p99_new_ratio=%.2f p99_keep_after_us=%d p99_new_after_us=%d hold_cpu_s=%.2f\n",
		o.n, ok, nerr, ramp.Seconds(), rate, rssBefore, rssAfter, perConn(rssAfter-rssBefore),
		tcpBefore, tcpAfter, perConn((tcpAfter-tcpBefore)*page), closed, rssHeld, perConn(rssHeld-rssBefore),
		slabBefore, slabAfter, perConn(slabAfter-slabBefore), probeErrs,
		base[0].quantile(0.99).Microseconds(), load[0].quantile(0.99).Microseconds(), p99[0],
		base[1].quantile(0.99).Microseconds(), load[1].quantile(0.99).Microseconds(), p99[1],
		after[0].quantile(0.99).Microseconds(), after[1].quantile(0.99).Microseconds(), holdCPU.Seconds())
	if ok < o.n {
		return fmt.Errorf("%d of %d connections failed", o.n-ok, o.n)
	}
	return nil
}

// lowRSS returns the server's memory as the sum over its processes of each one's lowest
// reading in 2 s (11 readings 200 ms apart), and the process count. A garbage-collected
// server's resident memory saws up and down while idle (periodic work allocates, a
// collection or trim gives it back), each process on its own schedule; the low points
// are what its connections hold.
func lowRSS(roots []int) (int64, int) {
	low := map[int]int64{}
	for i := range 11 {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		cur := map[int]int64{}
		if _, _, err := treeRSSInto(roots, cur); err != nil {
			continue
		}
		for pid, v := range cur {
			if old, ok := low[pid]; !ok || v < old {
				low[pid] = v
			}
		}
	}
	var sum int64
	for _, v := range low {
		sum += v
	}
	return sum, len(low)
}

// settledRSS polls the server's memory until two readings 200 ms apart agree within 0.5% or
// three seconds pass, so that lazily freed or lazily touched pages are counted.
func settledRSS(roots []int) int64 {
	prev, _, _ := treeRSS(roots)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		cur, _, _ := treeRSS(roots)
		d := cur - prev
		if d < 0 {
			d = -d
		}
		if float64(d) <= 0.005*float64(cur) {
			return cur
		}
		prev = cur
	}
	return prev
}

// quietSockets waits up to three seconds for orphaned TCP sockets (an earlier run's closing
// connections) to drain, so that they do not inflate the "before" socket memory.
func quietSockets() {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if n, err := tcpOrphans(); err != nil || n == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// printProbe prints the figures of the probe kinds that ran.
func printProbe(o options, r [2]probeResult) {
	if o.probeRate > 0 {
		fmt.Printf("  keep-alive (%d connections, %.0f req/s): %s\n", o.probeConns, o.probeRate, &r[0])
	}
	if o.probeNewRate > 0 {
		fmt.Printf("  new connection per request (%.0f/s): %s\n", o.probeNewRate, &r[1])
	}
}

// counterDelta formats the change of each watched kernel counter that moved.
func counterDelta(before, after map[string]int64) string {
	var parts []string
	for _, k := range watchedCounters {
		if d := after[k] - before[k]; d != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, d))
		}
	}
	if len(parts) == 0 {
		return "none moved"
	}
	return strings.Join(parts, " ")
}

func readJSON(s *bufio.Scanner, v any) error {
	if !s.Scan() {
		if s.Err() != nil {
			return s.Err()
		}
		return io.ErrUnexpectedEOF
	}
	return json.Unmarshal(s.Bytes(), v)
}

func formatErrors(errs map[string]int) string {
	if len(errs) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, errs[k])
	}
	return strings.Join(parts, " ")
}

func mib(b int64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

// slabGrowth formats the caches that grew most between before and after, as bytes per
// connection over ok connections, largest first, at most top of them and only those above
// 8 B per connection, with the rest summed.
func slabGrowth(before, after map[string]int64, ok, top int) string {
	if ok <= 0 {
		return "no connections"
	}
	type growth struct {
		name string
		d    int64
	}
	var gs []growth
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			gs = append(gs, growth{k, d})
		}
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].d > gs[j].d || gs[i].d == gs[j].d && gs[i].name < gs[j].name })
	var parts []string
	var total, rest int64
	for i, g := range gs {
		total += g.d
		if i < top && g.d/int64(ok) >= 8 {
			parts = append(parts, fmt.Sprintf("%s %d", g.name, g.d/int64(ok)))
		} else {
			rest += g.d
		}
	}
	parts = append(parts, fmt.Sprintf("other %d", rest/int64(ok)))
	return fmt.Sprintf("%d B/conn: %s", total/int64(ok), strings.Join(parts, ", "))
}
