//go:build unix

package metrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A table file holds one process's samples in shared memory. Its layout is
// fixed once the file is visible: a 64-byte header, the keys as one
// newline-separated blob padded to 8 bytes, then one 64-bit value per key.
// The owner stores the values with atomic stores; any process maps the file
// read-only and loads them. When the set of keys changes (a reload adds a
// route) the owner writes a new file under a temporary name and renames it
// over the old one, so a reader always sees a complete layout.
const (
	tableMagic   = "galemtab"
	tableVersion = 1
	tableHeader  = 64
	maxTableSize = 64 << 20
)

// Table is the file one process publishes its samples to. Its methods are
// called by one goroutine (the publisher).
type Table struct {
	path string
	pid  int
	base map[string]uint64 // cumulative values left by earlier owners of the path
	keys []string          // layout of the current mapping
	idx  map[string]int    // key -> index in keys
	mem  []byte            // current mapping; nil before the first Publish
	voff int               // offset of the values in mem (after the key blob)

	scratch []uint64 // values by layout index, reused by publishSameLayout
	seen    []bool   // which layout keys this publish has
}

// TablePath returns the table path of stats slot slot of the segment at
// statsPath.
func TablePath(statsPath string, slot int) string {
	return fmt.Sprintf("%s.m%d", statsPath, slot)
}

// RemoveTables deletes every table file of the segment at statsPath.
func RemoveTables(statsPath string) {
	files, _ := filepath.Glob(statsPath + ".m*")
	for _, f := range files {
		os.Remove(f)
	}
}

// OpenTable prepares publishing to path as process pid. Cumulative values
// already in a file there (a worker restarted into the same slot, or the
// process a binary upgrade replaced) become the table's base, added to
// every value published, so that the instance's counters never go back.
func OpenTable(path string, pid int) *Table {
	t := &Table{path: path, pid: pid, base: map[string]uint64{}}
	if r, err := readTable(path); err == nil {
		for i, k := range r.keys {
			if !isGauge(k) {
				t.base[k] = r.values[i]
			}
		}
	}
	return t
}

// Publish stores base+samples in the file, writing a new layout first when
// the keys differ from the current one.
func (t *Table) Publish(samples []Sample) error {
	if t.publishSameLayout(samples) {
		return nil
	}
	vals := make(map[string]uint64, len(samples)+len(t.base))
	for k, v := range t.base {
		vals[k] = v
	}
	for _, s := range samples {
		vals[s.Key] += s.Value
	}
	if !t.sameLayout(vals) {
		if err := t.relayout(vals); err != nil {
			return err
		}
	}
	for k, v := range vals {
		t.slot(t.idx[k]).Store(v)
	}
	return nil
}

// publishSameLayout stores base+samples without building a map when the
// mapping already has exactly their keys (every publish between reloads),
// and reports whether it did; otherwise nothing is stored.
func (t *Table) publishSameLayout(samples []Sample) bool {
	if t.mem == nil {
		return false
	}
	n := len(t.keys)
	if cap(t.scratch) < n {
		t.scratch, t.seen = make([]uint64, n), make([]bool, n)
	}
	vals, seen := t.scratch[:n], t.seen[:n]
	clear(vals)
	clear(seen)
	for k, v := range t.base {
		i, ok := t.idx[k]
		if !ok {
			return false
		}
		vals[i], seen[i] = v, true
	}
	for _, s := range samples {
		i, ok := t.idx[s.Key]
		if !ok {
			return false
		}
		vals[i] += s.Value
		seen[i] = true
	}
	for _, ok := range seen {
		if !ok {
			return false // a key of the layout is gone: the layout shrinks
		}
	}
	for i, v := range vals {
		t.slot(i).Store(v)
	}
	return true
}

// sameLayout reports whether the mapping has exactly the keys of vals.
func (t *Table) sameLayout(vals map[string]uint64) bool {
	if t.mem == nil || len(vals) != len(t.keys) {
		return false
	}
	for k := range vals {
		if _, ok := t.idx[k]; !ok {
			return false
		}
	}
	return true
}

func (t *Table) slot(i int) *atomic.Uint64 {
	off := t.voff + 8*i
	return (*atomic.Uint64)(unsafe.Pointer(&t.mem[off]))
}

// valuesOffset returns where the values start in a table of keys: after the
// header and the newline-joined key blob, rounded up to 8 bytes.
func valuesOffset(keys []string) int {
	n := max(len(keys)-1, 0) // the newlines
	for _, k := range keys {
		n += len(k)
	}
	return tableHeader + (n+7)&^7
}

// relayout writes a new file with the keys of vals and maps it.
func (t *Table) relayout(vals map[string]uint64) error {
	keys := Totals(vals).Keys()
	blob := strings.Join(keys, "\n")
	size := valuesOffset(keys) + 8*len(keys)
	if size > maxTableSize {
		return fmt.Errorf("metrics: table of %d series is too large", len(keys))
	}
	f, err := os.CreateTemp(filepath.Dir(t.path), ".gale-mtab-*")
	if err != nil {
		return err
	}
	defer f.Close()
	tmp := f.Name()
	if err = f.Truncate(int64(size)); err == nil {
		err = f.Chmod(0o644)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		os.Remove(tmp)
		return os.NewSyscallError("mmap", err)
	}
	copy(mem, tableMagic)
	binary.LittleEndian.PutUint32(mem[8:], tableVersion)
	binary.LittleEndian.PutUint32(mem[12:], uint32(len(keys)))
	binary.LittleEndian.PutUint32(mem[16:], uint32(len(blob)))
	binary.LittleEndian.PutUint64(mem[24:], uint64(t.pid))
	copy(mem[tableHeader:], blob)
	if err := os.Rename(tmp, t.path); err != nil {
		unix.Munmap(mem)
		os.Remove(tmp)
		return err
	}
	t.Close()
	t.mem, t.keys, t.voff = mem, keys, valuesOffset(keys)
	t.idx = make(map[string]int, len(keys))
	for i, k := range keys {
		t.idx[k] = i
	}
	return nil
}

// Path returns the file the table publishes to.
func (t *Table) Path() string { return t.path }

// Close unmaps the table; the file stays, holding the history.
func (t *Table) Close() {
	if t.mem != nil {
		unix.Munmap(t.mem)
		t.mem = nil
	}
}

// tableRead is one table file as read.
type tableRead struct {
	pid    int
	keys   []string
	values []uint64
}

var errTableFormat = errors.New("metrics: not a gale metrics table")

// layoutCache keeps the keys of the table files read last, by path. A
// table's layout never changes once its file is visible (a new layout is a
// new file renamed over the old one), so the same inode and size mean the
// same keys, and a scrape need not split the key blob again.
var layoutCache struct {
	sync.Mutex
	byPath map[string]cachedLayout
}

type cachedLayout struct {
	dev, ino uint64
	size     int
	keys     []string
}

// cachedKeys returns the keys of the file identified by st and size, parsing
// blob (the key blob of its mapping) when it is not cached.
func cachedKeys(path string, st *unix.Stat_t, size int, blob []byte) []string {
	layoutCache.Lock()
	defer layoutCache.Unlock()
	if c, ok := layoutCache.byPath[path]; ok && c.dev == uint64(st.Dev) && c.ino == st.Ino && c.size == size {
		return c.keys
	}
	keys := strings.Split(string(blob), "\n")
	if layoutCache.byPath == nil || len(layoutCache.byPath) > 1024 {
		layoutCache.byPath = map[string]cachedLayout{}
	}
	layoutCache.byPath[path] = cachedLayout{dev: uint64(st.Dev), ino: st.Ino, size: size, keys: keys}
	return keys
}

// readTable maps path read-only and copies its keys and values.
func readTable(path string) (tableRead, error) {
	f, err := os.Open(path)
	if err != nil {
		return tableRead{}, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return tableRead{}, os.NewSyscallError("fstat", err)
	}
	size := int(st.Size)
	if size < tableHeader || size > maxTableSize {
		return tableRead{}, errTableFormat
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return tableRead{}, os.NewSyscallError("mmap", err)
	}
	defer unix.Munmap(mem)
	n := int(binary.LittleEndian.Uint32(mem[12:]))
	blobLen := int(binary.LittleEndian.Uint32(mem[16:]))
	if string(mem[:8]) != tableMagic || binary.LittleEndian.Uint32(mem[8:]) != tableVersion ||
		tableHeader+blobLen > size {
		return tableRead{}, errTableFormat
	}
	r := tableRead{pid: int(binary.LittleEndian.Uint64(mem[24:]))}
	if n > 0 {
		r.keys = cachedKeys(path, &st, size, mem[tableHeader:tableHeader+blobLen])
	}
	off := tableHeader + (blobLen+7)&^7
	if len(r.keys) != n || off+8*n != size {
		return tableRead{}, errTableFormat
	}
	r.values = make([]uint64, n)
	for i := range r.values {
		r.values[i] = (*atomic.Uint64)(unsafe.Pointer(&mem[off+8*i])).Load()
	}
	return r, nil
}

// ReadOthers adds the tables of the segment at statsPath, except the one at
// own, into t: cumulative series from every table, gauges only from tables
// whose process is alive. It returns the number of live processes read.
func ReadOthers(statsPath, own string, t Totals) int {
	files, _ := filepath.Glob(statsPath + ".m*")
	live := 0
	for _, f := range files {
		if f == own {
			continue
		}
		r, err := readTable(f)
		if err != nil {
			continue
		}
		alive := r.pid > 0 && processAlive(r.pid)
		if alive {
			live++
		}
		for i, k := range r.keys {
			if alive || !isGauge(k) {
				t[k] += r.values[i]
			}
		}
	}
	return live
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
