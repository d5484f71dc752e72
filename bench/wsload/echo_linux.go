package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/gale-server/gale/bench/internal/wsproto"
	"golang.org/x/sys/unix"
)

// epollAvailable says runEchoEpoll and runFanoutEpoll exist on this system.
const epollAvailable = true

// echoState is one connection of the epoll echo client, owned by its one thread.
type echoState struct {
	fd   int
	seq  uint64
	sent time.Time
	in   []byte // bytes read and not yet parsed
	rnd  uint64 // xorshift state for the masking keys
}

// runEchoEpoll is the echo mode on one OS thread with level-triggered epoll and raw
// non-blocking reads and writes: per round trip one write and one read, and one
// epoll_wait for all the connections that became readable together. It costs the
// shared two cores much less than a goroutine per connection (Go's netpoller adds a
// read that fails with EAGAIN, parking and waking per message), so the servers get
// more of the machine. The connections are dialled and upgraded with net and then
// handed over as duplicated descriptors.
func runEchoEpoll(o options, conns []*conn) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	defer unix.Close(ep)
	states := make([]*echoState, len(conns))
	byFD := make(map[int32]*echoState, len(conns))
	for i, c := range conns {
		fd, err := adoptFD(ep, c, func(fd int) int32 { return int32(fd) })
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		s := &echoState{fd: fd, in: make([]byte, 0, 64<<10), rnd: uint64(i)*0x9E3779B97F4A7C15 | 1}
		states[i] = s
		byFD[int32(fd)] = s
	}
	var st stats
	st.lat = make([]uint32, 0, 1<<20)
	p := message(o.size, 0, time.Now())
	out := make([]byte, 0, o.size+14)
	start := time.Now()
	end := start.Add(o.dur)
	send := func(s *echoState, now time.Time) error {
		s.seq++
		s.sent = now
		stamp(p, s.seq, now)
		s.rnd ^= s.rnd << 13
		s.rnd ^= s.rnd >> 7
		s.rnd ^= s.rnd << 17
		var key [4]byte
		binary.LittleEndian.PutUint32(key[:], uint32(s.rnd))
		out = wsproto.AppendMasked(out[:0], wsproto.OpBinary, p, key)
		n, err := unix.Write(s.fd, out)
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if n != len(out) {
			return fmt.Errorf("short write (%d of %d bytes)", n, len(out))
		}
		return nil
	}
	for _, s := range states {
		if err := send(s, time.Now()); err != nil {
			return err
		}
	}
	events := make([]unix.EpollEvent, len(states))
	for {
		wait := time.Until(end)
		if wait <= 0 {
			break
		}
		n, err := unix.EpollWait(ep, events, int(wait.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			s := byFD[ev.Fd]
			if err := s.readable(o, &st, send, end); err != nil {
				st.errors++
				report([]*stats{&st}, o.dur)
				return err
			}
		}
	}
	report([]*stats{&st}, o.dur)
	return nil
}

// readable reads what has arrived on s, and for each echo completed records it and sends
// the next message (pings are answered, a close frame is an error).
func (s *echoState) readable(o options, st *stats, send func(*echoState, time.Time) error, end time.Time) error {
	if len(s.in) == cap(s.in) {
		return errors.New("server frame larger than the read buffer")
	}
	n, err := readSome(s.fd, s.in[len(s.in):cap(s.in)])
	if n == 0 {
		return err
	}
	s.in = s.in[:len(s.in)+n]
	rest, err := frames(s.fd, s.in, func(p []byte) error {
		if len(p) != o.size || binary.BigEndian.Uint64(p) != s.seq {
			return fmt.Errorf("echo of message %d wrong (%d bytes)", s.seq, len(p))
		}
		now := time.Now()
		if now.After(end) {
			return errEnd
		}
		st.msgs++
		st.bytes += int64(len(p))
		st.lat = append(st.lat, micros(now.Sub(s.sent)))
		return send(s, now)
	})
	switch {
	case err == errEnd:
		s.in = s.in[:0]
	case err != nil:
		return err
	default:
		s.in = s.in[:copy(s.in, rest)]
	}
	return nil
}

// errEnd stops frames when the run is over.
var errEnd = errors.New("the run is over")

// frames parses the complete frames at the start of in, handles the control frames
// (see control) and calls data with the payload of each text or binary one, stopping
// at its first error. It returns the incomplete frame left at the end of in.
func frames(fd int, in []byte, data func(payload []byte) error) ([]byte, error) {
	for {
		f, used, err := wsproto.ParseFrame(in)
		if err == wsproto.ErrShort {
			return in, nil
		}
		if err != nil {
			return in, err
		}
		if err := control(fd, f); err != nil {
			return in, err
		}
		if f.Opcode == wsproto.OpText || f.Opcode == wsproto.OpBinary {
			if err := data(f.Payload); err != nil {
				return in, err
			}
		}
		in = in[used:]
	}
}

// readSome reads from the non-blocking fd into b. It returns 0 and nil when nothing
// has arrived, and an error for a failed read or the end of the stream.
func readSome(fd int, b []byte) (int, error) {
	n, err := unix.Read(fd, b)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read: %w", err)
	case n == 0:
		return 0, errors.New("server closed the connection")
	}
	return n, nil
}

// control handles a control frame received on fd: a ping is answered, a close frame
// is an error. Other frames are left to the caller.
func control(fd int, f wsproto.Frame) error {
	switch f.Opcode {
	case wsproto.OpClose:
		return errors.New("server closed the WebSocket")
	case wsproto.OpPing:
		pong := wsproto.AppendMasked(nil, wsproto.OpPong, f.Payload, [4]byte{1, 2, 3, 4})
		if err := writeAll(fd, pong); err != nil {
			return fmt.Errorf("pong: %w", err)
		}
	}
	return nil
}

// adoptFD takes c out of Go's netpoller (dupFD) and registers its descriptor with the
// epoll instance ep for reading, with key(fd) as the event's data. It fails if the
// server already sent data that c's reader buffered, since the raw reads would miss it.
// On success the caller owns (and closes) the descriptor.
func adoptFD(ep int, c *conn, key func(fd int) int32) (int, error) {
	if c.br.Buffered() > 0 {
		return -1, errors.New("server sent data before the first message")
	}
	fd, err := dupFD(c.c)
	if err != nil {
		return -1, err
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: key(fd)}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("epoll_ctl: %w", err)
	}
	return fd, nil
}

// dupFD returns a non-blocking duplicate of c's descriptor and closes c, leaving the
// socket to the duplicate (and out of Go's netpoller).
func dupFD(c net.Conn) (int, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return -1, errors.New("not a TCP connection")
	}
	f, err := tc.File()
	if err != nil {
		return -1, err
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return -1, fmt.Errorf("dup: %w", err)
	}
	c.Close()
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set non-blocking: %w", err)
	}
	return fd, nil
}
