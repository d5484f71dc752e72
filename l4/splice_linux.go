package l4

import (
	"os"

	"github.com/gale-server/gale/internal/os/sys"
	"golang.org/x/sys/unix"
)

// pipeSize is the capacity asked for each relay pipe (F_SETPIPE_SZ): the most a
// direction holds between its two sockets in splice mode. 1 MiB is the
// default fs.pipe-max-size; it measured 10-30% less relay CPU per GiB than 256
// KiB and half of 64 KiB's (bench/l4bulk, docs/l4.md), since each readiness
// report moves more per splice call. The pages are the socket's own
// (SPLICE_F_MOVE), so a pipe costs memory only for what it holds.
const pipeSize = 1 << 20

// minPipe is the smallest capacity worth splicing through. An unprivileged user
// past fs.pipe-user-pages-soft gets pipes of one page, which would splice 4 KiB
// per call; such a pipe is closed and the direction copies instead.
const minPipe = 64 << 10

// maxPooledPipes bounds the idle pipes a loop keeps for later relays.
const maxPooledPipes = 64

// scratchSize is the read buffer of the copy fallback in read-notify mode.
const scratchSize = 64 << 10

// pipe is a relay pipe: both ends non-blocking and close-on-exec.
type pipe struct{ r, w, cap int }

// pipePool is one loop's idle pipes and scratch buffer; owned by that loop.
type pipePool struct {
	free    []*pipe
	scratch []byte
}

// get returns an empty pipe, or nil when none can be made (descriptors exhausted).
func (pp *pipePool) get() *pipe {
	if n := len(pp.free); n > 0 {
		p := pp.free[n-1]
		pp.free = pp.free[:n-1]
		return p
	}
	r, w, capacity, err := sys.Pipe(pipeSize)
	if err != nil {
		return nil
	}
	if capacity < minPipe {
		unix.Close(r)
		unix.Close(w)
		return nil
	}
	return &pipe{r, w, capacity}
}

// put keeps an empty pipe for reuse, or closes it (not empty, or pool full).
func (pp *pipePool) put(p *pipe) {
	if len(pp.free) < maxPooledPipes && sys.PipeBuffered(p.r) == 0 {
		pp.free = append(pp.free, p)
		return
	}
	unix.Close(p.r)
	unix.Close(p.w)
}

// splice is a direction's splice state; owned by the relay's loop.
type splice struct {
	notify   bool  // src is in read-notify mode: OnReadable moves its bytes
	pipe     *pipe // taken from the loop's pool on the first OnReadable
	noPipe   bool  // no pipe could be made; read-notify mode copies instead
	inPipe   int64 // bytes spliced into the pipe and not yet sent on
	pipeWait bool  // src paused until the pipe drains
}

// startSplice switches the direction to read notification, where OnReadable
// splices. The engine may refuse (input it still holds); then copying goes on.
func (d *dir) startSplice() {
	if d.src.SetReadNotify(true) {
		d.notify = true
	} else {
		d.noSplice = true
	}
}

func (d *dir) pool() *pipePool { return &d.p.loop().pipes }

// readable moves what src holds: socket → pipe → dst by splice, until the socket
// is empty, the pipe is full (src pauses until dst has sent some of it) or src
// has ended.
func (d *dir) readable() {
	if d.eof {
		return
	}
	if d.pipe == nil && d.spliceDue() {
		if d.pipe = d.pool().get(); d.pipe == nil {
			d.noPipe = true
		}
	}
	if d.pipe == nil {
		d.readCopy()
		return
	}
	// Everything spliced in during this wake-up is queued on dst as one pipe
	// segment (queue), which the engine sends with one splice call where the
	// socket takes it all, instead of one segment per socket fragment.
	got := 0
	queue := func() {
		if got > 0 {
			d.dst.SplicePipe(d.pipe.r, int64(got), d.sent(got))
			got = 0
		}
	}
	for {
		room := d.pipe.cap - int(d.inPipe)
		if room <= 0 {
			queue()
			d.waitPipe()
			return
		}
		n, e := sys.SpliceIn(d.src.Fd(), d.pipe.w, room)
		switch {
		case e == unix.EAGAIN:
			// The socket is empty, or the pipe is full with fewer bytes than its
			// capacity (each pipe buffer holds one socket fragment): wait for
			// the pipe to drain, which resumes reading either way.
			queue()
			if d.inPipe > 0 {
				d.waitPipe()
			}
			return
		case e == unix.EINTR:
			continue
		case e != 0:
			queue()
			d.p.finish(d.src, os.NewSyscallError("splice", e))
			return
		case n == 0:
			queue()
			d.srcEOF()
			return
		}
		got += n
		d.inPipe += int64(n)
		d.moved += int64(n)
		d.p.loop().spliced.add(n)
		d.p.last = d.src.Loop().Now()
	}
}

// sent returns the release function of a pipe segment of n bytes: the bytes
// have left the pipe (or dst closed), so src may read again.
func (d *dir) sent(n int) func() {
	return func() {
		d.inPipe -= int64(n)
		if d.pipeWait {
			d.pipeWait = false
			d.src.ResumeRead()
		}
	}
}

func (d *dir) waitPipe() {
	d.pipeWait = true
	d.p.px.stats.backpressure.Add(1)
	d.src.PauseRead()
}

// readCopy reads src into the loop's scratch buffer and copies, for a direction
// in read-notify mode without a pipe: one that has not copied SpliceAfter bytes
// yet (read notification was turned on to find the end of its stream), or that
// could not get a pipe.
func (d *dir) readCopy() {
	pp := d.pool()
	if pp.scratch == nil {
		pp.scratch = make([]byte, scratchSize)
	}
	for !d.held && !d.eof && d.p.state == stRelaying {
		n, e := sys.Read(d.src.Fd(), pp.scratch)
		switch {
		case e == unix.EAGAIN:
			return
		case e == unix.EINTR:
			continue
		case e != 0:
			d.p.finish(d.src, os.NewSyscallError("read", e))
			return
		case n == 0:
			d.srcEOF()
			return
		}
		d.copy(pp.scratch[:n])
		if d.spliceDue() {
			d.readable()
			return
		}
	}
}

// spliceDue reports whether the direction has copied a long enough run of large
// reads to splice from now on (and has no pipe yet, and may get one).
func (d *dir) spliceDue() bool {
	after := d.p.px.opt.SpliceAfter
	return d.pipe == nil && !d.noPipe && after > 0 && d.bulk >= after
}

// releasePipe gives the direction's pipe back to its loop's pool.
func (d *dir) releasePipe() {
	if d.pipe != nil {
		d.pool().put(d.pipe)
		d.pipe = nil
	}
}
