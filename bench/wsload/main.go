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
// -proto says what fan-out clients speak over WebSocket: "raw" (the default) for a hub whose
// URL is the topic and whose messages are the published bytes (gale's topic: path, the Go
// hub, uWebSockets.js); "centrifugo" for Centrifugo's JSON client protocol: every
// connection sends connect, each subscriber subscribes to -channel, the publisher sends
// publish commands, and a delivery is a publication push whose data (a JSON string of -size
// bytes, quotes included) carries the sequence number and send time.
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
	proto   string
	channel string
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
	flag.StringVar(&o.io, "io", "auto", "epoll, go, or auto (epoll on Linux without -deflate; fan-out with -proto raw only)")
	flag.StringVar(&o.proto, "proto", "raw", "fanout: raw (the URL is the topic) or centrifugo (its JSON protocol)")
	flag.StringVar(&o.channel, "channel", "bench", "fanout with -proto centrifugo: the channel")
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
			if len(f.Payload) >= 2 {
				return nil, fmt.Errorf("server closed the WebSocket: %d %q", binary.BigEndian.Uint16(f.Payload), f.Payload[2:])
			}
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

// dialFanout opens n subscribers and the publisher and has them join with proto.
func dialFanout(o options, proto fanoutProto, n int) (subs []*conn, pub *conn, err error) {
	defer func() {
		if err != nil {
			for _, c := range append(subs, pub) {
				if c != nil {
					c.c.Close()
				}
			}
		}
	}()
	for i := range n {
		c, err := dial(o.url)
		if err != nil {
			return subs, nil, fmt.Errorf("subscriber %d: %w", i, err)
		}
		subs = append(subs, c)
		if err := proto.join(c, true); err != nil {
			return subs, nil, fmt.Errorf("subscriber %d: %w", i, err)
		}
	}
	if pub, err = dial(o.url); err != nil {
		return subs, nil, fmt.Errorf("publisher: %w", err)
	}
	if err := proto.join(pub, false); err != nil {
		return subs, pub, fmt.Errorf("publisher: %w", err)
	}
	return subs, pub, nil
}

func runFanout(o options) error {
	proto, err := newProto(o)
	if err != nil {
		return err
	}
	subs, pub, err := dialFanout(o, proto, o.subs)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range append(subs, pub) {
			c.c.Close()
		}
	}()
	// The one-thread epoll client parses the raw protocol's frames itself; other
	// protocols run on the goroutine client.
	_, raw := proto.(*rawProto)
	switch o.io {
	case "auto":
		if epollAvailable && !o.deflate && raw {
			return runFanoutEpoll(o, subs, pub)
		}
	case "epoll":
		if o.deflate || !raw {
			return fmt.Errorf("-io epoll does not do -deflate or -proto %s", o.proto)
		}
		return runFanoutEpoll(o, subs, pub)
	case "go":
	default:
		return fmt.Errorf("unknown -io %q", o.io)
	}
	go func() { // a hub that also echoes to the publisher must not see it as a slow consumer
		for {
			msg, err := pub.recv()
			if err != nil {
				return
			}
			proto.deliveries(pub, msg, func(uint64, time.Time, int) {}) // answers pings
		}
	}()

	// received[seq%len] counts the subscribers that have message seq; the publisher waits
	// for slot seq-window to fill before sending seq.
	const ring = 1 << 16
	var received [ring]atomic.Int32
	start := time.Now()
	end := start.Add(o.dur)
	var stop atomic.Bool
	var told atomic.Int32 // subscriber errors printed
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
						if told.Add(1) <= 3 { // why subscribers end early, for bench/run --keep
							fmt.Fprintf(os.Stderr, "wsload: subscriber ended during the run: %v\n", err)
						}
					}
					return
				}
				now := time.Now()
				if now.After(end) {
					continue
				}
				s.errors += int64(proto.deliveries(c, got, func(seq uint64, sent time.Time, size int) {
					received[seq%ring].Add(1)
					s.msgs++
					s.bytes += int64(size)
					s.lat = append(s.lat, micros(now.Sub(sent)))
				}))
			}
		}()
	}
	pubStats := &stats{}
	all[len(subs)] = pubStats
	for seq := uint64(1); time.Now().Before(end); seq++ {
		if seq > uint64(o.window) {
			old := seq - uint64(o.window)
			deadline := time.Now().Add(time.Second)
			for received[old%ring].Load() < int32(len(subs)) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Microsecond)
			}
			received[old%ring].Store(0)
		}
		if err := proto.publish(pub, seq, time.Now()); err != nil {
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
	proto, err := newProto(o)
	if err != nil {
		return err
	}
	subs, pub, err := dialFanout(o, proto, 2)
	if err != nil {
		return err
	}
	start := time.Now()
	for _, c := range append(subs, pub) {
		defer c.c.Close()
		c.c.SetDeadline(start.Add(5 * time.Second))
	}
	// A hub may register a subscriber only after the handshake; keep publishing until both
	// subscribers have seen a message or the deadline passes.
	const seq = 9
	done := make(chan error, len(subs))
	for _, c := range subs {
		go func() {
			for {
				got, err := c.recv()
				if err != nil {
					done <- err
					return
				}
				var bad error
				ok := false
				proto.deliveries(c, got, func(s uint64, sent time.Time, size int) {
					if s != seq || size != o.size || sent.Before(start) || sent.After(time.Now()) {
						bad = fmt.Errorf("subscriber got message %d of %d bytes sent at %v, want %d of %d bytes", s, size, sent, seq, o.size)
					}
					ok = true
				})
				if bad != nil || ok {
					done <- bad
					return
				}
			}
		}()
	}
	go func() {
		for {
			if _, err := pub.recv(); err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	if err := proto.publish(pub, seq, time.Now()); err != nil {
		return err
	}
	for pending := len(subs); pending > 0; {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			pending--
		case <-tick.C:
			if err := proto.publish(pub, seq, time.Now()); err != nil {
				return err
			}
		}
	}
	return nil
}
