//go:build linux && !galenet

package engine

import (
	"unsafe"

	"github.com/gale-server/gale/internal/os/uring"
	"golang.org/x/sys/unix"
)

// Zero-copy sends on the io_uring backend (IORING_OP_SEND_ZC): the io_uring
// counterpart of MSG_ZEROCOPY (zerocopy_linux.go), for the same segments (queued
// with WriteRef or WriteShared, at least Config.ZeroCopy bytes). Such a segment
// goes alone in one SEND_ZC request instead of the gathered sendmsg. The request
// completes twice: first with the bytes sent (flagged IORING_CQE_F_MORE when a
// notification follows), which moves the queue on as any send completion does,
// then with a notification (IORING_CQE_F_NOTIF) once the kernel no longer reads
// the pages, and only that runs the segment's release. The bookkeeping is the
// epoll path's zcState: sends numbered from 0 per connection, a segment released
// after the last send that read from it has completed. The user data names the
// state by a per-loop id instead of the descriptor, so the socket closes as soon
// as its requests have ended, and notifications still to come find the state
// (kept until they have all arrived) rather than a later socket with the same
// number. A notification that reports the data copied (loopback, any same-host
// peer) turns zero-copy off for that connection, as on epoll.

// uzc is a loop's SEND_ZC state; owned by the loop.
type uzc struct {
	ok     bool                // the kernel supports IORING_OP_SEND_ZC
	states map[uint32]*zcState // by id: open connections' and closed ones still owed notifications
	nextID uint32
	notifs int // notifications received (tests)
}

// zcSeqMask is the part of a send's number carried in the user data.
const zcSeqMask = 1<<24 - 1

// uSendZC prepares a SEND_ZC request for the front segment of q. It reports false
// when the segment must be sent the ordinary way (no kernel support, or zero-copy
// is off for this connection).
func (l *Loop) uSendZC(c *Conn, q *outq) bool {
	u := &l.ur.zc
	z := l.zc.conns[c]
	if z == nil {
		z = &zcState{off: !u.ok}
		if l.zc.conns == nil {
			l.zc.conns = map[*Conn]*zcState{}
		}
		l.zc.conns[c] = z
		c.flags |= fZC
		if u.ok {
			u.nextID++
			z.id, z.conn = u.nextID, c
			if u.states == nil {
				u.states = map[uint32]*zcState{}
			}
			u.states[z.id] = z
		}
	}
	if z.off {
		return false
	}
	s := &q.segs[0]
	b := s.buf[s.off:]
	flags := uint32(unix.MSG_NOSIGNAL)
	if len(q.segs) > 1 {
		flags |= unix.MSG_MORE
	}
	sq := l.ur.ring.Get()
	sq.Opcode, sq.Fd, sq.Ioprio, sq.OpFlags = uring.OpSendZC, c.fd, uring.SendZCReportUsage, flags
	sq.Addr, sq.Len = uint64(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b))
	sq.UserData = ukSendZC<<56 | uint64(z.next&zcSeqMask)<<32 | uint64(z.id)
	s.zc, s.zseq = true, z.next
	z.next++
	l.stats.zcSends.Add(1)
	c.flags |= fSend
	return true
}

// uZCComplete handles both completions of a SEND_ZC request.
func (l *Loop) uZCComplete(e uring.CQE) {
	z := l.ur.zc.states[uint32(e.UserData)]
	if z == nil {
		return
	}
	seq := z.done + (uint32(e.UserData>>32)-z.done)&zcSeqMask // the full number
	if e.Flags&uring.CqeNotif != 0 {
		l.ur.zc.notifs++
		if uint32(e.Res)&uring.NotifUsageZCCopied != 0 {
			l.stats.zcCopied.Add(1)
			if !zcKeepCopied {
				z.off = true // the kernel copies anyway: zero-copy only costs here
			}
		}
		l.uZCDone(z, seq)
		return
	}
	if e.Flags&uring.CqeMore == 0 {
		l.uZCDone(z, seq) // no notification follows (the send failed)
	}
	c := z.conn
	if c == nil {
		return
	}
	if e.Res == -int32(unix.EOPNOTSUPP) || e.Res == -int32(unix.EINVAL) {
		z.off = true // refused: the segment goes copied
		c.flags &^= fSend
		if c.flags&fClosed == 0 {
			l.flush(c)
		}
	} else {
		l.uSent(c, e.Res, "send_zc")
	}
	if c.flags&(fCloseWait|fUring) == fCloseWait {
		l.uFinalClose(c)
	}
}

// uZCDone records that send seq of z has completed, runs the releases that were
// waiting for it, and drops the state of a closed connection that is owed nothing.
func (l *Loop) uZCDone(z *zcState, seq uint32) {
	z.complete(seq, seq)
	z.releaseDone()
	if z.conn == nil && z.done == z.next {
		delete(l.ur.zc.states, z.id)
	}
}

// uZCForget detaches a closing connection from its zero-copy state; the state
// stays until its notifications have arrived.
func (l *Loop) uZCForget(c *Conn) {
	z := l.zc.conns[c]
	delete(l.zc.conns, c)
	c.flags &^= fZC
	if z == nil {
		return
	}
	z.conn = nil
	if z.done == z.next {
		delete(l.ur.zc.states, z.id)
	}
}

// uZCWaiting reports whether notifications are still owed (a stopping loop waits
// for them, boundedly).
func (l *Loop) uZCWaiting() bool {
	for _, z := range l.ur.zc.states {
		if z.done != z.next {
			return true
		}
	}
	return false
}

// uZCRelease runs every release still held, once the ring is closed (which ends
// the kernel's use of the pages).
func (l *Loop) uZCRelease() {
	for id, z := range l.ur.zc.states {
		z.done = z.next
		z.releaseDone()
		delete(l.ur.zc.states, id)
	}
}
