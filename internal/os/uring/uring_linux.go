//go:build linux

package uring

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Operation codes, submission flags and completion flags used by the engine, as the
// kernel's io_uring ABI (include/uapi/linux/io_uring.h) numbers them.
const (
	OpNop         = 0
	OpPollAdd     = 6
	OpSendmsg     = 9
	OpAccept      = 13
	OpAsyncCancel = 14
	OpClose       = 19
	OpRead        = 22
	OpSend        = 26
	OpRecv        = 27
	OpSendZC      = 47

	SqeBufferSelect   = 1 << 5 // pick a buffer from a provided-buffer group
	SqeCQESkipSuccess = 1 << 6 // post no completion when the operation succeeds

	AcceptMultishot = 1 << 0 // ioprio of OpAccept: one completion per accepted socket
	RecvMultishot   = 1 << 1 // ioprio of OpRecv: one completion per arrival
	PollAddMulti    = 1 << 0 // len of OpPollAdd: multishot poll

	CancelAll = 1 << 0 // cancel every match, not the first
	CancelFD  = 1 << 1 // match by descriptor instead of user data

	CqeBuffer       = 1 << 0 // the upper 16 bits of flags hold the buffer id
	CqeMore         = 1 << 1 // a multishot request stays armed
	CqeSockNonempty = 1 << 2
	CqeNotif        = 1 << 3 // a zero-copy send's buffer notification
	CqeBufferShift  = 16

	// SendZCReportUsage (ioprio of OpSendZC) asks the notification to say, with
	// NotifUsageZCCopied in its result, whether the kernel copied the data anyway.
	SendZCReportUsage  = 1 << 3
	NotifUsageZCCopied = 1 << 31
)

// Setup flags, features and enter flags.
const (
	setupCQSize        = 1 << 3
	setupClamp         = 1 << 4
	setupSubmitAll     = 1 << 7
	setupSingleIssuer  = 1 << 12
	setupDeferTaskrun  = 1 << 13
	featSingleMmap     = 1 << 0
	featNoDrop         = 1 << 1
	featFastPoll       = 1 << 5
	featExtArg         = 1 << 8
	enterGetEvents     = 1 << 0
	enterExtArg        = 1 << 3
	offSQRing          = 0
	offCQRing          = 0x8000000
	offSQEs            = 0x10000000
	registerProbe      = 8
	registerPbufRing   = 22
	unregisterPbufRing = 23
	opSupported        = 1
)

// SQE is a submission queue entry (64 bytes). OpFlags is the per-operation flag
// word (msg_flags, poll32_events, accept_flags, cancel_flags); BufGroup selects the
// provided-buffer group with SqeBufferSelect.
type SQE struct {
	Opcode      uint8
	Flags       uint8
	Ioprio      uint16
	Fd          int32
	Off         uint64
	Addr        uint64
	Len         uint32
	OpFlags     uint32
	UserData    uint64
	BufGroup    uint16
	Personality uint16
	SpliceFdIn  int32
	Addr3       uint64
	_           uint64
}

// CQE is a completion queue entry: the request's user data, its result (a count or
// a negated errno) and flags (CqeMore, CqeBuffer with the buffer id above
// CqeBufferShift).
type CQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqOffsets
	cqOff                                                                  cqOffsets
}

type sqOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// getEventsArg is io_uring_getevents_arg, passed with enterExtArg for a timeout.
type getEventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	minWait   uint32
	ts        uint64
}

// Ring is one io_uring instance with its rings mapped. It is not safe for
// concurrent use: one goroutine (the engine's loop, locked to its thread, as the
// single-issuer setup requires) prepares, submits and reaps.
type Ring struct {
	fd        int
	mem       []byte // the shared SQ and CQ ring mapping
	sqeMem    []byte
	sqHead    *uint32
	sqTail    *uint32
	sqMask    uint32
	sqEntries uint32
	sqes      []SQE
	cqHead    *uint32
	cqTail    *uint32
	cqMask    uint32
	cqes      []CQE
	tail      uint32 // local SQ tail: entries prepared
	submitted uint32 // entries handed to the kernel
	features  uint32
	arg       getEventsArg // heap-held for enter's timeout
	ts        unix.Timespec
}

// Flags used for every ring: a single issuer whose completions run only when it
// enters the kernel to wait (DEFER_TASKRUN), submitting all entries even when one
// fails inline.
const ringFlags = setupSingleIssuer | setupDeferTaskrun | setupSubmitAll | setupCQSize | setupClamp

// New sets up a ring with sqEntries submission and cqEntries completion slots. It
// must be called on the thread that will submit (the loop's locked thread).
func New(sqEntries, cqEntries uint32) (*Ring, error) {
	p := params{flags: ringFlags, cqEntries: cqEntries}
	fd, _, e := unix.RawSyscall(unix.SYS_IO_URING_SETUP, uintptr(sqEntries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, os.NewSyscallError("io_uring_setup", e)
	}
	r := &Ring{fd: int(fd), features: p.features}
	if p.features&featSingleMmap == 0 {
		r.Close()
		return nil, errors.New("io_uring: kernel lacks IORING_FEAT_SINGLE_MMAP")
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(CQE{})))
	mem, err := unix.Mmap(r.fd, offSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.Close()
		return nil, os.NewSyscallError("mmap io_uring rings", err)
	}
	r.mem = mem
	sqeMem, err := unix.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(SQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.Close()
		return nil, os.NewSyscallError("mmap io_uring sqes", err)
	}
	r.sqeMem = sqeMem
	at := func(off uint32) unsafe.Pointer { return unsafe.Pointer(&mem[off]) }
	r.sqHead = (*uint32)(at(p.sqOff.head))
	r.sqTail = (*uint32)(at(p.sqOff.tail))
	r.sqMask = *(*uint32)(at(p.sqOff.ringMask))
	r.sqEntries = *(*uint32)(at(p.sqOff.ringEntries))
	r.cqHead = (*uint32)(at(p.cqOff.head))
	r.cqTail = (*uint32)(at(p.cqOff.tail))
	r.cqMask = *(*uint32)(at(p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*CQE)(at(p.cqOff.cqes)), p.cqEntries)
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&sqeMem[0])), p.sqEntries)
	array := unsafe.Slice((*uint32)(at(p.sqOff.array)), p.sqEntries)
	for i := range array {
		array[i] = uint32(i) // identity: entry i of the ring is SQE i
	}
	r.tail = atomic.LoadUint32(r.sqTail)
	r.submitted = r.tail
	return r, nil
}

// Fd returns the ring's descriptor.
func (r *Ring) Fd() int { return r.fd }

// Get returns a zeroed submission entry to fill; it is handed to the kernel by the
// next Submit or Enter. When the submission ring is full it submits what is
// prepared first (one io_uring_enter) to make room.
func (r *Ring) Get() *SQE {
	if r.tail-atomic.LoadUint32(r.sqHead) >= r.sqEntries {
		if err := r.Submit(); err != nil || r.tail-atomic.LoadUint32(r.sqHead) >= r.sqEntries {
			panic(fmt.Sprintf("io_uring: submission ring full (%v)", err))
		}
	}
	s := &r.sqes[r.tail&r.sqMask]
	*s = SQE{}
	r.tail++
	return s
}

// Unsubmitted returns how many prepared entries have not been handed to the kernel.
func (r *Ring) Unsubmitted() int { return int(r.tail - r.submitted) }

// Submit hands the prepared entries to the kernel without waiting.
func (r *Ring) Submit() error {
	_, err := r.enter(0, 0, false)
	return err
}

// Enter submits the prepared entries and waits for completions: msec < 0 waits
// for at least one, 0 does not wait (but still runs the completions the kernel
// deferred to this thread), > 0 waits up to msec milliseconds. It returns
// whether the wait timed out; interruptions and timeouts are not errors.
func (r *Ring) Enter(msec int) (timedOut bool, err error) {
	if r.Ready() > 0 {
		msec = 0 // completions are waiting: only submit
	}
	switch {
	case msec == 0:
		return r.enter(0, enterGetEvents, false)
	case msec < 0:
		return r.enter(1, enterGetEvents, true)
	}
	r.ts = unix.NsecToTimespec(int64(msec) * 1e6)
	r.arg = getEventsArg{ts: uint64(uintptr(unsafe.Pointer(&r.ts)))}
	return r.enter(1, enterGetEvents|enterExtArg, true)
}

func (r *Ring) enter(minComplete uint32, flags uintptr, block bool) (bool, error) {
	atomic.StoreUint32(r.sqTail, r.tail)
	toSubmit := r.tail - r.submitted
	if toSubmit == 0 && flags == 0 {
		return false, nil
	}
	var arg, argSize uintptr
	if flags&enterExtArg != 0 {
		arg, argSize = uintptr(unsafe.Pointer(&r.arg)), unsafe.Sizeof(r.arg)
	}
	var n uintptr
	var e unix.Errno
	if block {
		n, _, e = unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(minComplete), flags, arg, argSize)
	} else {
		n, _, e = unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(minComplete), flags, arg, argSize)
	}
	switch e {
	case 0:
		r.submitted += uint32(n)
		return false, nil
	case unix.ETIME:
		r.submitted = r.tail // a timed-out wait has submitted everything
		return true, nil
	case unix.EINTR, unix.EAGAIN, unix.EBUSY:
		// Interrupted, or the completion ring is overflowing: reap and come back.
		return false, nil
	}
	return false, os.NewSyscallError("io_uring_enter", e)
}

// Ready returns how many completions are waiting to be read.
func (r *Ring) Ready() int { return int(atomic.LoadUint32(r.cqTail) - *r.cqHead) }

// Reap calls f for each waiting completion, in order, and returns how many there
// were. f gets a copy; it may prepare new entries (and so submit) but must not call
// Reap or Enter.
func (r *Ring) Reap(f func(CQE)) int {
	head := *r.cqHead
	tail := atomic.LoadUint32(r.cqTail)
	for i := head; i != tail; i++ {
		c := r.cqes[i&r.cqMask]
		atomic.StoreUint32(r.cqHead, i+1)
		f(c)
	}
	return int(tail - head)
}

// Close unmaps the rings and closes the ring's descriptor, which cancels every
// request still in flight.
func (r *Ring) Close() error {
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
		r.sqeMem = nil
	}
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

// register is a raw io_uring_register call.
func (r *Ring) register(op uintptr, arg unsafe.Pointer, n uintptr) error {
	_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), op, uintptr(arg), n, 0, 0)
	if e != 0 {
		return os.NewSyscallError("io_uring_register", e)
	}
	return nil
}

// probe is io_uring_probe with room for every operation.
type probe struct {
	lastOp uint8
	opsLen uint8
	resv   uint16
	resv2  [3]uint32
	ops    [256]probeOp
}

type probeOp struct {
	op    uint8
	resv  uint8
	flags uint16
	resv2 uint32
}

// Supports reports whether the kernel runs operation op on rings (one
// IORING_REGISTER_PROBE call), for optional operations such as OpSendZC.
func (r *Ring) Supports(op uint8) bool {
	var pr probe
	if r.register(registerProbe, unsafe.Pointer(&pr), uintptr(len(pr.ops))) != nil {
		return false
	}
	return op <= pr.lastOp && pr.ops[op].flags&opSupported != 0
}

// needOps are the operations the engine's io_uring loop submits.
var needOps = []uint8{OpPollAdd, OpSendmsg, OpAccept, OpAsyncCancel, OpClose, OpRead, OpSend, OpRecv}

// Probe reports whether this kernel runs the engine's io_uring loop: the ring
// setup it uses (single issuer, deferred task running: Linux 6.1 and later, which
// also have multishot accept and receive), the enter timeout argument, fast poll,
// no dropped completions, every operation it submits, and a provided-buffer ring.
// It returns why not (io_uring disabled by sysctl or seccomp shows as EPERM or
// ENOSYS from io_uring_setup).
func Probe() error {
	runtime.LockOSThread() // a single-issuer ring is registered from its creating thread
	defer runtime.UnlockOSThread()
	r, err := New(8, 16)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, f := range []struct {
		bit  uint32
		name string
	}{{featExtArg, "EXT_ARG"}, {featFastPoll, "FAST_POLL"}, {featNoDrop, "NODROP"}} {
		if r.features&f.bit == 0 {
			return fmt.Errorf("io_uring: kernel lacks IORING_FEAT_%s", f.name)
		}
	}
	var pr probe
	if err := r.register(registerProbe, unsafe.Pointer(&pr), uintptr(len(pr.ops))); err != nil {
		return err
	}
	for _, op := range needOps {
		if op > pr.lastOp || pr.ops[op].flags&opSupported == 0 {
			return fmt.Errorf("io_uring: kernel lacks operation %d", op)
		}
	}
	br, err := r.NewBufRing(0, 8, 4096)
	if err != nil {
		return err
	}
	return br.Close()
}
