package pubsub

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
)

// heavyChildEnv makes the test binary act as the heavy test's client process (the
// subscribers hold as many descriptors as the server does, more than one process
// may open here).
const heavyChildEnv = "GALE_PUBSUB_HEAVY_CLIENT"

func TestMain(m *testing.M) {
	if addr := os.Getenv(heavyChildEnv); addr != "" {
		subs, _ := strconv.Atoi(os.Getenv("GALE_PUBSUB_SUBS"))
		msgs, _ := strconv.Atoi(os.Getenv("GALE_PUBSUB_MSGS"))
		if err := heavyClient(addr, subs, msgs); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// TestHeavyFanOutInOrder puts 10,000 subscribers (GALE_PUBSUB_SUBS) on one topic of
// a two-loop hub and publishes 100,000 64-byte messages (GALE_PUBSUB_MSGS) from one
// publisher, keeping at most 1,000 in flight. Every subscriber must receive every
// message, in order, exactly once; the hub must drop none.
func TestHeavyFanOutInOrder(t *testing.T) {
	if os.Getenv("GALE_HEAVY") == "" {
		t.Skip("heavy: set GALE_HEAVY=1 (10,000 subscribers x 100,000 messages)")
	}
	subs, msgs := envInt("GALE_PUBSUB_SUBS", 10000), envInt("GALE_PUBSUB_MSGS", 100000)
	h := New(Options{Loops: 2, CopyMax: envInt("GALE_PUBSUB_COPYMAX", 0)})
	hd, err := NewHandler(h, HandlerOptions{Prefix: "/ws/", Mode: PathMode,
		WebSocket: wsOptionsNoTimers()})
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, hd, func(so *server.Options) { so.Workers = 2 })
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), heavyChildEnv+"="+srv.Addr(),
		fmt.Sprintf("GALE_PUBSUB_SUBS=%d", subs), fmt.Sprintf("GALE_PUBSUB_MSGS=%d", msgs))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	t.Logf("client: %s", strings.TrimSpace(string(out)))
	st := h.Stats()
	if err != nil {
		t.Fatalf("client: %v; hub %+v", err, st)
	}
	if st.Dropped != 0 || st.Closed != 0 {
		t.Fatalf("hub dropped %d and closed %d", st.Dropped, st.Closed)
	}
	if want := uint64(subs) * uint64(msgs); st.Delivered < want {
		t.Fatalf("hub delivered %d, want %d", st.Delivered, want)
	}
	t.Logf("%d deliveries in %v = %.0f deliveries/s (connect included)", st.Delivered, elapsed, float64(st.Delivered)/elapsed.Seconds())
}

// heavyClient connects subs subscribers and a publisher to ws://addr/ws/heavy, sends
// msgs messages with a window of 1,000, and checks every subscriber's sequence.
func heavyClient(addr string, subs, msgs int) error {
	const window = 1000
	type sub struct {
		got atomic.Int64 // messages received in order
		_   [56]byte
	}
	ss := make([]sub, subs)
	conns := make([]net.Conn, subs)
	for i := range conns {
		c, err := rawUpgrade(addr, "/ws/heavy")
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		conns[i] = c
	}
	pub, err := rawUpgrade(addr, "/ws/heavy")
	if err != nil {
		return err
	}
	errs := make(chan error, subs)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- readSeq(c, &ss[i].got, int64(msgs))
		}()
	}
	// Wait until every subscriber is registered: a probe message with sequence 0 is
	// not counted; keep sending it until all have seen one.
	frame := make([]byte, 0, 80)
	payload := make([]byte, 64)
	mask := [4]byte{1, 2, 3, 4}
	sendMsg := func(seq uint64) error {
		binary.BigEndian.PutUint64(payload, seq)
		frame = append(frame[:0], 0x82, 0x80|byte(len(payload)))
		frame = append(frame, mask[:]...)
		for i, b := range payload {
			frame = append(frame, b^mask[i%4])
		}
		_, err := pub.Write(frame)
		return err
	}
	for seq := 1; seq <= msgs; seq++ {
		if seq > window && seq%100 == 0 {
			deadline := time.Now().Add(60 * time.Second)
			for {
				low := int64(msgs)
				for i := range ss {
					low = min(low, ss[i].got.Load())
				}
				if low >= int64(seq-window) {
					break
				}
				if time.Now().After(deadline) {
					select {
					case err := <-errs:
						return fmt.Errorf("stalled at %d: slowest subscriber has %d; a subscriber failed: %v", seq, low, err)
					default:
					}
					return fmt.Errorf("stalled at %d: slowest subscriber has %d", seq, low)
				}
				time.Sleep(200 * time.Microsecond)
			}
		}
		if err := sendMsg(uint64(seq)); err != nil {
			return err
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Printf("ok: %d subscribers received %d messages each, in order\n", subs, msgs)
	return nil
}

// readSeq reads unmasked server frames carrying sequence numbers 1, 2, … and fails
// on any gap, repeat or reordering.
func readSeq(c net.Conn, got *atomic.Int64, want int64) error {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	var hdr [2]byte
	buf := make([]byte, 64<<10)
	next := uint64(1)
	for int64(next) <= want {
		c.SetReadDeadline(time.Now().Add(90 * time.Second))
		if _, err := readFull(br, hdr[:]); err != nil {
			return fmt.Errorf("at %d: %w", next, err)
		}
		n := int(hdr[1] & 0x7f)
		if n == 126 {
			var ext [2]byte
			if _, err := readFull(br, ext[:]); err != nil {
				return err
			}
			n = int(binary.BigEndian.Uint16(ext[:]))
		}
		if n > len(buf) || hdr[1]&0x80 != 0 {
			return fmt.Errorf("unexpected frame header %x", hdr)
		}
		if _, err := readFull(br, buf[:n]); err != nil {
			return err
		}
		if hdr[0]&0x0f != 2 || n < 8 {
			return fmt.Errorf("unexpected frame opcode %x length %d", hdr[0], n)
		}
		if seq := binary.BigEndian.Uint64(buf); seq != next {
			return fmt.Errorf("got message %d, want %d", seq, next)
		}
		next++
		got.Store(int64(next - 1))
	}
	return nil
}

func readFull(br *bufio.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := br.Read(p[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// rawUpgrade opens a WebSocket with a hand-written handshake.
func rawUpgrade(addr, path string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(k[:]) + "\r\n\r\n"
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	// Read the 101 head byte by byte so that no frame byte is consumed here.
	var head []byte
	one := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := c.Read(one); err != nil {
			c.Close()
			return nil, err
		}
		head = append(head, one[0])
		if len(head) > 4096 {
			c.Close()
			return nil, fmt.Errorf("handshake response too long")
		}
	}
	if !strings.HasPrefix(string(head), "HTTP/1.1 101 ") {
		c.Close()
		return nil, fmt.Errorf("handshake: %q", strings.SplitN(string(head), "\r\n", 2)[0])
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
