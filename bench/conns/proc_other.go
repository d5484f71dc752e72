//go:build !linux

package main

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// errLinuxOnly is returned on systems without /proc: conns measures Linux servers only.
var errLinuxOnly = errors.New("conns measures servers through /proc and runs on Linux only")

func bindNoPort(_, _ string, _ syscall.RawConn) error              { return nil }
func fileLimit() (soft, hard uint64, err error)                    { return 0, 0, errLinuxOnly }
func raiseFileLimit(need uint64) error                             { return errLinuxOnly }
func treeRSS(roots []int) (int64, int, error)                      { return 0, 0, errLinuxOnly }
func treeRSSInto(roots []int, _ map[int]int64) (int64, int, error) { return 0, 0, errLinuxOnly }
func serverRoots(pid, port int) ([]int, error)                     { return nil, errLinuxOnly }
func tcpMemPages() (int64, error)                                  { return 0, errLinuxOnly }
func tcpOrphans() (int64, error)                                   { return 0, errLinuxOnly }
func treeCPU(roots []int) (time.Duration, error)                   { return 0, errLinuxOnly }

func slabBytes() (int64, int64, error)       { return 0, 0, errLinuxOnly }
func slabCaches() (map[string]int64, error)  { return nil, errLinuxOnly }
func netCounters() (map[string]int64, error) { return nil, errLinuxOnly }
func sockstatTCPAll() string                 { return errLinuxOnly.Error() }

var watchedCounters []string

// stillIdle reports whether c is open with nothing to read, by a read that must time out
// (pings count as not idle here, whatever ws says).
func stillIdle(c net.Conn, _ bool) bool {
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
