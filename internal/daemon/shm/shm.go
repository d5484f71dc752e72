// Package shm keeps gale's per-worker counters in a shared-memory segment: a
// file (in /dev/shm when it exists) mapped MAP_SHARED by every worker process
// and by whoever reads the totals. The segment holds a 64-byte header and a
// fixed number of 64-byte slots, one cache line each, so that two workers
// never write the same line. Each slot has one writer (the worker that owns
// it) and any number of readers; every field is a 64-bit atomic, so readers
// add the slots up without locks.
//
// Cumulative counters survive the worker that wrote them: a worker that
// takes over a slot (a restarted child) continues from the slot's values, and
// a slot released by a worker that exited keeps its history, which Sum still
// counts. Only the Active gauge is reset when a slot changes hands.
package shm

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"
)

// Layout of the segment. Version changes whenever the layout does.
const (
	SlotSize     = 64  // bytes per slot: one cache line
	headerSize   = 64  // bytes before slot 0
	DefaultSlots = 256 // slots a new segment gets unless told otherwise
	version      = 1
	magic        = "galestat"
)

// Errors returned when opening a segment.
var (
	// ErrFormat means the file is not a gale stats segment of this version.
	ErrFormat = errors.New("shm: not a gale stats segment (or another version)")
	// ErrFull means every slot is owned by a running worker.
	ErrFull = errors.New("shm: no free slot")
)

// header is the first 64 bytes of a segment. magic, version and slots are
// written once by Create before the file is visible; holder is atomic.
type header struct {
	magic   [8]byte
	version uint32
	slots   uint32
	holder  atomic.Uint64 // pid of the process that supervises the workers
	created atomic.Int64  // unix nanoseconds, set by Create
	_       [32]byte
}

// Slot is one worker's counters: 64 bytes in the shared mapping. Only the
// worker recorded in the owner word writes the counters; any process reads
// them.
type Slot struct {
	owner    atomic.Uint64 // pid in the low 32 bits, worker index+1 in the high 32; 0 when free
	accepted atomic.Uint64
	active   atomic.Uint64
	requests atomic.Uint64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	errors   atomic.Uint64
	updated  atomic.Int64 // unix nanoseconds of the last Store
}

// The layout is shared between processes; these break the build if a field is
// added without adjusting it.
var (
	_ [SlotSize - unsafe.Sizeof(Slot{})]byte
	_ [unsafe.Sizeof(Slot{}) - SlotSize]byte
	_ [headerSize - unsafe.Sizeof(header{})]byte
	_ [unsafe.Sizeof(header{}) - headerSize]byte
)

// Counters are one worker's numbers, or a sum of them.
type Counters struct {
	Accepted uint64 // connections accepted
	Active   uint64 // connections open now (a gauge, not cumulative)
	Requests uint64 // requests whose head was parsed
	BytesIn  uint64 // bytes read from client sockets
	BytesOut uint64 // bytes written to client sockets
	Errors   uint64 // requests refused by the protocol layer (4xx/5xx before any handler)
}

// Add returns the field-by-field sum of c and o.
func (c Counters) Add(o Counters) Counters {
	return Counters{
		Accepted: c.Accepted + o.Accepted, Active: c.Active + o.Active, Requests: c.Requests + o.Requests,
		BytesIn: c.BytesIn + o.BytesIn, BytesOut: c.BytesOut + o.BytesOut, Errors: c.Errors + o.Errors,
	}
}

func packOwner(pid, worker int) uint64 { return uint64(uint32(pid)) | uint64(uint32(worker+1))<<32 }

// Owner returns the pid and worker index recorded in the slot; ok is false
// for a free slot.
func (s *Slot) Owner() (pid, worker int, ok bool) {
	v := s.owner.Load()
	if v == 0 {
		return 0, 0, false
	}
	return int(uint32(v)), int(v>>32) - 1, true
}

// SetOwner records the process now writing the slot. A worker calls it with
// its own pid when it starts, a supervisor with its pid while the worker is
// being restarted. The Active gauge is reset: the previous owner's open
// connections are gone.
func (s *Slot) SetOwner(pid, worker int) {
	s.owner.Store(packOwner(pid, worker))
	s.active.Store(0)
}

// Release frees the slot for another worker; its cumulative counters stay
// and keep counting in Sum.
func (s *Slot) Release() {
	s.active.Store(0)
	s.owner.Store(0)
}

// Store publishes c as the slot's current values, stamped with now.
func (s *Slot) Store(c Counters, now time.Time) {
	s.accepted.Store(c.Accepted)
	s.active.Store(c.Active)
	s.requests.Store(c.Requests)
	s.bytesIn.Store(c.BytesIn)
	s.bytesOut.Store(c.BytesOut)
	s.errors.Store(c.Errors)
	s.updated.Store(now.UnixNano())
}

// Load reads the slot's values. Each field is read atomically; the set is not
// a single snapshot, which counters that only grow do not need.
func (s *Slot) Load() Counters {
	return Counters{
		Accepted: s.accepted.Load(), Active: s.active.Load(), Requests: s.requests.Load(),
		BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(), Errors: s.errors.Load(),
	}
}

// Updated returns the time of the last Store, or the zero time if none.
func (s *Slot) Updated() time.Time {
	if n := s.updated.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Segment is an open stats segment. Its methods are safe for concurrent use;
// Close must not race with the others.
type Segment struct {
	path string
	mem  []byte // the whole mapping; nil after Close
	hdr  *header
	n    int    // number of slots
	id   fileID // identity of the file mapped, for Remove
}

// fileID identifies a file independently of its name.
type fileID struct{ dev, ino uint64 }

// Path returns the file the segment was created or opened at.
func (s *Segment) Path() string { return s.path }

// Len returns the number of slots.
func (s *Segment) Len() int { return s.n }

// Slot returns slot i, 0 <= i < Len().
func (s *Segment) Slot(i int) *Slot {
	if i < 0 || i >= s.n {
		panic(fmt.Sprintf("shm: slot %d out of range [0,%d)", i, s.n))
	}
	return (*Slot)(unsafe.Pointer(&s.mem[headerSize+i*SlotSize]))
}

// Holder returns the pid recorded with SetHolder.
func (s *Segment) Holder() int { return int(s.hdr.holder.Load()) }

// SetHolder records the pid of the supervising process (for gale status).
func (s *Segment) SetHolder(pid int) { s.hdr.holder.Store(uint64(pid)) }

// Created returns when the segment was created.
func (s *Segment) Created() time.Time { return time.Unix(0, s.hdr.created.Load()) }

// Reserve claims the first free slot for worker, owned by pid until the
// worker records itself, and returns its index. Two processes reserving at
// once never get the same slot (compare-and-swap on the owner word).
func (s *Segment) Reserve(pid, worker int) (int, error) {
	for i := 0; i < s.n; i++ {
		sl := s.Slot(i)
		if sl.owner.CompareAndSwap(0, packOwner(pid, worker)) {
			sl.active.Store(0)
			return i, nil
		}
	}
	return -1, ErrFull
}

// Row is one slot as read by Rows.
type Row struct {
	Slot    int       // slot index
	PID     int       // owner pid; 0 for a released slot that only holds history
	Worker  int       // owner's worker index
	Live    bool      // the owner process exists
	Updated time.Time // last Store
	Counters
}

// Rows reads every slot that is owned or has ever been written. Active is
// reported as 0 for slots whose owner is gone (a worker killed before it
// could release its slot).
func (s *Segment) Rows() []Row {
	var rows []Row
	for i := 0; i < s.n; i++ {
		sl := s.Slot(i)
		pid, worker, owned := sl.Owner()
		up := sl.Updated()
		if !owned && up.IsZero() {
			continue
		}
		r := Row{Slot: i, Updated: up, Counters: sl.Load()}
		if owned {
			r.PID, r.Worker, r.Live = pid, worker, ProcessAlive(pid)
		}
		if !r.Live {
			r.Active = 0
		}
		rows = append(rows, r)
	}
	return rows
}

// Sum adds rows up.
func Sum(rows []Row) Counters {
	var c Counters
	for _, r := range rows {
		c = c.Add(r.Counters)
	}
	return c
}
