// Command wsload is the WebSocket load generator of gale's benchmarks (wrk speaks no
// WebSocket). It prints the same GALEBENCH result line as bench/wrk-report.lua, with
// "requests" counting messages received.
//
// Modes:
//
//	echo    -c connections each send a -size message and wait for its echo, in a loop
//	        (closed loop, like wrk). Latency is the round trip.
//	fanout  -subs subscribers and one publisher join the same URL (the topic); the publisher
//	        keeps -window messages in flight, a message counting as done when every
//	        subscriber has it (or after a second). Latency is publish to delivery;
//	        "requests" counts deliveries.
//
// -deflate offers permessage-deflate without context takeover, requires the server to
// accept it, compresses every message it sends and inflates what comes back compressed.
//
// -io chooses how the connections are driven: "epoll" (the default on Linux without
// -deflate) runs them all on one OS thread with raw non-blocking system calls, which costs
// the machine the least (in fan-out mode the publisher is driven from that thread too);
// "go" runs a goroutine per connection over package net.
//
// -check performs one small exchange and exits 0 if the server answered correctly.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/bench/internal/wsproto"
)

// header is the part of every message wsload writes itself: sequence number and send time.
const header = 16

type options struct {
	url     string
	mode    string
	conns   int
	subs    int
	size    int
	window  int
	dur     time.Duration
	check   bool
	deflate bool
	io      string
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "ws://127.0.0.1:8080/", "WebSocket URL")
	flag.StringVar(&o.mode, "mode", "echo", "echo or fanout")
	flag.IntVar(&o.conns, "c", 64, "connections (echo)")
	flag.IntVar(&o.subs, "subs", 1000, "subscribers (fanout)")
	flag.IntVar(&o.size, "size", 64, "message size in bytes (at least 16)")
	flag.IntVar(&o.window, "window", 16, "messages the publisher keeps in flight (fanout)")
	flag.DurationVar(&o.dur, "d", 10*time.Second, "duration")
	flag.BoolVar(&o.check, "check", false, "one exchange, exit status tells whether it was right")
	flag.BoolVar(&o.deflate, "deflate", false, "negotiate permessage-deflate and compress every message")
	flag.StringVar(&o.io, "io", "auto", "epoll, go, or auto (epoll on Linux without -deflate)")
	flag.Parse()
	o.size = max(o.size, header)
	deflate = o.deflate

	var err error
	switch {
	case o.mode == "echo" && o.check:
		err = checkEcho(o)
	case o.mode == "fanout" && o.check:
		err = checkFanout(o)
	case o.mode == "echo":
		err = runEcho(o)
	case o.mode == "fanout":
		err = runFanout(o)
	default:
		err = fmt.Errorf("unknown -mode %q", o.mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		os.Exit(1)
	}
}

// conn is one client WebSocket connection.
type conn struct {
	c   net.Conn
	br  *bufio.Reader
	out []byte // frame encoding buffer, owned by the writing goroutine
	in  []byte // payload buffer, owned by the reading goroutine
	// With permessage-deflate: the codec and the inflated message, owned by the one
	// goroutine that both sends and receives (echo); nil without it.
	z   *wsproto.Deflate
	raw []byte
}

// deflate is the -deflate flag, read by dial.
var deflate bool

func dial(rawURL string) (*conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	key := wsproto.NewKey()
	path := u.RequestURI()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	offer := ""
	if deflate {
		offer = wsproto.DeflateOffer
	}
	if _, err := c.Write(wsproto.UpgradeRequestExt(u.Host, path, key, offer)); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 16<<10)
	ext, err := wsproto.ReadUpgradeResponseExt(br, key)
	if err != nil {
		c.Close()
		return nil, err
	}
	w := &conn{c: c, br: br, in: make([]byte, 64<<10)}
	if deflate {
		if !strings.HasPrefix(ext, "permessage-deflate") {
			c.Close()
			return nil, fmt.Errorf("server did not accept permessage-deflate (extensions %q)", ext)
		}
		w.z = wsproto.NewDeflate()
	}
	c.SetDeadline(time.Time{})
	return w, nil
}

func (w *conn) send(payload []byte) error {
	if w.z != nil {
		w.out = wsproto.AppendCompressed(w.out[:0], wsproto.OpBinary, w.z.Compress(payload), true)
	} else {
		w.out = wsproto.AppendFrame(w.out[:0], wsproto.OpBinary, payload, true)
	}
	_, err := w.c.Write(w.out)
	return err
}

// recv returns the next data message, answering pings on the way.
func (w *conn) recv() ([]byte, error) {
	for {
		f, err := wsproto.ReadFrame(w.br, w.in)
		if err != nil {
			return nil, err
		}
		switch f.Opcode {
		case wsproto.OpText, wsproto.OpBinary:
			if f.Rsv1 && w.z != nil {
				w.raw, err = w.z.Inflate(w.raw[:0], f.Payload)
				return w.raw, err
			}
			return f.Payload, nil
		case wsproto.OpClose:
			return nil, fmt.Errorf("server closed the WebSocket")
		}
	}
}

func message(size int, seq uint64, now time.Time) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint64(p, seq)
	binary.BigEndian.PutUint64(p[8:], uint64(now.UnixNano()))
	for i := header; i < size; i++ {
		p[i] = 'a' + byte(i%26)
	}
	return p
}

func stamp(p []byte, seq uint64, now time.Time) {
	binary.BigEndian.PutUint64(p, seq)
	binary.BigEndian.PutUint64(p[8:], uint64(now.UnixNano()))
}

// stats collects one goroutine's results; merged at the end.
type stats struct {
	msgs, bytes, errors int64
	lat                 []uint32 // microseconds
}

func report(all []*stats, elapsed time.Duration) {
	var t stats
	for _, s := range all {
		t.msgs += s.msgs
		t.bytes += s.bytes
		t.errors += s.errors
		t.lat = append(t.lat, s.lat...)
	}
	slices.Sort(t.lat)
	pct := func(p float64) uint32 {
		if len(t.lat) == 0 {
			return 0
		}
		i := max(int(float64(len(t.lat))*p)-1, 0)
		return t.lat[i]
	}
	fmt.Printf("%d messages, %d payload bytes in %.3f s = %.0f msg/s\n", t.msgs, t.bytes, elapsed.Seconds(),
		float64(t.msgs)/elapsed.Seconds())
	fmt.Printf("GALEBENCH requests=%d bytes=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=0\n",
		t.msgs, t.bytes, elapsed.Microseconds(), pct(0.50), pct(0.99), t.errors)
}

func micros(d time.Duration) uint32 { return uint32(min(d.Microseconds(), 1<<32-1)) }

func runEcho(o options) error {
	conns := make([]*conn, o.conns)
	for i := range conns {
		c, err := dial(o.url)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		defer c.c.Close()
		conns[i] = c
	}
	switch o.io {
	case "auto":
		if epollAvailable && !o.deflate {
			return runEchoEpoll(o, conns)
		}
	case "epoll":
		if o.deflate {
			return fmt.Errorf("-io epoll does not do -deflate")
		}
		return runEchoEpoll(o, conns)
	case "go":
	default:
		return fmt.Errorf("unknown -io %q", o.io)
	}
	start := time.Now()
	end := start.Add(o.dur)
	all := make([]*stats, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		s := &stats{}
		all[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.c.SetDeadline(end.Add(2 * time.Second))
			p := message(o.size, 0, start)
			for seq := uint64(1); ; seq++ {
				now := time.Now()
				if now.After(end) {
					return
				}
				stamp(p, seq, now)
				if err := c.send(p); err != nil {
					s.errors++
					return
				}
				got, err := c.recv()
				if err != nil {
					s.errors++
					return
				}
				if len(got) != o.size || binary.BigEndian.Uint64(got) != seq {
					s.errors++
					return
				}
				done := time.Now()
				if done.After(end) {
					return
				}
				s.msgs++
				s.bytes += int64(len(got))
				s.lat = append(s.lat, micros(done.Sub(now)))
			}
		}()
	}
	wg.Wait()
	report(all, o.dur)
	return nil
}

func runFanout(o options) error {
	subs := make([]*conn, o.subs)
	for i := range subs {
		c, err := dial(o.url)
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		defer c.c.Close()
		subs[i] = c
	}
	pub, err := dial(o.url)
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	defer pub.c.Close()
	switch o.io {
	case "auto":
		if epollAvailable && !o.deflate {
			return runFanoutEpoll(o, subs, pub)
		}
	case "epoll":
		if o.deflate {
			return fmt.Errorf("-io epoll does not do -deflate")
		}
		return runFanoutEpoll(o, subs, pub)
	case "go":
	default:
		return fmt.Errorf("unknown -io %q", o.io)
	}
	go func() { // a hub that also echoes to the publisher must not see it as a slow consumer
		for {
			if _, err := pub.recv(); err != nil {
				return
			}
		}
	}()

	// received[seq%len] counts the subscribers that have message seq; the publisher waits
	// for slot seq-window to fill before sending seq.
	const ring = 1 << 16
	var received [ring]atomic.Int32
	start := time.Now()
	end := start.Add(o.dur)
	var stop atomic.Bool
	all := make([]*stats, len(subs)+1)
	var wg sync.WaitGroup
	for i, c := range subs {
		s := &stats{}
		all[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := c.recv()
				if err != nil {
					if !stop.Load() {
						s.errors++
					}
					return
				}
				now := time.Now()
				if len(got) < header || now.After(end) {
					continue
				}
				seq := binary.BigEndian.Uint64(got)
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(got[8:])))
				received[seq%ring].Add(1)
				s.msgs++
				s.bytes += int64(len(got))
				s.lat = append(s.lat, micros(now.Sub(sent)))
			}
		}()
	}
	pubStats := &stats{}
	all[len(subs)] = pubStats
	p := message(o.size, 0, start)
	for seq := uint64(1); time.Now().Before(end); seq++ {
		if seq > uint64(o.window) {
			old := seq - uint64(o.window)
			deadline := time.Now().Add(time.Second)
			for received[old%ring].Load() < int32(len(subs)) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Microsecond)
			}
			received[old%ring].Store(0)
		}
		stamp(p, seq, time.Now())
		if err := pub.send(p); err != nil {
			pubStats.errors++
			break
		}
	}
	time.Sleep(time.Until(end))
	stop.Store(true)
	for _, c := range subs {
		c.c.Close()
	}
	wg.Wait()
	report(all, o.dur)
	return nil
}

func checkEcho(o options) error {
	c, err := dial(o.url)
	if err != nil {
		return err
	}
	defer c.c.Close()
	c.c.SetDeadline(time.Now().Add(5 * time.Second))
	want := message(o.size, 7, time.Now())
	if err := c.send(want); err != nil {
		return err
	}
	got, err := c.recv()
	if err != nil {
		return err
	}
	if string(got) != string(want) {
		return fmt.Errorf("echo returned %d different bytes", len(got))
	}
	return nil
}

func checkFanout(o options) error {
	var cs [3]*conn
	for i := range cs {
		c, err := dial(o.url)
		if err != nil {
			return err
		}
		defer c.c.Close()
		c.c.SetDeadline(time.Now().Add(5 * time.Second))
		cs[i] = c
	}
	// A hub may register a subscriber only after the handshake; keep publishing until both
	// subscribers have seen a message or the deadline passes.
	want := message(o.size, 9, time.Now())
	done := make(chan error, 2)
	for _, c := range cs[1:] {
		go func() {
			got, err := c.recv()
			if err == nil && string(got) != string(want) {
				err = fmt.Errorf("subscriber got %d different bytes", len(got))
			}
			done <- err
		}()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	if err := cs[0].send(want); err != nil {
		return err
	}
	for pending := 2; pending > 0; {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			pending--
		case <-tick.C:
			if err := cs[0].send(want); err != nil {
				return err
			}
		}
	}
	return nil
}
