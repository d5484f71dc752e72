package server

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// pathFileHandler answers /file with the file at path through SendFile (the fd is
// released when the bytes are out) and anything else with "small".
func pathFileHandler(t *testing.T, path string, released *atomic.Int32) Handler {
	return HandlerFunc(func(c *Ctx) {
		if string(c.Path()) != "/file" {
			c.Respond(200, "text/plain", []byte("small"))
			return
		}
		f, err := os.Open(path)
		if err != nil {
			c.Error(500, err.Error())
			return
		}
		st, _ := f.Stat()
		c.SetContentLength(st.Size())
		c.WriteHeader(200)
		c.SendFile(int(f.Fd()), 0, st.Size(), func() { f.Close(); released.Add(1) })
		c.End()
	})
}

// listenNoSendfile adds a listener whose connections refuse sendfile, as a TLS
// stream does, so files go through the FilePump.
func listenNoSendfile(t *testing.T, s *Server, h Handler) string {
	t.Helper()
	ch := &connHandler{srv: s, noSendfile: true}
	ch.handler.Store(&handlerBox{h})
	addr, err := s.eng.Listen("127.0.0.1:0", ch)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestFilePumpSendsFileByteExact serves a 10 MiB file on a stream that cannot
// sendfile: the body arrives byte-exact, read in chunks with backpressure (the pump
// counts every byte), the file is released once, and a pipelined request after it
// is answered after the whole file, then Connection: close waits for the pump.
func TestFilePumpSendsFileByteExact(t *testing.T) {
	content := make([]byte, 10<<20)
	for i := range content {
		content[i] = byte(i*7 + i>>13)
	}
	path := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	var released atomic.Int32
	h := pathFileHandler(t, path, &released)
	s := startServer(t, h, nil)
	addr := listenNoSendfile(t, s, h)
	c := testkit.Dial(t, addr)
	io.WriteString(c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n"+
		"GET /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	for i, want := range [][]byte{content, []byte("small"), content} {
		resp := testkit.ReadResponse(t, br, "GET")
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if resp.ContentLength != int64(len(want)) || !bytes.Equal(got, want) {
			t.Fatalf("response %d: %d bytes (Content-Length %d), want %d byte-exact", i, len(got), resp.ContentLength, len(want))
		}
	}
	expectClosed(t, br)
	if got := s.Stats().FileReadBytes; got != 2*uint64(len(content)) {
		t.Fatalf("FileReadBytes = %d, want %d: the file did not go through the pump", got, 2*len(content))
	}
	if n := released.Load(); n != 2 {
		t.Fatalf("file released %d times, want 2", n)
	}
}

// TestFilePumpOrdersWritesAndAborts drives a FilePump over a recording stream: writes
// queued behind a file keep their place, output stops at the fill level until
// Drained, and Abort releases a file that never went out.
func TestFilePumpOrdersWritesAndAborts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := bytes.Repeat([]byte("0123456789abcdef"), PumpChunk/4) // 4 chunks
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st := &memStream{}
	var failed error
	p := NewFilePump(st, PumpChunk, func(err error) { failed = err })
	released := 0
	p.Write([]byte("head|"))
	p.SendFile(int(f.Fd()), 0, int64(len(data)), func() { released++ })
	p.Write([]byte("|tail"))
	if got := st.buf.Len(); got != len("head|")+PumpChunk {
		t.Fatalf("pump wrote %d bytes before any drain, want head + one chunk", got)
	}
	if !st.wantDrain || !p.Pending() {
		t.Fatal("pump did not wait for a drain")
	}
	for i := 0; p.Pending(); i++ {
		if i > 10 {
			t.Fatal("pump does not finish")
		}
		st.taken += st.buf.Len() - st.taken // the peer takes everything
		st.wantDrain = false
		p.Drained()
	}
	if want := "head|" + string(data) + "|tail"; st.buf.String() != want || released != 1 || failed != nil {
		t.Fatalf("stream got %d bytes (order kept: %v), released %d, failed %v", st.buf.Len(), st.buf.String() == want, released, failed)
	}
	// A file that shrank fails the connection; one still queued is released.
	p2 := NewFilePump(&memStream{}, PumpChunk, func(err error) { failed = err })
	r2 := 0
	p2.SendFile(int(f.Fd()), int64(len(data))-10, 20, func() { r2++ })
	if failed != ErrFileShrank || r2 != 1 {
		t.Fatalf("short file: failed %v, released %d", failed, r2)
	}
	p3 := NewFilePump(&memStream{full: true}, PumpChunk, nil)
	r3 := 0
	p3.SendFile(int(f.Fd()), 0, 100, func() { r3++ })
	p3.Abort()
	if r3 != 1 || p3.Pending() {
		t.Fatalf("Abort: released %d, pending %v", r3, p3.Pending())
	}
}

// memStream is a Stream in memory; Buffered is what the peer has not taken.
type memStream struct {
	buf       bytes.Buffer
	taken     int
	wantDrain bool
	full      bool // always report a full buffer
}

func (m *memStream) Write(p []byte) error { m.buf.Write(p); return nil }
func (m *memStream) Buffered() int {
	if m.full {
		return 1 << 30
	}
	return m.buf.Len() - m.taken
}
func (m *memStream) Closed() bool { return false }
func (m *memStream) WantDrain()   { m.wantDrain = true }

var _ Stream = (*memStream)(nil)
