package tlsterm

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gale-server/gale/wsserver"
)

// The tests in this file send several TLS records in one TCP write, so that one
// engine read carries them all and crypto/tls takes them into its own buffer,
// and make the first of them produce more output than the engine's high-water
// mark (256 KiB) while the client does not read yet: reading stops with the
// other records inside crypto/tls. When the client then reads, the engine
// resumes reading by itself at the low-water mark, and nothing more comes from
// the socket, so only the engine's resume (Terminator.OnResume) can bring the
// held records out. Without it they wait until the connection's read timeout.

// slowTLS dials e with TLS version v over a coalescer and a small receive
// buffer (so that the server's output stays queued until the client reads).
// With early set, everything the client writes after its ClientHello is held
// until flush, so that with TLS 1.3 its Finished and the first requests leave
// in one TCP write and the handshake goroutine reads them together; the
// handshake then completes only at flush.
func slowTLS(t *testing.T, e *env, v uint16, alpn string, early bool) (*tls.Conn, *coalescer) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) {
			// A small MSS keeps the server's send buffer small (Linux sizes it
			// from the MSS), a small receive buffer keeps the window small: the
			// server's output then stays queued in the engine.
			if serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 1024); serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
			}
		})
		return serr
	}}
	nc, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(15 * time.Second))
	co := &coalescer{Conn: nc}
	cfg := &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", MinVersion: v, MaxVersion: v}
	if alpn != "" {
		cfg.NextProtos = []string{alpn}
	}
	tc := tls.Client(co, cfg)
	if early {
		co.afterFirst = true
		return tc, co
	}
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	co.hold = true
	return tc, co
}

// waitPaused waits until a delivery of one of e's connections stopped because
// reading was paused, with records possibly left inside crypto/tls: the
// condition the stall needs (the client reads only then, so that the pause is
// not avoided by a fast reader).
func waitPaused(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range e.srv.Engine().Loops() {
			found := make(chan bool, 1)
			l.Post(func() {
				any := false
				for _, c := range e.term.loops[l.ID()].conns {
					any = any || c.paused
				}
				found <- any
			})
			if <-found {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no delivery stopped on a pause: the test did not set up the stall")
}

// stalled fails the test with what is known when a read hit its deadline.
func stalled(t *testing.T, what string, err error) {
	t.Helper()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("%s: no data before the deadline: records stayed inside crypto/tls after the high-water resume", what)
	}
	t.Fatalf("%s: %v", what, err)
}

// TestHiWaterResumePipelinedHTTP1: pipelined requests for 1 MiB responses, one
// record each, in one TCP write, read slowly.
func TestHiWaterResumePipelinedHTTP1(t *testing.T) {
	e := startTLS(t, protoHandler, nil)
	for _, ver := range versions {
		for _, early := range []bool{false, true} {
			if early && ver.v == tls.VersionTLS12 {
				continue // the 1.2 client waits for the server's Finished after its own
			}
			t.Run(fmt.Sprintf("%s/early=%v", ver.name, early), func(t *testing.T) {
				tc, co := slowTLS(t, e, ver.v, "", early)
				const n = 4
				for range n {
					if _, err := tc.Write([]byte("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
						t.Fatal(err)
					}
				}
				if err := co.flush(); err != nil {
					t.Fatal(err)
				}
				waitPaused(t, e)
				br := bufio.NewReader(tc)
				for i := range n {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						stalled(t, fmt.Sprintf("response %d of %d", i+1, n), err)
					}
					b, err := io.ReadAll(resp.Body)
					if err != nil {
						stalled(t, fmt.Sprintf("body %d of %d", i+1, n), err)
					}
					if !bytes.Equal(b, bigBody) {
						t.Fatalf("response %d: %d bytes differ from /big", i+1, len(b))
					}
				}
			})
		}
	}
}

// TestHiWaterResumeH2: HEADERS of several streams, one record each, in one TCP
// write behind the preface, to a slow reader; every stream must complete.
func TestHiWaterResumeH2(t *testing.T) {
	e := startH2(t)
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			tc, co := slowTLS(t, e, ver.v, "h2", false)
			if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
				t.Fatalf("ALPN %q, want h2", p)
			}
			fr := http2.NewFramer(tc, tc)
			// Preface, settings and windows in one record.
			var first bytes.Buffer
			first.WriteString(http2.ClientPreface)
			pf := http2.NewFramer(&first, nil)
			pf.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
			pf.WriteWindowUpdate(0, 1<<31-1-65535)
			if _, err := tc.Write(first.Bytes()); err != nil {
				t.Fatal(err)
			}
			const n = 4
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			for i := range n {
				hb.Reset()
				for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "x"}, {":path", "/big"}} {
					enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
				}
				var rec bytes.Buffer // one record per request
				http2.NewFramer(&rec, nil).WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
				if _, err := tc.Write(rec.Bytes()); err != nil {
					t.Fatal(err)
				}
			}
			if err := co.flush(); err != nil {
				t.Fatal(err)
			}
			// No waitPaused: HTTP/2 bounds its own output by the layer's Buffered
			// and never pauses reading, so every record is decrypted as it comes;
			// this checks that it stays so.
			got := map[uint32]int{}
			ended := 0
			for ended < n {
				f, err := fr.ReadFrame()
				if err != nil {
					stalled(t, fmt.Sprintf("%d of %d streams ended (bytes %v)", ended, n, got), err)
				}
				switch f := f.(type) {
				case *http2.SettingsFrame:
					if !f.IsAck() {
						fr.WriteSettingsAck()
					}
				case *http2.DataFrame:
					got[f.StreamID] += len(f.Data())
					if f.StreamEnded() {
						ended++
					}
				case *http2.GoAwayFrame:
					t.Fatalf("GOAWAY %v", f.ErrCode)
				case *http2.RSTStreamFrame:
					t.Fatalf("RST_STREAM %d %v", f.StreamID, f.ErrCode)
				}
			}
			for id, k := range got {
				if k != len(bigBody) {
					t.Fatalf("stream %d: %d bytes, want %d", id, k, len(bigBody))
				}
			}
		})
	}
}

// wsFrame is a masked client frame (FIN set) with payload p.
func wsFrame(op byte, p []byte) []byte {
	b := []byte{0x80 | op}
	switch {
	case len(p) < 126:
		b = append(b, 0x80|byte(len(p)))
	case len(p) < 1<<16:
		b = append(b, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	}
	key := [4]byte{1, 2, 3, 4}
	b = append(b, key[:]...)
	for i, c := range p {
		b = append(b, c^key[i%4])
	}
	return b
}

// readWSFrame reads one unmasked, unfragmented server frame.
func readWSFrame(br *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var x [2]byte
		if _, err := io.ReadFull(br, x[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		if _, err := io.ReadFull(br, x[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(x[:])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(br, p)
	return h[0] & 0x0f, p, err
}

// TestHiWaterResumeWebSocket: a 1 MiB message and small ones behind it, each
// small one in a record of its own, in one TCP write; every echo must come back.
func TestHiWaterResumeWebSocket(t *testing.T) {
	ws, err := wsserver.New(wsserver.Echo{}, wsserver.Options{MaxMessageBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	e := startTLS(t, ws, nil)
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			tc, co := slowTLS(t, e, ver.v, "", false)
			co.hold = false
			if _, err := tc.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(tc)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 101 {
				t.Fatalf("upgrade: %v %v", resp, err)
			}
			co.hold = true
			msgs := [][]byte{bigBody}
			for i := range 4 {
				msgs = append(msgs, fmt.Appendf(nil, "small message %d", i))
			}
			for _, m := range msgs {
				if _, err := tc.Write(wsFrame(2, m)); err != nil {
					t.Fatal(err)
				}
			}
			if err := co.flush(); err != nil {
				t.Fatal(err)
			}
			waitPaused(t, e)
			for i, m := range msgs {
				op, p, err := readWSFrame(br)
				if err != nil {
					stalled(t, fmt.Sprintf("echo %d of %d", i+1, len(msgs)), err)
				}
				if op != 2 || !bytes.Equal(p, m) {
					t.Fatalf("echo %d: opcode %d, %d bytes, want %d", i+1, op, len(p), len(m))
				}
			}
		})
	}
}
