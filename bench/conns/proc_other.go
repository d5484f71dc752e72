//go:build !linux

package main

import (
	"errors"
	"syscall"
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
