//go:build linux && !galenet

package engine

import (
	"time"

	"github.com/gale-server/gale/internal/os/sys"
	"golang.org/x/sys/unix"
)

// MSG_ZEROCOPY for large memory segments queued with WriteRef or WriteShared, on the
// epoll backend. Such a send pins the pages and returns before the kernel has read
// them; the kernel reports each send as complete on the socket's error queue
// (EPOLLERR), and only then is the segment's release called. A segment sent by
// several zero-copy calls (a partial send, then the rest) waits for the last of
// them. Sends are numbered per socket from 0, in the order they were made.

// fZC marks a connection that has zero-copy state in its loop's zc.conns map.
const fZC = fEOFLater << 1

// zcKeepCopied keeps zero-copy on for a socket whose sends the kernel copied
// anyway (loopback); the crossover benchmark sets it to measure that cost.
var zcKeepCopied = false

// zcReapEvery is how often the error queues of closed sockets with zero-copy sends
// outstanding are read; zcGiveUp is how long such a socket may wait for them before
// it is reset, which makes the kernel drop the pages at once.
const (
	zcReapEvery = 50 * time.Millisecond
	zcGiveUp    = 10 * time.Second
)

// zcLoop is a loop's zero-copy state; owned by the loop.
type zcLoop struct {
	min     int                // smallest segment sent with MSG_ZEROCOPY; 0: never
	conns   map[*Conn]*zcState // connections that tried zero-copy (fZC)
	zombies []*zcZombie        // closed sockets still waiting for completions
	reaping bool               // the zombie reaper timer is armed
	oob     [128]byte          // control buffer for error-queue reads
}

// zcState is one socket's zero-copy bookkeeping.
type zcState struct {
	next uint32      // number the kernel gives the next zero-copy send
	done uint32      // every send numbered below done is complete
	late [][2]uint32 // completed ranges not contiguous with done yet
	held []zcHeld    // releases waiting for completions, in send order
	off  bool        // zero-copy is not used on this socket (refused, or copied)
	// abort: the connection is being reset (Abort), which frees the kernel's
	// references at once, so the socket closes without waiting.
	abort bool
	// io_uring: id names the state in the loop's uzc.states (completions carry it,
	// not the descriptor, so a notification that arrives after the socket closed
	// and its number was reused cannot reach another connection); conn is the
	// connection while it is open, nil after.
	id   uint32
	conn *Conn
}

// zcHeld is a segment's release waiting for the completion of send seq; keep
// holds the segment's bytes, which the kernel may still read, reachable until then
// whatever the release does.
type zcHeld struct {
	seq     uint32
	release func()
	keep    []byte
}

// zcZombie is a closed connection's socket kept open until its zero-copy sends
// complete, so that its pages are not reused while the kernel may still read them.
type zcZombie struct {
	fd    int
	z     *zcState
	until int64 // loop time after which the socket is reset and closed
}

// zcEligible reports whether segment s is sent with MSG_ZEROCOPY on c.
func (l *Loop) zcEligible(c *Conn, s *seg) bool {
	if l.zc.min <= 0 || s.release == nil || s.buf == nil || len(s.buf)-s.off < l.zc.min {
		return false
	}
	z := l.zc.conns[c]
	return z == nil || !z.off
}

// zcSend sends the front segment of q with MSG_ZEROCOPY. It reports false when the
// segment must go the ordinary way instead (the socket refused zero-copy, or has
// too many sends outstanding); the caller then sends it copied.
func (l *Loop) zcSend(c *Conn, q *outq) (bool, error) {
	fd := int(c.fd)
	z := l.zc.conns[c]
	if z == nil {
		z = &zcState{}
		if l.zc.conns == nil {
			l.zc.conns = map[*Conn]*zcState{}
		}
		l.zc.conns[c] = z
		c.flags |= fZC
		if sys.SetZeroCopy(fd) != nil {
			z.off = true
			return false, nil
		}
	}
	if z.off {
		return false, nil
	}
	s := &q.segs[0]
	b := s.buf[s.off:]
	iov := append(l.iov[:0], unix.Iovec{Base: &b[0]})
	iov[0].SetLen(len(b))
	l.iov = iov
	flags := unix.MSG_ZEROCOPY
	if len(q.segs) > 1 {
		flags |= unix.MSG_MORE
	}
	n, e := sys.Sendmsg(fd, iov, flags)
	switch e {
	case 0:
	case unix.EAGAIN:
		c.flags |= fWaitOut
		return true, nil
	case unix.EINTR:
		return true, nil
	case unix.ENOBUFS:
		// Too many notifications outstanding (the socket's option memory): read what
		// has completed and send this piece copied.
		l.zcReap(c)
		return false, nil
	case unix.EOPNOTSUPP, unix.EINVAL, unix.ENOPROTOOPT:
		z.off = true
		return false, nil
	default:
		return true, errnoErr("sendmsg", e)
	}
	s.zc, s.zseq = true, z.next
	z.next++
	l.stats.zcSends.Add(1)
	l.stats.bytesOut.Add(uint64(n))
	q.progress = l.nowNano
	q.mem -= n
	l.popSegs(q, q.sent(n))
	return true, nil
}

// zcHold runs a popped zero-copy segment's release once its last send completes.
func (l *Loop) zcHold(c *Conn, s *seg) {
	z := l.zc.conns[c]
	if z == nil || int32(s.zseq-z.done) < 0 {
		s.release()
		return
	}
	z.held = append(z.held, zcHeld{seq: s.zseq, release: s.release, keep: s.buf})
}

// zcReap reads c's error queue and runs the releases whose sends completed.
func (l *Loop) zcReap(c *Conn) {
	if z := l.zc.conns[c]; z != nil {
		l.zcDrain(int(c.fd), z)
	}
}

// zcDrain reads fd's error queue until it is empty and applies the completions.
func (l *Loop) zcDrain(fd int, z *zcState) {
	for {
		d, ok, e := sys.ReadZeroCopyDone(fd, l.zc.oob[:])
		if e != 0 {
			break
		}
		if !ok {
			continue
		}
		if d.Copied {
			l.stats.zcCopied.Add(uint64(d.Hi - d.Lo + 1))
			if !zcKeepCopied {
				z.off = true // the kernel copies anyway: zero-copy only costs here
			}
		}
		z.complete(d.Lo, d.Hi)
	}
	z.releaseDone()
}

// complete records that sends lo..hi have completed.
func (z *zcState) complete(lo, hi uint32) {
	z.late = append(z.late, [2]uint32{lo, hi})
	for moved := true; moved; {
		moved = false
		for i := 0; i < len(z.late); i++ {
			r := z.late[i]
			if int32(r[0]-z.done) > 0 {
				continue // a gap before it: earlier sends have not completed
			}
			if int32(r[1]+1-z.done) > 0 {
				z.done = r[1] + 1
			}
			z.late = append(z.late[:i], z.late[i+1:]...)
			moved = true
			i--
		}
	}
}

// releaseDone runs the held releases whose sends have completed.
func (z *zcState) releaseDone() {
	k := 0
	for k < len(z.held) && int32(z.held[k].seq-z.done) < 0 {
		z.held[k].release()
		z.held[k] = zcHeld{}
		k++
	}
	z.held = append(z.held[:0], z.held[k:]...)
}

// zcEvent handles EPOLLERR on a connection with zero-copy state: completions are
// read, and it reports whether a real socket error remains (then err is it).
func (l *Loop) zcEvent(c *Conn) (hasErr bool, err error) {
	l.zcReap(c)
	if err := l.sockErr(c); err != nil {
		return true, err
	}
	return false, nil
}

// zcClose is called as c closes: it reports true when the socket must stay open
// because zero-copy sends are outstanding; it is then closed by the reaper.
func (l *Loop) zcClose(c *Conn, fd int) bool {
	if l.ur != nil {
		l.uZCForget(c) // the notifications come through the ring, by id
		return false
	}
	z := l.zc.conns[c]
	delete(l.zc.conns, c)
	c.flags &^= fZC
	if z == nil {
		return false
	}
	l.zcDrain(fd, z)
	if len(z.held) == 0 {
		return false
	}
	if z.abort {
		sys.Close(fd)
		z.done = z.next
		z.releaseDone()
		return true
	}
	l.poller.Del(fd)
	l.zc.zombies = append(l.zc.zombies, &zcZombie{fd: fd, z: z, until: l.nowNano + int64(zcGiveUp)})
	if !l.zc.reaping {
		l.zc.reaping = true
		l.After(zcReapEvery, l.zcReapZombies)
	}
	return true
}

// zcReapZombies closes the kept sockets whose sends have all completed, and resets
// those that waited too long; it runs on the loop's timer while any is kept.
func (l *Loop) zcReapZombies() {
	l.zc.reaping = false
	l.zcReapAll(false)
	if len(l.zc.zombies) > 0 {
		l.zc.reaping = true
		l.After(zcReapEvery, l.zcReapZombies)
	}
}

// zcReapAll reads the kept sockets' error queues and closes those that are done;
// with force, or past their time, the rest are reset and closed (the kernel then
// frees their pages) and their releases run.
func (l *Loop) zcReapAll(force bool) {
	kept := l.zc.zombies[:0]
	for _, zb := range l.zc.zombies {
		l.zcDrain(zb.fd, zb.z)
		if len(zb.z.held) > 0 && !force && l.nowNano < zb.until {
			kept = append(kept, zb)
			continue
		}
		if len(zb.z.held) > 0 {
			sys.SetLinger0(zb.fd)
		}
		sys.Close(zb.fd)
		zb.z.done = zb.z.next
		zb.z.releaseDone()
	}
	clear(l.zc.zombies[len(kept):])
	l.zc.zombies = kept
}

// zcShutdown runs as the loop stops: kept sockets get up to 500 ms to complete,
// then are reset.
func (l *Loop) zcShutdown() {
	for deadline := time.Now().Add(500 * time.Millisecond); len(l.zc.zombies) > 0 && time.Now().Before(deadline); {
		l.zcReapAll(false)
		if len(l.zc.zombies) > 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	l.zcReapAll(true)
}
