//go:build linux && !galenet

package engine

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lastWord answers any input with a fixed reply and closes once it is sent, as an
// HTTP server answers a request that asked for Connection: close.
type lastWord struct {
	NopHandler
	reply  string
	linger bool
}

func (h *lastWord) OnData(c *Conn, in []byte) int {
	c.Write([]byte(h.reply))
	c.CloseAfterFlush(h.linger)
	return len(in)
}

// tcpSeg is one TCP segment seen on the loopback interface.
type tcpSeg struct {
	src, dst uint16
	flags    byte
	payload  int
}

// captureLoopback returns a packet socket that sees the IPv4 TCP segments on lo
// from or to port, or skips the test (with the reason) where the process may not
// open one. The kernel filters (a classic BPF program) and the socket has a large
// buffer: on a busy machine every loopback packet would otherwise compete for the
// socket's queue, and the segments the test needs be dropped.
func captureLoopback(t *testing.T, port uint16) int {
	t.Helper()
	proto := int(htons(unix.ETH_P_IP))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		t.Skipf("packet capture needs CAP_NET_RAW: socket(AF_PACKET): %v", err)
	}
	// On a SOCK_DGRAM packet socket the program sees the IP header at offset 0.
	p := uint32(port)
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 9},                        // 0: A = protocol
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jf: 6, K: unix.IPPROTO_TCP}, // 1: not TCP: drop
		{Code: unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH, K: 0},                       // 2: X = header length
		{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_IND, K: 0},                        // 3: A = source port
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 2, K: p},                // 4: ours: accept
		{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_IND, K: 2},                        // 5: A = destination port
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jf: 1, K: p},                // 6: not ours: drop
		{Code: unix.BPF_RET | unix.BPF_K, K: 1 << 18},                                // 7: accept
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},                                      // 8: drop
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) // best effort: the filter matters more
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: lo.Index}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// readSegments reads captured packets until a read times out with nothing and
// returns the TCP segments between the two ports, in order.
func readSegments(fd int, a, b uint16) []tcpSeg {
	var segs []tcpSeg
	buf := make([]byte, 70000)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return segs
		}
		p := buf[:n]
		if len(p) < 20 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_TCP {
			continue
		}
		ihl := int(p[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(p[2:4]))
		if total > len(p) || len(p) < ihl+20 {
			continue
		}
		tcp := p[ihl:total]
		s := tcpSeg{src: binary.BigEndian.Uint16(tcp[0:2]), dst: binary.BigEndian.Uint16(tcp[2:4]), flags: tcp[13]}
		if !(s.src == a && s.dst == b || s.src == b && s.dst == a) {
			continue
		}
		s.payload = len(tcp) - int(tcp[12]>>4)*4
		segs = append(segs, s)
	}
}

// TestFINTravelsWithLastResponse checks that a connection closed after its last
// output (CloseAfterFlush) sends that output and its FIN in one segment, on
// either engine, with and without linger: the peer takes one segment (and one
// wake-up) less per connection.
func TestFINTravelsWithLastResponse(t *testing.T) {
	for _, linger := range []bool{false, true} {
		t.Run("linger="+strconv.FormatBool(linger), func(t *testing.T) {
			h := &lastWord{reply: "goodbye\n", linger: linger}
			_, addr := startEngine(t, h, 1)
			_, sp, _ := net.SplitHostPort(addr)
			server, _ := strconv.Atoi(sp)
			fd := captureLoopback(t, uint16(server))
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("bye?")); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil || string(got) != h.reply {
				t.Fatalf("read %q, %v; want %q then EOF", got, err, h.reply)
			}
			c.Close()
			_, cp, _ := net.SplitHostPort(c.LocalAddr().String())
			client, _ := strconv.Atoi(cp)
			segs := readSegments(fd, uint16(server), uint16(client))
			var fins []tcpSeg
			for _, s := range segs {
				if s.src == uint16(server) && s.flags&0x01 != 0 {
					fins = append(fins, s)
				}
			}
			if len(fins) != 1 || fins[0].payload != len(h.reply) {
				t.Fatalf("server FIN segments %+v (of %d segments); want one carrying the %d-byte reply", fins, len(segs), len(h.reply))
			}
		})
	}
}

// TestDeferAccept checks ListenOptions.DeferAccept: a client that has sent nothing
// is not handed to the loop, one that sends is at once, a plain listener hands
// over at once, and adopting a socket without the option turns it off.
func TestDeferAccept(t *testing.T) {
	h := &echo{}
	e, err := New(Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := e.ListenWith("127.0.0.1:0", h, ListenOptions{DeferAccept: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Shutdown(ctx)
	}()
	fds := e.ListenerFDs()
	if v, err := unix.GetsockoptInt(fds[0], unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT); err != nil || v == 0 {
		t.Fatalf("TCP_DEFER_ACCEPT = %d, %v; want it set", v, err)
	}
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// The silent client's handshake is complete on its side, but the engine must
	// not see the connection before the deferral (at least a second) ends.
	time.Sleep(300 * time.Millisecond)
	if n := h.opened.Load(); n != 0 {
		t.Fatalf("%d connections opened before any data arrived", n)
	}
	talker, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer talker.Close()
	echoOnce(t, talker, "hello")
	if n := h.opened.Load(); n != 1 {
		t.Fatalf("opened = %d after one client spoke; want 1", n)
	}

	// The same socket adopted again without the option (as after a reload that
	// turned it off) loses it.
	d, err := unix.Dup(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ListenFDs([]int{d}, &echo{}); err != nil {
		t.Fatal(err)
	}
	if v, err := unix.GetsockoptInt(d, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT); err != nil || v != 0 {
		t.Fatalf("TCP_DEFER_ACCEPT after ListenFDs without options = %d, %v; want 0", v, err)
	}
}

// TestLastResponseSurvivesUnreadInput checks that a connection closed right after
// its response (CloseAfterFlush without linger) while the peer's bytes are still
// unread in the socket delivers the response before the kernel resets the
// connection: the response's segment, held back for the FIN, must be sent before
// close(2) turns into a reset that would discard it.
func TestLastResponseSurvivesUnreadInput(t *testing.T) {
	h := &lastWord{reply: "answer before reset\n"}
	_, addr := startEngine(t, h, 1)
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		// Far more than one read: the handler answers the first and the rest stays
		// unread in the server's socket when it closes.
		big := make([]byte, 4<<20)
		go c.Write(big)
		got := make([]byte, len(h.reply))
		_, err = io.ReadFull(c, got)
		c.Close()
		if err != nil || string(got) != h.reply {
			t.Fatalf("connection %d: read %q, %v; want the whole reply before the reset", i, got, err)
		}
	}
}
