// Command l4bulk measures what a layer-4 relay costs apart from its request
// rate: CPU seconds per GiB of a bulk transfer through it, each way (client to
// server, then server to client, in every run), and the resident memory each
// idle relayed connection pair adds. It runs gale (with splice and with
// copying) and HAProxy mode tcp (with and without splicing) in front of its own
// sink on 127.0.0.1, one after the other, and prints a table.
//
// usage: l4bulk [-gale BIN] [-haproxy BIN] [-size BYTES] [-runs N] [-idle N] [-port-base P] [-only WORDS]
//
// The CPU figure is the proxy process's user plus system time from
// /proc/PID/stat across the transfer, so the client and the sink (this
// program) are not counted. Every transfer is checked: the receiving side's
// count of bytes must equal -size.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	galeBin := flag.String("gale", "", "gale binary (default: build ./cmd/gale)")
	haproxyBin := flag.String("haproxy", "haproxy", "haproxy binary; empty skips HAProxy")
	size := flag.Int64("size", 1<<30, "bytes per transfer")
	runs := flag.Int("runs", 3, "transfers per proxy configuration")
	idle := flag.Int("idle", 2000, "idle relayed connections for the memory figure; 0 skips it")
	base := flag.Int("port-base", 20320, "first of the two loopback ports used (sink, proxy)")
	workers := flag.Int("workers", 2, "gale loops = HAProxy threads")
	only := flag.String("only", "", "measure only the configurations whose name contains one of these comma-separated words (\"io_uring,copy\"); empty runs all")
	flag.Parse()
	if err := run(*galeBin, *haproxyBin, *size, *runs, *idle, *base, *workers, *only); err != nil {
		fmt.Fprintln(os.Stderr, "l4bulk:", err)
		os.Exit(1)
	}
}

// proxyConf is one proxy configuration to measure.
type proxyConf struct {
	name string
	cmd  func(dir, listen, sink string) (*exec.Cmd, error)
}

func run(galeBin, haproxyBin string, size int64, runs, idle, base, workers int, only string) error {
	dir, err := os.MkdirTemp("", "l4bulk")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if galeBin == "" {
		galeBin = filepath.Join(dir, "gale")
		if out, err := exec.Command("go", "build", "-o", galeBin, "./cmd/gale").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/gale: %v\n%s", err, out)
		}
	}
	sinkAddr := fmt.Sprintf("127.0.0.1:%d", base)
	listen := fmt.Sprintf("127.0.0.1:%d", base+1)
	stop, err := startSink(sinkAddr)
	if err != nil {
		return err
	}
	defer stop()
	gale := func(spliceAfter string, eng ...string) func(dir, listen, sink string) (*exec.Cmd, error) {
		return func(dir, listen, sink string) (*exec.Cmd, error) {
			cfg := fmt.Sprintf("engine: %s\nworkers: %d\ntcp:\n  - listen: [%q]\n    upstreams: [%q]\n    splice_after: %s\n", append(eng, "epoll")[0], workers, listen, sink, spliceAfter)
			f := filepath.Join(dir, "gale.yaml")
			if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
				return nil, err
			}
			return exec.Command(galeBin, "serve", "-c", f), nil
		}
	}
	haproxy := func(opts string) func(dir, listen, sink string) (*exec.Cmd, error) {
		return func(dir, listen, sink string) (*exec.Cmd, error) {
			cfg := fmt.Sprintf("global\n    nbthread %d\n    maxconn 4000\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 300s\n    timeout server 300s\n%slisten l4\n    bind %s\n    server s %s\n", workers, opts, listen, sink)
			f := filepath.Join(dir, "haproxy.cfg")
			if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
				return nil, err
			}
			return exec.Command(haproxyBin, "-db", "-f", f), nil
		}
	}
	confs := []proxyConf{
		{"gale splice (splice_after 256KiB, the default)", gale("256KiB")},
		{"gale copy (splice_after 0)", gale("0")},
		{"gale io_uring splice (splice_after 256KiB)", gale("256KiB", "io_uring")},
		{"gale io_uring copy (splice_after 0)", gale("0", "io_uring")},
	}
	if haproxyBin != "" {
		confs = append(confs,
			proxyConf{"HAProxy mode tcp (default: copies)", haproxy("")},
			proxyConf{"HAProxy mode tcp, option splice-request + splice-response", haproxy("    option splice-request\n    option splice-response\n")})
	}
	confs = selected(confs, only)
	fmt.Printf("l4bulk: %d bytes each way x %d runs, %d idle pairs, %d workers, %d CPUs, load %s\n\n", size, runs, idle, workers, runtime.NumCPU(), loadAvg())
	fmt.Println("| proxy | client→server CPU s per GiB min / median / max | MB/s median | server→client CPU s per GiB min / median / max | MB/s median | idle RSS per pair |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, c := range confs {
		if err := measure(c, dir, listen, sinkAddr, size, runs, idle); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	fmt.Printf("\nload after: %s\n", loadAvg())
	return nil
}

// selected keeps the configurations whose name contains one of the
// comma-separated words of only (all of them when only is empty).
func selected(confs []proxyConf, only string) []proxyConf {
	if only == "" {
		return confs
	}
	var keep []proxyConf
	for _, c := range confs {
		for w := range strings.SplitSeq(only, ",") {
			if w != "" && strings.Contains(c.name, w) {
				keep = append(keep, c)
				break
			}
		}
	}
	return keep
}

// measure starts one proxy, runs the transfers and the idle test, and prints its row.
func measure(c proxyConf, dir, listen, sink string, size int64, runs, idle int) error {
	cmd, err := c.cmd(dir, listen, sink)
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := waitListen(listen); err != nil {
		return fmt.Errorf("%w\n%s", err, stderr.String())
	}
	pid := cmd.Process.Pid
	var cpu, rate [2][]float64 // [0] client to sink, [1] sink to client
	for range runs {
		for d, down := range []bool{false, true} {
			before, err := procCPU(pid)
			if err != nil {
				return err
			}
			start := time.Now()
			if err := transfer(listen, size, down); err != nil {
				return err
			}
			wall := time.Since(start)
			after, err := procCPU(pid)
			if err != nil {
				return err
			}
			cpu[d] = append(cpu[d], (after-before).Seconds()/(float64(size)/(1<<30)))
			rate[d] = append(rate[d], float64(size)/1e6/wall.Seconds())
		}
	}
	mem := "—"
	if idle > 0 {
		per, err := idleMemory(pid, listen, idle)
		if err != nil {
			return err
		}
		mem = fmt.Sprintf("%.1f KiB", per/1024)
	}
	row := "| " + c.name
	for d := range cpu {
		slices.Sort(cpu[d])
		slices.Sort(rate[d])
		n := len(cpu[d])
		row += fmt.Sprintf(" | %.2f / %.2f / %.2f s | %.0f", cpu[d][0], cpu[d][n/2], cpu[d][n-1], rate[d][n/2])
	}
	fmt.Printf("%s | %s |\n", row, mem)
	return nil
}

// startSink serves the sink: each connection gets one byte at once (so a
// client knows it reaches the sink), then a mode byte tells what follows. 'u'
// (upload): everything the client sends is counted, and at its end of stream
// the count goes back as 8 bytes. 'd' (download): the client sends a size as 8
// bytes, and the sink sends that many bytes and closes.
func startSink(addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := c.Write([]byte{'k'}); err != nil {
					return
				}
				var mode [9]byte
				if _, err := io.ReadFull(c, mode[:1]); err != nil {
					return
				}
				switch mode[0] {
				case 'u':
					n, _ := io.Copy(io.Discard, c)
					c.Write(binary.BigEndian.AppendUint64(nil, uint64(n)))
				case 'd':
					if _, err := io.ReadFull(c, mode[1:]); err != nil {
						return
					}
					sendBytes(c, int64(binary.BigEndian.Uint64(mode[1:])))
				}
			}()
		}
	}()
	return func() { ln.Close() }, nil
}

// sendBytes writes size bytes of a fixed pattern to c.
func sendBytes(c net.Conn, size int64) error {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for sent := int64(0); sent < size; {
		n, err := c.Write(buf[:min(int64(len(buf)), size-sent)])
		sent += int64(n)
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", sent, err)
		}
	}
	return nil
}

// transfer moves size bytes through the proxy, from the client to the sink or
// (down) from the sink to the client, and checks that all arrived.
func transfer(addr string, size int64, down bool) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Minute))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return fmt.Errorf("sink greeting: %w", err)
	}
	if down {
		if _, err := c.Write(binary.BigEndian.AppendUint64([]byte{'d'}, uint64(size))); err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", n, err)
		}
		if n != size {
			return fmt.Errorf("the client received %d bytes, want %d", n, size)
		}
		return nil
	}
	if _, err := c.Write([]byte{'u'}); err != nil {
		return err
	}
	if err := sendBytes(c, size); err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	var got [8]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return fmt.Errorf("sink count: %w", err)
	}
	if n := int64(binary.BigEndian.Uint64(got[:])); n != size {
		return fmt.Errorf("the sink received %d bytes, want %d", n, size)
	}
	return nil
}

// idleMemory opens n relayed connections, each confirmed by the sink's byte,
// and returns the proxy's resident memory growth per connection pair.
func idleMemory(pid int, addr string, n int) (float64, error) {
	settle := func() (int64, error) {
		time.Sleep(time.Second)
		return procRSS(pid)
	}
	before, err := settle()
	if err != nil {
		return 0, err
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			return 0, fmt.Errorf("idle connection %d: %w", len(conns), err)
		}
	}
	after, err := settle()
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n), nil
}

// waitListen waits up to 10 s for addr to accept connections.
func waitListen(addr string) error {
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			// Read the sink's byte through the relay, so the proxy is relaying.
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = io.ReadFull(c, make([]byte, 1))
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not relaying: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procCPU returns a process's user plus system time, all threads (/proc/PID/stat).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat format")
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// procRSS returns a process's resident set size in bytes (/proc/PID/status VmRSS).
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
