// Package accesslog writes one line per response without blocking the event
// loops. Each loop formats its lines into a buffer of its own; a full buffer
// (or, every FlushEvery, a non-empty one) is handed to a writer goroutine
// over a bounded queue. When the queue is full because the disk stalls, the
// buffer's lines are dropped and counted instead of waiting: memory stays
// bounded by (loops + queue + 2) buffers. Reopen (SIGUSR1, for logrotate:
// every line logged before it written to the old file) and Close (shutdown:
// every buffered line written) go through the writer.
package accesslog

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/metrics"
	"github.com/gale-server/gale/server"
)

// Limits of a Log.
const (
	bufSize    = 64 << 10 // a loop hands its buffer over once it holds this much
	maxQueued  = 16       // buffers waiting for the writer before lines are dropped
	FlushEvery = 200 * time.Millisecond
)

// Formats.
const (
	Combined = iota // nginx's combined format
	JSON            // one JSON object per line
)

// Options configure a Log.
type Options struct {
	Server string // the server's name, in JSON lines
	Path   string // file, "stdout" or "stderr"
	Format int    // Combined or JSON
	// Loops are the event loops that log; loop i owns buffer i.
	Loops []*engine.Loop
	// open opens Path; tests replace it to stall the writer.
	open func(path string) (io.WriteCloser, error)
}

// Log is one server's access log. LogResponse runs on the loops; the other
// methods on any goroutine.
type Log struct {
	opts  Options
	loops []loopBuf // index: loop ID; each owned by its loop
	full  chan []byte
	free  chan []byte
	ctl   chan chan error // reopen requests to the writer
	done  chan struct{}   // closed when the writer has finished
	stop  sync.Once
	err   atomic.Pointer[error] // last write or reopen error, for the logger
}

var _ metrics.ResponseLogger = (*Log)(nil)

// loopBuf is one loop's pending lines and counters. Only the loop writes buf
// and pending; lines and dropped are single-writer atomics read by scrapes.
type loopBuf struct {
	buf     []byte
	pending uint64 // lines in buf
	lines   atomic.Uint64
	dropped atomic.Uint64
	stamp   stamp
	flush   func() // posted to the loop every FlushEvery; made once
	_       [64]byte
}

// Open opens the log's file and starts its writer and its flush ticker.
func Open(o Options) (*Log, error) {
	if o.open == nil {
		o.open = openPath
	}
	w, err := o.open(o.Path)
	if err != nil {
		return nil, err
	}
	n := max(len(o.Loops), 1)
	l := &Log{
		opts: o, loops: make([]loopBuf, n),
		full: make(chan []byte, maxQueued), free: make(chan []byte, maxQueued),
		ctl: make(chan chan error), done: make(chan struct{}),
	}
	for i := range l.loops {
		lb := &l.loops[i]
		lb.buf = make([]byte, 0, bufSize)
		lb.flush = func() {
			if lb.pending > 0 {
				l.handOff(lb)
			}
		}
	}
	go l.writer(w)
	return l, nil
}

// openPath opens a log destination for appending.
func openPath(path string) (io.WriteCloser, error) {
	switch path {
	case "stdout":
		return nopCloser{os.Stdout}, nil
	case "stderr":
		return nopCloser{os.Stderr}, nil
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// LogResponse formats one line into the loop's buffer.
func (l *Log) LogResponse(c server.Observed, route string, status int, d time.Duration) {
	id := c.LoopID()
	if id >= len(l.loops) {
		id = 0
	}
	lb := &l.loops[id]
	if l.opts.Format == JSON {
		lb.buf = l.appendJSON(lb.buf, &lb.stamp, c, route, status, d)
	} else {
		lb.buf = appendCombined(lb.buf, &lb.stamp, c, status, d)
	}
	lb.pending++
	if len(lb.buf) >= bufSize {
		l.handOff(lb)
	}
}

// handOff gives the loop's buffer to the writer, or drops its lines when the
// writer is behind; either way the loop continues with an empty buffer.
func (l *Log) handOff(lb *loopBuf) {
	select {
	case l.full <- lb.buf:
		lb.lines.Store(lb.lines.Load() + lb.pending)
		select {
		case b := <-l.free:
			lb.buf = b[:0]
		default:
			lb.buf = make([]byte, 0, bufSize)
		}
	default:
		lb.dropped.Store(lb.dropped.Load() + lb.pending)
		lb.buf = lb.buf[:0]
	}
	lb.pending = 0
}

// writer writes handed-over buffers, reopens on request and, every
// FlushEvery, asks each loop to hand over what it holds.
func (l *Log) writer(w io.WriteCloser) {
	defer close(l.done)
	tick := time.NewTicker(FlushEvery)
	defer tick.Stop()
	write := func(b []byte) {
		if _, err := w.Write(b); err != nil {
			l.setErr(err)
		}
		select {
		case l.free <- b:
		default:
		}
	}
	for {
		select {
		case b, ok := <-l.full:
			if !ok {
				l.setErr(w.Close())
				return
			}
			write(b)
		case reply := <-l.ctl:
			// Buffers queued before the request belong to the old file;
			// select alone could take the request first.
			for queued := true; queued; {
				select {
				case b, ok := <-l.full:
					if !ok {
						l.setErr(w.Close())
						reply <- ErrClosed
						return
					}
					write(b)
				default:
					queued = false
				}
			}
			nw, err := l.opts.open(l.opts.Path)
			if err == nil {
				w.Close()
				w = nw
			}
			reply <- err
		case <-tick.C:
			for _, loop := range l.opts.Loops {
				loop.Post(l.loops[loop.ID()].flush)
			}
		}
	}
}

func (l *Log) setErr(err error) {
	if err != nil {
		l.err.Store(&err)
	}
}

// Err returns the last write, reopen or close error, or nil.
func (l *Log) Err() error {
	if p := l.err.Load(); p != nil {
		return *p
	}
	return nil
}

// ErrClosed is returned by Reopen after Close.
var ErrClosed = errors.New("accesslog: log closed")

// Reopen opens the path again (after logrotate renamed the file). Lines
// logged before the call go to the old file, later ones to the new: each loop
// first hands over the lines it holds (those of the last FlushEvery), and the
// writer writes every buffer queued before it reopens. A loop that does not
// answer within reopenWait (it has stopped) keeps its lines for the new file.
func (l *Log) Reopen() error {
	l.flushLoops()
	reply := make(chan error, 1)
	select {
	case l.ctl <- reply:
		return <-reply
	case <-l.done:
		return ErrClosed
	}
}

// reopenWait bounds how long Reopen waits for the loops to hand over their
// lines.
const reopenWait = time.Second

// flushLoops asks every loop to hand over the lines it holds and waits until
// each has, at most reopenWait: a stopped loop runs nothing posted to it.
func (l *Log) flushLoops() {
	ran := make(chan struct{}, len(l.opts.Loops))
	for _, loop := range l.opts.Loops {
		lb := &l.loops[loop.ID()]
		loop.Post(func() {
			lb.flush()
			ran <- struct{}{}
		})
	}
	timeout := time.After(reopenWait)
	for range l.opts.Loops {
		select {
		case <-ran:
		case <-timeout:
			return
		case <-l.done:
			return
		}
	}
}

// Close writes every buffered line and closes the file. The loops must have
// stopped (the server shut down): Close takes their buffers itself.
func (l *Log) Close() error {
	l.stop.Do(func() {
		for i := range l.loops {
			lb := &l.loops[i]
			if lb.pending > 0 {
				l.full <- lb.buf // blocks until the writer takes it: nothing is lost
				lb.lines.Store(lb.lines.Load() + lb.pending)
				lb.pending, lb.buf = 0, nil
			}
		}
		close(l.full)
		<-l.done
	})
	return l.Err()
}

// Counts returns the lines handed to the writer and the lines dropped.
func (l *Log) Counts() (lines, dropped uint64) {
	for i := range l.loops {
		lines += l.loops[i].lines.Load()
		dropped += l.loops[i].dropped.Load()
	}
	return lines, dropped
}

// Samples adds the log's counters to a metrics snapshot.
func (l *Log) Samples(add func(metrics.Sample)) {
	lines, dropped := l.Counts()
	metrics.LogSamples(l.opts.Server, lines, dropped, add)
}
