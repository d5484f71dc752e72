package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/gale-server/gale/bench/internal/wsproto"
	"golang.org/x/sys/unix"
)

// fanRing is the number of sequence slots the fan-out client tracks; the window must be
// smaller.
const fanRing = 1 << 16

// fanSub is one subscriber of the epoll fan-out client, owned by its one thread.
type fanSub struct {
	fd   int
	rest []byte // the beginning of a frame a read ended in, carried to the next read
}

// fanout is the state of runFanoutEpoll, owned by its one thread.
type fanout struct {
	o        options
	subs     []*fanSub
	pub      int // the publisher's descriptor
	pubRnd   uint64
	payload  []byte
	out      []byte
	buf      []byte // the shared read buffer
	received [fanRing]int32
	sentAt   [fanRing]int64 // UnixNano the message of each in-flight slot was sent
	sent     uint64         // last sequence number published
	done     uint64         // every sequence number up to done is complete (or timed out)
	end      time.Time
	st       stats
}

// runFanoutEpoll is the fan-out mode on one OS thread with level-triggered epoll and raw
// non-blocking reads: one read drains everything a subscriber has (hundreds of frames),
// one clock reading stamps them all, and a delivery costs a frame parse and a counter.
// The publisher is driven from the same thread: whenever the oldest in-flight message
// has reached every subscriber (or has been out for a second) the next one goes out, so
// -window messages stay in flight without a polling goroutine. The goroutine client
// (-io go) spends a goroutine wake-up and several reads per delivery and on a two-core
// machine competes with the server it measures.
func runFanoutEpoll(o options, subs []*conn, pub *conn) error {
	if o.window >= fanRing {
		return fmt.Errorf("-window must be below %d", fanRing)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	defer unix.Close(ep)
	f := &fanout{o: o, subs: make([]*fanSub, len(subs)), buf: make([]byte, 256<<10)}
	for i, c := range subs {
		fd, err := adoptFD(ep, c, func(int) int32 { return int32(i) })
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		f.subs[i] = &fanSub{fd: fd}
	}
	if f.pub, err = adoptFD(ep, pub, func(int) int32 { return -1 }); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	defer unix.Close(f.pub)
	f.pubRnd = 0x9E3779B97F4A7C15
	f.st.lat = make([]uint32, 0, 1<<22)
	cpu0 := cpuTime()
	start := time.Now()
	f.end = start.Add(o.dur)
	f.payload = message(o.size, 0, start)
	events := make([]unix.EpollEvent, 1024)
	for {
		now := time.Now()
		if !now.Before(f.end) {
			break
		}
		if err := f.publish(now); err != nil {
			return err
		}
		wait := f.end.Sub(now)
		if f.sent > f.done {
			wait = min(wait, time.Until(time.Unix(0, f.sentAt[(f.done+1)%fanRing]+int64(time.Second))))
		}
		n, err := unix.EpollWait(ep, events, max(int(wait.Milliseconds()), 0)+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			if ev.Fd < 0 {
				err = f.drainPublisher()
			} else {
				err = f.readable(f.subs[ev.Fd])
			}
			if err != nil {
				f.st.errors++
				report([]*stats{&f.st}, o.dur)
				return err
			}
		}
	}
	cpu := cpuTime() - cpu0
	fmt.Printf("client CPU %.3f s during the run, %.3f us per delivery\n", cpu.Seconds(),
		float64(cpu.Microseconds())/float64(max(f.st.msgs, 1)))
	report([]*stats{&f.st}, o.dur)
	return nil
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// publish marks complete the in-flight messages every subscriber has (or that have been
// out for a second) and sends new ones until -window are in flight, all in one write: a
// server then reads them together rather than waking on the first and taking the rest
// in a later iteration. Written one by one, the window splits into batches (2 and 14 of
// 16, say) that persist for the whole run, because each completed batch is replaced by
// one of the same size, and which split a run falls into depends on how the server's
// wake-up races the publisher's writes.
func (f *fanout) publish(now time.Time) error {
	for f.done < f.sent {
		slot := (f.done + 1) % fanRing
		if f.received[slot] < int32(len(f.subs)) && now.UnixNano()-f.sentAt[slot] < int64(time.Second) {
			break
		}
		f.received[slot] = 0
		f.done++
	}
	f.out = f.out[:0]
	for f.sent-f.done < uint64(f.o.window) {
		f.sent++
		slot := f.sent % fanRing
		f.received[slot] = 0
		f.sentAt[slot] = now.UnixNano()
		stamp(f.payload, f.sent, now)
		f.pubRnd ^= f.pubRnd << 13
		f.pubRnd ^= f.pubRnd >> 7
		f.pubRnd ^= f.pubRnd << 17
		var key [4]byte
		binary.LittleEndian.PutUint32(key[:], uint32(f.pubRnd))
		f.out = wsproto.AppendMasked(f.out, wsproto.OpBinary, f.payload, key)
	}
	if len(f.out) == 0 {
		return nil
	}
	if err := writeAll(f.pub, f.out); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	return nil
}

// writeAll writes b to the non-blocking fd, waiting for room if the socket is full.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		switch {
		case err == unix.EAGAIN:
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if _, err := unix.Poll(fds, 1000); err != nil && err != unix.EINTR {
				return fmt.Errorf("poll: %w", err)
			}
			continue
		case err == unix.EINTR:
			continue
		case err != nil:
			return fmt.Errorf("write: %w", err)
		}
		b = b[n:]
	}
	return nil
}

// drainPublisher reads and drops what the server sends the publisher (a hub that echoes
// to the sender must not see it as a slow consumer).
func (f *fanout) drainPublisher() error {
	if _, err := readSome(f.pub, f.buf); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	return nil
}

// readable reads what has arrived for s and counts every complete message in it; pings
// are answered and a close frame is an error.
func (f *fanout) readable(s *fanSub) error {
	held := copy(f.buf, s.rest)
	n, err := readSome(s.fd, f.buf[held:])
	if n == 0 {
		return err
	}
	now := time.Now()
	counting := now.Before(f.end)
	nowNano := now.UnixNano()
	in, err := frames(s.fd, f.buf[:held+n], func(p []byte) error {
		if len(p) < header || !counting {
			return nil
		}
		seq := binary.BigEndian.Uint64(p)
		sent := int64(binary.BigEndian.Uint64(p[8:]))
		if seq+fanRing > f.sent && seq > f.done {
			f.received[seq%fanRing]++
		}
		f.st.msgs++
		f.st.bytes += int64(len(p))
		f.st.lat = append(f.st.lat, micros(time.Duration(nowNano-sent)))
		return nil
	})
	if err != nil {
		return err
	}
	if len(in) == len(f.buf) {
		return errors.New("server frame larger than the read buffer")
	}
	s.rest = append(s.rest[:0], in...)
	return nil
}
