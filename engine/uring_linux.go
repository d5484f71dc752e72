//go:build linux && !galenet

package engine

import (
	"os"
	"time"
	"unsafe"

	"github.com/gale-server/gale/internal/os/sys"
	"github.com/gale-server/gale/internal/os/uring"
	"golang.org/x/sys/unix"
)

// The io_uring backend of the Linux engine. A loop in this mode has a ring instead
// of using its epoll instance: listeners have a multishot accept, connections a
// multishot receive that takes buffers from the loop's provided-buffer ring (an
// idle connection holds none), output goes as one IORING_OP_SEND (one segment)
// or IORING_OP_SENDMSG per connection in flight, prepared at the end of the
// iteration and submitted by the same io_uring_enter that waits for the next
// completions (closes too: IORING_OP_CLOSE), files still go with
// sendfile(2) or splice(2) (a full socket arms a POLLOUT poll), timers stay on the
// wheel (the enter's timeout), and Post's eventfd is read by a request on the ring.
// Everything here runs on the loop's thread, which created the ring (single
// issuer).

// Ring sizes and the provided buffers of one loop.
const (
	uringSQ       = 4096
	uringCQ       = 16384
	uringBufCount = 1024    // provided buffers per loop for multishot receives
	uringBufSize  = 4 << 10 // bytes per provided buffer
	// Bulk receives (single-shot, one per completion handled; see fBulk) take
	// larger buffers from a second group: 2 MiB per loop.
	uringBulkCount = 32
	uringBulkSize  = 64 << 10
	// uringPausedMax is how much input a paused connection may receive (its
	// multishot receive is still armed) before the receive is cancelled; the rest
	// waits in the socket (TCP flow control pushes back, as with epoll), and a
	// poll reports a reset. Zero: the first bytes that arrive while paused cancel it.
	uringPausedMax = 0
)

// Kinds of request, in the top byte of the user data; the low 32 bits hold the
// connection's descriptor (or the listener's index for accepts).
const (
	ukRecv     uint64 = iota + 1
	ukRecvBulk        // a single-shot receive from the bulk buffer group
	ukSend
	ukSendZC // a zero-copy send: the low 32 bits hold its zcState's id, bits 32-55 its number
	ukPollOut
	ukPollHup
	ukPollIn // read notification (SetReadNotify): the socket became readable
	ukAccept
	ukWake
	ukIgnore // cancellations: their own results do not matter
)

// Flags of connections in io_uring mode, after the epoll ones.
const (
	fRecv       = fReadNotify << (iota + 1) // a multishot receive is armed
	fSend                                   // a sendmsg is in flight: the kernel reads the front segments
	fPollOut                                // a POLLOUT poll is armed (full socket for a file, or connecting)
	fPollHup                                // an error poll is armed while receiving is stopped
	fRecvCancel                             // the receive's cancellation was asked for
	fCloseWait                              // closed; the socket closes when its requests have ended
	fRecvEnd                                // the receive returned end of stream: nothing more to read
	fUnseen                                 // the kept input holds bytes received while paused, not yet passed to OnData
	fEOFLater                               // the end of stream came behind unseen input: OnEOF once it has been passed on
	fUring      = fRecv | fSend | fPollOut | fPollHup | fPollIn
)

// fBulk marks a connection whose receives are single-shot, into the bulk buffer
// group: one that filled a whole multishot buffer, or received while paused. A
// multishot receive goes on reading (up to 32 buffers per wake-up) after the
// connection pauses, and its bytes must be kept until the resume; a single-shot
// one ends with its completion, so a paused bulk connection keeps at most one
// buffer and the rest waits in the socket, as with epoll. Each bulk completion
// also carries up to 64 KiB (one OnData) instead of 4 KiB.
const fBulk = fZC << 1

// fPollIn marks an armed POLLIN poll of a connection in read-notify mode
// (SetReadNotify): its completion calls OnReadable, and the handler reads or
// splices from the socket itself, as with epoll.
const fPollIn = fBulk << 1

// uloop is a loop's io_uring state; owned by the loop's goroutine.
type uloop struct {
	ring    *uring.Ring
	bufs    *uring.BufRing  // multishot receives' buffers
	bulk    *uring.BufRing  // single-shot bulk receives' buffers (fBulk)
	reap    func(uring.CQE) // the loop's completion handler, bound once
	wakeBuf [8]byte         // the eventfd read's destination
	closing int             // closed connections waiting for their requests to end
	accepts int             // armed multishot accepts
	zc      uzc             // IORING_OP_SEND_ZC state (uring_zc_linux.go)
	// wakeArmed is true while the eventfd read is in flight; stopping once the loop
	// has ended and requests are no longer re-armed.
	wakeArmed, stopping bool
}

// usend is the kernel-visible part of an in-flight sendmsg: header and vector,
// kept with the output queue until the completion arrives.
type usend struct {
	msg unix.Msghdr
	iov [maxIovecs]unix.Iovec
}

func ud(kind uint64, fd int) uint64 { return kind<<56 | uint64(uint32(fd)) }

// uStart creates the loop's ring on its own thread and arms the wake-up read and
// the listeners' accepts.
func (l *Loop) uStart() error {
	r, err := uring.New(uringSQ, uringCQ)
	if err != nil {
		return err
	}
	b, err := r.NewBufRing(0, uringBufCount, uringBufSize)
	if err != nil {
		r.Close()
		return err
	}
	bb, err := r.NewBufRing(1, uringBulkCount, uringBulkSize)
	if err != nil {
		b.Close()
		r.Close()
		return err
	}
	l.ur.ring, l.ur.bufs, l.ur.bulk = r, b, bb
	l.ur.zc.ok = r.Supports(uring.OpSendZC)
	l.ur.reap = l.uComplete
	l.uArmWake()
	for _, ls := range l.lsocks {
		if !ls.closed {
			l.uArmAccept(ls)
		}
	}
	return nil
}

// uRun is the loop body in io_uring mode.
func (l *Loop) uRun() {
	r := l.ur.ring
	lastYield := l.nowNano
	for !l.stop {
		wait := l.wheel.nextWaitMillis(l.nowNano)
		if len(l.pending) > 0 || len(l.dirty) > 0 {
			wait = 0
		}
		if wait != 0 && r.Ready() == 0 {
			l.maybeYield(&lastYield) // (a locked loop yields only before it waits)
		}
		if _, err := r.Enter(wait); err != nil {
			l.eng.cfg.Logger.Error("io_uring_enter failed", "loop", l.id, "err", err)
			time.Sleep(10 * time.Millisecond)
		}
		l.tick()
		r.Reap(l.ur.reap)
		l.ur.bufs.Publish()
		l.ur.bulk.Publish()
		l.endIteration()
	}
	l.closeAll(ErrShutdown)
	l.mu.Lock()
	l.stopped = true // closures posted from now on are dropped
	l.mu.Unlock()
	l.runTasks()
	l.uStop()
	l.release()
}

// uStop waits (boundedly) for the cancelled requests of closed connections and
// listeners to end, closes what is left and releases the ring. Closing the ring
// cancels anything still in flight.
func (l *Loop) uStop() {
	r := l.ur.ring
	l.ur.stopping = true
	if l.ur.wakeArmed {
		s := r.Get()
		s.Opcode, s.Addr, s.UserData = uring.OpAsyncCancel, ud(ukWake, 0), ud(ukIgnore, 0)
	}
	for i := 0; i < 50 && (l.ur.closing > 0 || l.ur.accepts > 0 || l.ur.wakeArmed || l.uZCWaiting()); i++ {
		r.Enter(10)
		r.Reap(l.ur.reap)
	}
	r.Submit() // the closes prepared by the last completions
	l.eachConn(func(c *Conn) {
		if c.flags&fClosed != 0 {
			l.eng.table.set(int(c.fd), nil)
			sys.Close(int(c.fd))
		}
	})
	r.Close()
	l.ur.bufs.Close()
	l.ur.bulk.Close()
	l.uZCRelease()
}

// uComplete handles one completion.
func (l *Loop) uComplete(e uring.CQE) {
	kind, fd := e.UserData>>56, int(uint32(e.UserData))
	switch kind {
	case ukWake:
		l.ur.wakeArmed = false
		l.poller.Drained()
		l.runTasks()
		if !l.ur.stopping {
			l.uArmWake()
		}
		return
	case ukAccept:
		l.uAccepted(l.lsocks[fd], e)
		return
	case ukSendZC:
		l.uZCComplete(e)
		return
	case ukIgnore:
		return
	}
	c := l.eng.table.get(fd)
	if c == nil || c.loop != l {
		return
	}
	switch kind {
	case ukRecv:
		l.uReceived(c, e, l.ur.bufs)
	case ukRecvBulk:
		l.uReceived(c, e, l.ur.bulk)
	case ukSend:
		l.uSent(c, e.Res, "sendmsg")
	case ukPollOut:
		l.uWritable(c, e.Res)
	case ukPollHup:
		l.uHup(c, e.Res)
	case ukPollIn:
		c.flags &^= fPollIn
		if c.flags&(fClosed|fReadNotify) == fReadNotify {
			l.uNotify(c)
		}
	}
	if c.flags&(fCloseWait|fUring) == fCloseWait {
		l.uFinalClose(c)
	}
}

func (l *Loop) uArmWake() {
	s := l.ur.ring.Get()
	s.Opcode, s.Fd, s.Len, s.UserData = uring.OpRead, int32(l.poller.WakeFd()), 8, ud(ukWake, 0)
	s.Addr = uint64(uintptr(unsafe.Pointer(&l.ur.wakeBuf[0])))
	l.ur.wakeArmed = true
}

func (l *Loop) uArmAccept(ls *lsock) {
	s := l.ur.ring.Get()
	s.Opcode, s.Fd, s.Ioprio, s.OpFlags = uring.OpAccept, int32(ls.fd), uring.AcceptMultishot, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC
	s.UserData = ud(ukAccept, int(ls.tag-tagListener))
	ls.armed = true
	l.ur.accepts++
}

// uCloseListener cancels a listener's accept before its socket closes, so that a
// successor holding a duplicate of the socket (binary upgrade) gets every new
// connection. The cancellation is submitted at once.
func (l *Loop) uCloseListener(ls *lsock) {
	if l.ur.ring == nil || !ls.armed {
		return
	}
	s := l.ur.ring.Get()
	s.Opcode, s.Addr, s.UserData = uring.OpAsyncCancel, ud(ukAccept, int(ls.tag-tagListener)), ud(ukIgnore, 0)
	l.ur.ring.Submit()
}

// uAccepted handles a multishot accept's completion.
func (l *Loop) uAccepted(ls *lsock, e uring.CQE) {
	if e.Flags&uring.CqeMore == 0 {
		ls.armed = false
		l.ur.accepts--
	}
	switch {
	case e.Res >= 0:
		fd := int(e.Res)
		// A connection the kernel accepted after StopAccepting, before it completed
		// the cancel of the multishot accept, is served like any other: it is no
		// longer in the socket's queue, where a successor sharing the socket would
		// have taken it, and closing it would reset a client that did nothing wrong.
		// Only a shutdown closes it.
		if l.drain {
			sys.Close(fd)
		} else {
			l.addConn(fd, ls.hidx, nil) // multishot accept gives no address: addConn asks
		}
	case ls.closed || e.Res == -int32(unix.ECANCELED) && ls.paused:
	case e.Res == -int32(unix.EMFILE) || e.Res == -int32(unix.ENFILE) || e.Res == -int32(unix.ENOBUFS) || e.Res == -int32(unix.ENOMEM):
		// Out of descriptors or memory: stop accepting for a moment, keep serving.
		if !ls.paused {
			l.stats.acceptPauses.Add(1)
			ls.paused = true
			if ls.armed {
				s := l.ur.ring.Get()
				s.Opcode, s.Addr, s.UserData = uring.OpAsyncCancel, ud(ukAccept, int(ls.tag-tagListener)), ud(ukIgnore, 0)
			}
			l.After(acceptBackoff, func() {
				ls.paused = false
				if !ls.closed && !ls.armed {
					l.uArmAccept(ls)
				}
			})
		}
	case e.Res != -int32(unix.EINTR) && e.Res != -int32(unix.ECONNABORTED):
		l.eng.cfg.Logger.Warn("accept failed", "loop", l.id, "err", errnoErr("accept4", unix.Errno(-e.Res)))
	}
	if !ls.armed && !ls.closed && !ls.paused {
		l.uArmAccept(ls)
	}
}

// uRegister starts a registered connection's requests: a receive, or for a
// connect in progress a POLLOUT poll.
func (l *Loop) uRegister(c *Conn) {
	if c.flags&fConnecting != 0 {
		l.uPollOut(c)
		return
	}
	l.uArmRecv(c)
}

func (l *Loop) uArmRecv(c *Conn) {
	if c.flags&fReadNotify != 0 {
		l.uPollIn(c)
		return
	}
	if c.flags&(fRecv|fRecvEnd|fClosed) != 0 {
		return
	}
	s := l.ur.ring.Get()
	s.Opcode, s.Fd, s.Flags = uring.OpRecv, c.fd, uring.SqeBufferSelect
	if c.flags&fBulk != 0 {
		s.BufGroup, s.UserData = l.ur.bulk.Group(), ud(ukRecvBulk, int(c.fd))
	} else {
		s.Ioprio = uring.RecvMultishot
		s.BufGroup, s.UserData = l.ur.bufs.Group(), ud(ukRecv, int(c.fd))
	}
	c.flags |= fRecv
	c.flags &^= fRecvCancel | fReadPending
}

func (l *Loop) uPollOut(c *Conn) {
	if c.flags&fPollOut != 0 {
		return
	}
	s := l.ur.ring.Get()
	s.Opcode, s.Fd, s.OpFlags, s.UserData = uring.OpPollAdd, c.fd, unix.POLLOUT, ud(ukPollOut, int(c.fd))
	c.flags |= fPollOut
}

// uStopRecv cancels the multishot receive of a paused connection that has
// buffered enough, or of one turning bulk (then the completion of the cancel arms
// the single-shot receive).
func (l *Loop) uStopRecv(c *Conn) {
	if c.flags&(fRecv|fRecvCancel) != fRecv {
		return
	}
	s := l.ur.ring.Get()
	s.Opcode, s.Addr, s.UserData = uring.OpAsyncCancel, ud(ukRecv, int(c.fd)), ud(ukIgnore, 0)
	c.flags |= fRecvCancel | fReadPending
}

// uGoBulk turns c's receives single-shot from the bulk group: a multishot one
// still armed is cancelled, and its last completion arms the first bulk one.
func (l *Loop) uGoBulk(c *Conn) {
	c.flags |= fBulk
	l.uStopRecv(c)
}

// uReceived handles a receive's completion: bytes (in a provided buffer of
// bufs, recycled here), end of stream, or the end of the request.
func (l *Loop) uReceived(c *Conn, e uring.CQE, bufs *uring.BufRing) {
	more := e.Flags&uring.CqeMore != 0
	if !more {
		c.flags &^= fRecv | fRecvCancel
	}
	var data []byte
	if e.Flags&uring.CqeBuffer != 0 {
		id := uint16(e.Flags >> uring.CqeBufferShift)
		data = bufs.Buf(id, int(max(e.Res, 0)))
		defer bufs.Recycle(id)
	}
	if c.flags&fClosed != 0 {
		return
	}
	switch res := e.Res; {
	case res > 0:
		l.stats.bytesIn.Add(uint64(res))
		switch {
		case c.flags&fLinger != 0: // discarded
		case c.flags&(fPaused|fHiPaused) != 0:
			// Not reading: keep the bytes for the resume, and stop the receive once
			// enough has piled up.
			l.retainAppend(c, data)
			c.flags |= fUnseen
			if len(c.input()) > uringPausedMax {
				l.uGoBulk(c)
			}
		default:
			if more && c.flags&fBulk == 0 && int(res) == bufs.Size() {
				l.uGoBulk(c) // a full buffer: more is likely waiting
			}
			if in := c.input(); len(in) > 0 {
				c.flags &^= fUnseen
				all := l.joined(in, data)
				l.dropInput(c) // handed over whole, as in runPending
				l.dispatch(c, all)
			} else {
				l.dispatch(c, data)
			}
		}
	case res == 0:
		if c.flags&fLinger != 0 {
			l.closeConn(c, nil)
			return
		}
		c.flags |= fRecvEnd
		if c.flags&fReadNotify != 0 {
			// The handler reads for itself now: it finds the end of stream there.
			l.uPollIn(c)
			return
		}
		if c.flags&fUnseen != 0 {
			// Bytes before the end of stream wait for the resume: as in the portable
			// engine, the end of stream is reported after them, so a handler never
			// learns of it before bytes the peer sent earlier.
			c.flags |= fEOFLater | fReadPending
			return
		}
		if c.flags&fEOF == 0 {
			c.flags |= fEOF
			c.handler().OnEOF(c)
		}
		return
	case res == -int32(unix.ENOBUFS), res == -int32(unix.ECANCELED):
		// Out of provided buffers, or cancelled while paused: armed again below, or
		// on resume.
		c.flags |= fReadPending
	default:
		l.closeConn(c, errnoErr("recv", unix.Errno(-res)))
		return
	}
	if c.flags&(fRecv|fClosed|fRecvEnd) == 0 {
		if c.flags&(fPaused|fHiPaused) != 0 && c.flags&fLinger == 0 {
			c.flags |= fReadPending // armed again on resume (uRead)
			if c.flags&fEOF == 0 {
				l.uPollHup(c)
			}
		} else {
			l.uArmRecv(c) // submitted after this batch's buffers are published
		}
	}
}

// joined returns in followed by data in the loop's read buffer (or a fresh slice
// when they do not fit).
func (l *Loop) joined(in, data []byte) []byte {
	if len(in)+len(data) > len(l.buf) {
		return append(append(make([]byte, 0, len(in)+len(data)), in...), data...)
	}
	k := copy(l.buf, in)
	return l.buf[:k+copy(l.buf[k:], data)]
}

// retainAppend adds data behind the connection's unconsumed input, in place when
// its buffer has room and otherwise in one twice as large (so the bytes a paused
// connection receives are copied a bounded number of times, not once per
// completion behind everything kept before them).
func (l *Loop) retainAppend(c *Conn, data []byte) {
	if c.in == nil {
		c.in = l.getHolder()
	}
	b := *c.in
	if cap(b)-len(b) < len(data) {
		nb := l.cache.Get(max(2*cap(b), len(b)+len(data)))
		nb = nb[:copy(nb, b)]
		if b != nil {
			l.cache.Put(b)
		}
		b = nb
	}
	*c.in = append(b, data...)
}

// uPollHup arms an error poll for a connection whose receive has stopped while it
// is paused, so that a reset closes it at once, as with epoll.
func (l *Loop) uPollHup(c *Conn) {
	if c.flags&fPollHup != 0 {
		return
	}
	s := l.ur.ring.Get()
	s.Opcode, s.Fd, s.OpFlags, s.UserData = uring.OpPollAdd, c.fd, unix.POLLERR, ud(ukPollHup, int(c.fd))
	c.flags |= fPollHup
}

func (l *Loop) uHup(c *Conn, res int32) {
	c.flags &^= fPollHup
	if c.flags&fClosed != 0 || res < 0 || c.flags&(fPaused|fHiPaused) == 0 {
		return // reading has resumed: the receive reports the same
	}
	// A reset or a socket error ends the connection. POLLHUP alone is an orderly end
	// of both directions (this side's CloseWrite, then the peer's FIN), and a
	// half-close is reported by the receive once reading resumes, after the bytes
	// sent before it: the portable engine's order, which relays need here because
	// SetReadNotify is epoll-only.
	if err := l.sockErr(c); err != nil || res&unix.POLLERR != 0 {
		l.closeConn(c, err)
	}
}

// uPollIn arms the readiness poll of a connection in read-notify mode.
func (l *Loop) uPollIn(c *Conn) {
	if c.flags&(fPollIn|fClosed) != 0 {
		return
	}
	s := l.ur.ring.Get()
	s.Opcode, s.Fd, s.OpFlags, s.UserData = uring.OpPollAdd, c.fd, unix.POLLIN|unix.POLLRDHUP, ud(ukPollIn, int(c.fd))
	c.flags |= fPollIn
}

// uNotify runs OnReadable for a connection in read-notify mode whose socket may
// be readable, once no receive of the engine's is armed (a multishot one is
// cancelled first, and its last bytes go to OnData before the handler reads
// itself), then arms the poll again unless the handler paused.
func (l *Loop) uNotify(c *Conn) {
	if c.flags&fRecv != 0 {
		l.uStopRecv(c) // its end arms the poll (uArmRecv)
		return
	}
	if c.flags&(fPaused|fHiPaused) != 0 && c.flags&fLinger == 0 {
		c.flags |= fReadPending // notified again on resume
		if c.flags&fEOF == 0 {
			l.uPollHup(c)
		}
		return
	}
	rh, ok := c.handler().(ReadNotifyHandler)
	if !ok {
		c.flags &^= fReadNotify // re-parented to a handler that reads through the engine
		l.uArmRecv(c)
		return
	}
	rh.OnReadable(c)
	if c.flags&(fClosed|fReadNotify) != fReadNotify {
		if c.flags&fClosed == 0 {
			l.uArmRecv(c) // notification turned off: the engine reads again
		}
		return
	}
	if c.flags&(fPaused|fHiPaused) != 0 {
		c.flags |= fReadPending // it stopped early: notify again on resume
		return
	}
	l.uPollIn(c)
}

// uRead replaces the epoll engine's read for a connection whose reading resumed
// (or that lingers): the receive is armed again if it is not; in read-notify
// mode the handler is told the socket may be readable.
func (l *Loop) uRead(c *Conn) {
	c.flags &^= fReadPending
	if c.flags&(fReadNotify|fLinger|fUnseen) == fReadNotify {
		if c.flags&fPollIn == 0 {
			l.uNotify(c)
		}
		return
	}
	if c.flags&fEOFLater != 0 && c.flags&fUnseen == 0 {
		c.flags &^= fEOFLater
		switch {
		case c.flags&fLinger != 0:
			l.closeConn(c, nil)
		case c.flags&fEOF == 0:
			c.flags |= fEOF
			c.handler().OnEOF(c)
		}
		return
	}
	if c.flags&fRecv != 0 {
		if c.flags&fRecvCancel != 0 {
			c.flags |= fReadPending // re-armed when the cancellation completes
		}
		return
	}
	if c.flags&fRecvEnd != 0 {
		if c.flags&fLinger != 0 {
			l.closeConn(c, nil)
		}
		return
	}
	l.uArmRecv(c)
}

// uWriteOut is writeOut in io_uring mode: memory segments go as one sendmsg
// request (completed in uSent), files and pipes with sendfile/splice as before.
func (l *Loop) uWriteOut(c *Conn) error {
	fd := int(c.fd)
	sentFile := 0
	for q := c.out; q != nil && len(q.segs) > 0 && c.flags&(fClosed|fWaitOut|fBroken|fSend) == 0; {
		s := &q.segs[0]
		if s.buf == nil {
			if sentFile >= sendfileChunk {
				c.markDirty()
				break
			}
			full, err := l.sendFileSeg(c, q, &sentFile)
			if err != nil {
				return err
			}
			if full {
				c.flags |= fWaitOut
				l.uPollOut(c)
			}
			continue
		}
		if l.zcEligible(c, s) && l.uSendZC(c, q) {
			break
		}
		sq := l.ur.ring.Get()
		sq.Fd, sq.UserData = int32(fd), ud(ukSend, fd)
		if len(q.segs) == 1 || q.segs[1].buf == nil || l.zcEligible(c, &q.segs[1]) {
			// One memory segment (the common case: one response of one request, or
			// the headers before a file or a zero-copy segment): IORING_OP_SEND, with
			// no header or vector for the kernel to import.
			flags := uint32(unix.MSG_NOSIGNAL)
			if len(q.segs) > 1 || corkLast(c) {
				flags |= unix.MSG_MORE
			}
			b := s.buf[s.off:]
			sq.Opcode, sq.Addr, sq.Len, sq.OpFlags = uring.OpSend, uint64(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b)), flags
			c.flags |= fSend
			break
		}
		if q.us == nil {
			q.us = new(usend)
		}
		us := q.us
		n, flags := 0, unix.MSG_NOSIGNAL
		for i := range q.segs {
			t := &q.segs[i]
			if t.buf == nil || i > 0 && l.zcEligible(c, t) {
				flags |= unix.MSG_MORE // a file or a zero-copy segment follows
				break
			}
			if n == maxIovecs {
				break
			}
			b := t.buf[t.off:]
			us.iov[n] = unix.Iovec{Base: &b[0]}
			us.iov[n].SetLen(len(b))
			n++
		}
		if n == len(q.segs) && corkLast(c) {
			flags |= unix.MSG_MORE
		}
		us.msg = unix.Msghdr{Iov: &us.iov[0]}
		us.msg.SetIovlen(n)
		sq.Opcode, sq.Addr, sq.Len, sq.OpFlags = uring.OpSendmsg, uint64(uintptr(unsafe.Pointer(&us.msg))), 1, uint32(flags)
		c.flags |= fSend
		break
	}
	return nil
}

// uSent handles a send's completion (call names the operation for errors): the
// sent bytes leave the queue, and the queue is flushed on (the next request,
// backpressure, OnDrain, closing).
func (l *Loop) uSent(c *Conn, res int32, call string) {
	c.flags &^= fSend
	if c.flags&fClosed != 0 {
		return
	}
	q := c.out
	switch {
	case res == -int32(unix.EAGAIN):
		c.flags |= fWaitOut
		l.uPollOut(c)
		return
	case res < 0:
		l.closeConn(c, errnoErr(call, unix.Errno(-res)))
		return
	}
	n := int(res)
	l.stats.bytesOut.Add(uint64(n))
	q.progress = l.nowNano
	q.mem -= n
	l.popSegs(q, q.sent(n))
	l.flush(c)
}

// uWritable handles a POLLOUT poll: a connect has finished, or a full socket has
// room again.
func (l *Loop) uWritable(c *Conn, res int32) {
	c.flags &^= fPollOut
	if c.flags&fClosed != 0 || res < 0 {
		return
	}
	if c.flags&fConnecting != 0 {
		if !l.connected(c) {
			return
		}
		l.uArmRecv(c)
	}
	c.flags &^= fWaitOut
	l.flush(c)
}

// uCancel asks the kernel to end every request of a closed connection; the socket
// closes when the last one has completed (uFinalClose), so that its descriptor
// number cannot be reused while completions for it may still arrive.
//
// The common case, a connection whose only request is its multishot receive
// (every close of a served HTTP/1.1 connection), cancels that request by its user
// data: the kernel finds it in one bucket of its cancellation hash. Anything else
// is cancelled by descriptor, which walks every bucket and every request in them
// (in conn-rate that walk was 2 µs of CPU per connection, 3% of gale's total).
func (l *Loop) uCancel(c *Conn) {
	s := l.ur.ring.Get()
	s.Opcode, s.UserData = uring.OpAsyncCancel, ud(ukIgnore, 0)
	if c.flags&(fUring|fBulk|fRecvCancel|fZC) == fRecv {
		s.Addr = ud(ukRecv, int(c.fd))
	} else {
		s.Fd, s.OpFlags = c.fd, uring.CancelFD|uring.CancelAll
	}
	c.flags |= fCloseWait
	l.ur.closing++
}

// uFinalClose closes the socket of a closed connection whose requests have all
// ended, releasing output a send held until then. The close is an IORING_OP_CLOSE
// submitted by the next io_uring_enter (no close(2) of its own), behind any
// cancellation still prepared for the descriptor: the ring runs them in order, so
// a cancellation cannot reach a new socket that reused the number. No completion
// can come for the descriptor any more, so its table slot is cleared now.
func (l *Loop) uFinalClose(c *Conn) {
	if q := c.out; q != nil {
		for len(q.segs) > 0 {
			l.popSeg(q)
		}
		l.putOutq(q)
		c.out = nil
	}
	if c.flags&fZC != 0 {
		l.uZCForget(c)
	}
	c.flags &^= fCloseWait
	l.ur.closing--
	fd := int(c.fd)
	if l.eng.table.get(fd) == c {
		l.eng.table.set(fd, nil)
	}
	s := l.ur.ring.Get()
	s.Opcode, s.Fd, s.Flags, s.UserData = uring.OpClose, int32(fd), uring.SqeCQESkipSuccess, ud(ukIgnore, fd)
}

// backendName is how the engine's backend is named in logs and configuration.
func (e *Engine) backendName() string {
	if e.uring {
		return BackendIOURing
	}
	return BackendEpoll
}

// resolveBackend decides between epoll and io_uring for cfg.Backend (or, when
// empty, the GALE_ENGINE environment variable, which lets a test run choose).
func resolveBackend(b string) (useURing bool, why error, err error) {
	if b == "" {
		b = os.Getenv("GALE_ENGINE")
	}
	switch b {
	case "", BackendEpoll:
		return false, nil, nil
	case BackendIOURing:
		if perr := uring.Probe(); perr != nil {
			return false, nil, &BackendError{Backend: b, Err: perr}
		}
		return true, nil, nil
	case BackendAuto:
		if perr := uring.Probe(); perr != nil {
			return false, perr, nil
		}
		return true, nil, nil
	}
	return false, nil, &BackendError{Backend: b}
}
