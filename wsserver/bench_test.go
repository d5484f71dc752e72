package wsserver

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/server/servertest"
	"github.com/gale-server/gale/websocket"
)

// BenchmarkEchoRoundTrip measures the native echo over TCP on 127.0.0.1: 64-byte binary
// messages, 16 connections in a closed loop (one message in flight each), optionally
// with permessage-deflate. Profile the server side with -cpuprofile / -memprofile; the
// allocations it reports include the clients' (a few per round trip for the syscalls).
func BenchmarkEchoRoundTrip(b *testing.B) {
	for _, tc := range []struct {
		name string
		ext  string
	}{
		{"plain", ""},
		{"deflate", "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var opts Options
			opts.Compression = tc.ext != ""
			ws, err := New(Echo{}, opts)
			if err != nil {
				b.Fatal(err)
			}
			addr := servertest.Start(b, ws, nil).Addr()
			const conns = 16
			cs := make([]net.Conn, conns)
			for i := range cs {
				cs[i] = benchDial(b, addr, tc.ext)
			}
			payload := make([]byte, 64)
			for i := range payload {
				payload[i] = 'a' + byte(i%26)
			}
			msg := websocket.AppendFrame(nil, true, websocket.OpBinary, false, payload, &[4]byte{1, 2, 3, 4})
			if tc.ext != "" {
				comp := websocket.NewCompressor(0)
				out, _ := comp.Compress(nil, payload, false, 15)
				msg = websocket.AppendFrame(nil, true, websocket.OpBinary, true, out, &[4]byte{1, 2, 3, 4})
			}
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N/conns + 1
			for _, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					br := bufio.NewReader(c)
					var rd websocket.Reader
					rd.Role = websocket.RoleClient
					rd.Compression = tc.ext != ""
					buf := make([]byte, 0, 4096)
					for range per {
						if _, err := c.Write(msg); err != nil {
							b.Error(err)
							return
						}
						for {
							f, n, err := rd.ReadFrame(buf)
							if err == nil {
								buf = append(buf[:0], buf[n:]...)
								if f.Opcode == websocket.OpBinary {
									break
								}
								continue
							}
							if err != websocket.ErrNeedMore {
								b.Error(err)
								return
							}
							if len(buf) == cap(buf) {
								buf = append(buf, 0)[:len(buf)]
							}
							m, err := br.Read(buf[len(buf):cap(buf)])
							if err != nil {
								b.Error(err)
								return
							}
							buf = buf[:len(buf)+m]
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

func benchDial(b *testing.B, addr, ext string) net.Conn {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n"
	if ext != "" {
		req += ext + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		b.Fatal(err)
	}
	// Read the 101 head byte by byte so nothing after it is lost.
	var head []byte
	one := make([]byte, 1)
	for len(head) < 4 || string(head[len(head)-4:]) != "\r\n\r\n" {
		if _, err := c.Read(one); err != nil {
			b.Fatal(err)
		}
		head = append(head, one[0])
	}
	return c
}
