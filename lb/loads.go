package lb

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Loads counts the requests in flight to each server: a total per server that
// every loop (and, in a shared segment, every process) adds to atomically, and
// a row per process that records the process's own share, so that a process
// that replaces one that died can take the dead one's share back out of the
// totals (its requests died with it).
//
// Layout (LoadsSize): n total cells, then one owner cell per row (the pid
// that attached to it last), then one row of n cells per process; each cell
// is an 8-byte atomic int64. The totals are packed rather than one per cache
// line: least_conn reads every one on each pick, and 1,000 servers then span
// 125 lines instead of 1,000 (the price is that loops counting neighbouring
// servers share lines). Only the processes attached to row w write row w;
// every process writes the totals.
type Loads struct {
	total []atomic.Int64 // per server, shared by every loop and process
	row   []atomic.Int64 // this process's share, per server
	n     int
}

// LoadsSize returns the bytes of a load table for n servers and rows processes.
func LoadsSize(n, rows int) int { return (n + rows + rows*n) * 8 }

// NewLoads returns a private table for n servers (one process).
func NewLoads(n int) *Loads {
	return &Loads{total: make([]atomic.Int64, n), row: make([]atomic.Int64, n), n: n}
}

// LoadsOn attaches process pid to row of a table for n servers laid out in
// mem (at least LoadsSize(n, rows) bytes, 8-byte aligned, zero when first
// created, typically a MAP_SHARED mapping). When the process that attached to
// the row before is gone (alive reports false: a worker that crashed), what
// the row holds is its share of requests that died with it: it is subtracted
// from the totals and the row is cleared. When that process still runs (the
// old worker of a binary upgrade, draining), the two share the row, whose
// cells are atomic, and nothing is taken out.
func LoadsOn(mem []byte, n, rows, row, pid int, alive func(pid int) bool) (*Loads, error) {
	if n < 1 || row < 0 || row >= rows || len(mem) < LoadsSize(n, rows) {
		return nil, fmt.Errorf("lb: load table of %d bytes cannot hold %d servers × %d rows (row %d)", len(mem), n, rows, row)
	}
	if uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		return nil, fmt.Errorf("lb: load table memory is not 8-byte aligned")
	}
	cells := unsafe.Slice((*atomic.Int64)(unsafe.Pointer(&mem[0])), LoadsSize(n, rows)/8)
	l := &Loads{n: n, total: cells[:n]}
	owner := &cells[n+row]
	base := n + rows + row*n
	l.row = cells[base : base+n]
	prev := owner.Swap(int64(pid))
	if prev != 0 && prev != int64(pid) && alive != nil && alive(int(prev)) {
		return l, nil
	}
	for i := range n {
		if v := l.row[i].Swap(0); v != 0 {
			l.total[i].Add(-v)
		}
	}
	return l, nil
}

// Len returns the number of servers.
func (l *Loads) Len() int { return l.n }

// Get returns the requests in flight to server i, from every process.
func (l *Loads) Get(i int) int64 { return max(l.total[i].Load(), 0) }

// Inc counts a request started on server i.
func (l *Loads) Inc(i int) {
	l.total[i].Add(1)
	l.row[i].Add(1)
}

// Dec counts a request to server i ended.
func (l *Loads) Dec(i int) {
	l.total[i].Add(-1)
	l.row[i].Add(-1)
}
