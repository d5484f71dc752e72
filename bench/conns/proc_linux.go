package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT so that binding to a source address leaves the
// port choice to connect(2), which may then reuse a port towards different destinations.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt IP_BIND_ADDRESS_NO_PORT", serr)
}

// stillIdle reports whether c is open with nothing to read: a non-blocking peek that finds
// no byte (EAGAIN). End of stream, a reset or a byte the server sent unasked all mean the
// connection did not stay as it was left; with ws, except WebSocket pings (a server's
// keep-alive, which a held connection does not answer): a peek that finds only whole ping
// frames counts as idle.
func stillIdle(c net.Conn, ws bool) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	idle := false
	err = rc.Control(func(fd uintptr) {
		var b [256]byte
		n, _, rerr := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		idle = rerr == unix.EAGAIN || (rerr == nil && ws && onlyPings(b[:n]))
	})
	return err == nil && idle
}

// onlyPings reports whether p is one or more whole unmasked WebSocket ping frames.
func onlyPings(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	for len(p) > 0 {
		if len(p) < 2 || p[0] != 0x89 || p[1] > 125 || len(p) < 2+int(p[1]) {
			return false
		}
		p = p[2+int(p[1]):]
	}
	return true
}

// fileLimit returns the soft and hard RLIMIT_NOFILE.
func fileLimit() (soft, hard uint64, err error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, os.NewSyscallError("getrlimit", err)
	}
	return r.Cur, r.Max, nil
}

// raiseFileLimit lifts the soft open-file limit to the hard one and fails if that is still
// below need.
func raiseFileLimit(need uint64) error {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return os.NewSyscallError("getrlimit", err)
	}
	if r.Max < need {
		return fmt.Errorf("open-file limit %d is below the %d this process needs", r.Max, need)
	}
	r.Cur = r.Max
	return os.NewSyscallError("setrlimit", unix.Setrlimit(unix.RLIMIT_NOFILE, &r))
}

// parents maps every PID on the system to its parent PID.
func parents() map[int]int {
	m := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		// The command name may hold spaces and parentheses: fields resume after the last ')'.
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		pid, err1 := strconv.Atoi(filepath.Base(d))
		if len(f) < 2 || err1 != nil {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			m[pid] = ppid
		}
	}
	return m
}

// tree returns roots and all their descendants.
func tree(roots []int) map[int]bool {
	pp := parents()
	in := map[int]bool{}
	for _, r := range roots {
		in[r] = true
	}
	for grew := true; grew; {
		grew = false
		for pid, ppid := range pp {
			if !in[pid] && in[ppid] {
				in[pid], grew = true, true
			}
		}
	}
	return in
}

// treeCPU returns the CPU time (user and system) that roots and their descendants have
// used so far, from /proc/PID/stat, counting the processes alive now.
func treeCPU(roots []int) (time.Duration, error) {
	var ticks int64
	n := 0
	for pid := range tree(roots) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // exited meanwhile
		}
		// Fields resume after the command name's last ')': state is field 3, utime 14, stime 15.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, err1 := strconv.ParseInt(f[11], 10, 64)
		s, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		ticks += u + s
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("server processes %v are gone", roots)
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on Linux).
const userHZ = 100

// treeRSS returns the summed VmRSS in bytes of roots and all their descendants, and how many
// processes that was.
func treeRSS(roots []int) (int64, int, error) { return treeRSSInto(roots, nil) }

// treeRSSInto is treeRSS that also stores each process's RSS in byPID (when not nil).
func treeRSSInto(roots []int, byPID map[int]int64) (int64, int, error) {
	var sum int64
	n := 0
	for pid := range tree(roots) {
		kb, err := vmRSS(pid)
		if err != nil {
			continue // exited meanwhile
		}
		sum += kb << 10
		n++
		if byPID != nil {
			byPID[pid] = kb << 10
		}
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("server processes %v are gone", roots)
	}
	return sum, n, nil
}

func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// serverRoots returns the PIDs whose trees are the server: pid itself, or else the
// processes holding a listening socket on port that are not children of another such
// process (an nginx master, not its workers; every process of a SO_REUSEPORT server).
func serverRoots(pid, port int) ([]int, error) {
	if pid != 0 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return nil, fmt.Errorf("no process %d", pid)
		}
		return []int{pid}, nil
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := listeningInodes(f, port, inodes); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	if len(inodes) == 0 {
		return nil, fmt.Errorf("nothing listens on port %d", port)
	}
	owners := map[int]bool{}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		target, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(target, "socket:[") {
			continue
		}
		if inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] {
			p, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			owners[p] = true
		}
	}
	if len(owners) == 0 {
		return nil, fmt.Errorf("no visible process owns the socket listening on port %d (run as root or pass -pid)", port)
	}
	pp := parents()
	var roots []int
	for p := range owners {
		ancestorOwns := false
		for a := pp[p]; a > 1; a = pp[a] {
			if owners[a] {
				ancestorOwns = true
				break
			}
		}
		if !ancestorOwns {
			roots = append(roots, p)
		}
	}
	return roots, nil
}

// listeningInodes adds to inodes the socket inodes of file's LISTEN entries on port.
func listeningInodes(file string, port int, inodes map[string]bool) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan() // header
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) < 10 || fs[3] != "0A" {
			continue
		}
		i := strings.LastIndexByte(fs[1], ':')
		p, err := strconv.ParseInt(fs[1][i+1:], 16, 32)
		if err == nil && int(p) == port {
			inodes[fs[9]] = true
		}
	}
	return s.Err()
}

// tcpMemPages returns the "mem" figure of the TCP line of /proc/net/sockstat: pages of
// memory the kernel has allocated to TCP socket buffers, system-wide.
func tcpMemPages() (int64, error) { return sockstatTCP("mem") }

// tcpOrphans returns the "orphan" figure of the TCP line of /proc/net/sockstat: closed
// sockets the kernel is still finishing, whose buffers it still counts.
func tcpOrphans() (int64, error) { return sockstatTCP("orphan") }

func sockstatTCP(field string) (int64, error) {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "TCP:") {
			continue
		}
		f := strings.Fields(line)
		for i := 1; i+1 < len(f); i += 2 {
			if f[i] == field {
				return strconv.ParseInt(f[i+1], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no TCP %s in /proc/net/sockstat", field)
}

// slabBytes returns the Slab and SUnreclaim figures of /proc/meminfo in bytes: the
// kernel's object caches (socket, inode, dentry, file and epoll objects among them),
// system-wide.
func slabBytes() (slab, unreclaim int64, err error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "Slab" && name != "SUnreclaim") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/meminfo %s: %w", name, err)
		}
		if name == "Slab" {
			slab = kb << 10
		} else {
			unreclaim = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("no Slab and SUnreclaim in /proc/meminfo")
	}
	return slab, unreclaim, nil
}

// watchedCounters are the kernel's counters (/proc/net/snmp, /proc/net/netstat and
// /proc/net/softnet_stat) that say which queue or limit gave way: a full accept queue,
// dropped SYNs, SYN cookies (a full SYN queue), memory pressure (and too many orphans, also
// counted as TCPAbortOnMemory), resets, failed connection attempts, and packets dropped
// because a CPU's input backlog (net.core.netdev_max_backlog) was full, which on loopback
// is every packet of every connection.
var watchedCounters = []string{
	"TcpExt.ListenOverflows", "TcpExt.ListenDrops", "TcpExt.SyncookiesSent",
	"TcpExt.TCPReqQFullDoCookies", "TcpExt.TCPBacklogDrop", "TcpExt.TCPMemoryPressures",
	"TcpExt.TCPAbortOnMemory", "TcpExt.TCPTimeouts", "TcpExt.TCPReqQFullDrop",
	"Tcp.AttemptFails", "Tcp.EstabResets", "Tcp.RetransSegs",
	"Softnet.Dropped", "Softnet.TimeSqueeze",
}

// netCounters returns every counter of /proc/net/snmp and /proc/net/netstat, named
// "Section.Field" (such as "TcpExt.ListenOverflows"), and the input-backlog counters of
// /proc/net/softnet_stat summed over CPUs ("Softnet.Dropped", "Softnet.TimeSqueeze").
func netCounters() (map[string]int64, error) {
	m := map[string]int64{}
	if err := softnetCounters(m); err != nil {
		return nil, err
	}
	for _, f := range []string{"/proc/net/snmp", "/proc/net/netstat"} {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		lines := strings.Split(string(b), "\n")
		// Each section is a line of names followed by a line of values, both prefixed "Name:".
		for i := 0; i+1 < len(lines); i += 2 {
			names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(names) != len(values) || len(names) < 2 || names[0] != values[0] {
				break
			}
			sec := strings.TrimSuffix(names[0], ":")
			for j := 1; j < len(names); j++ {
				if v, err := strconv.ParseInt(values[j], 10, 64); err == nil {
					m[sec+"."+names[j]] = v
				}
			}
		}
	}
	return m, nil
}

// sockstatTCPAll returns the TCP line of /proc/net/sockstat as "field=value ..." (inuse,
// orphan, tw, alloc, mem), for the report.
func sockstatTCPAll() string {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "TCP: "); ok {
			return rest
		}
	}
	return "no TCP line"
}
