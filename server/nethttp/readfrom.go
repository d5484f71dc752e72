package nethttp

import (
	"io"
	"os"
	"runtime"
	"sync/atomic"
)

// sendfileMin is the smallest file remainder ReadFrom hands to the loop as a file
// segment; smaller ones are copied through the response buffer.
const sendfileMin = 16 << 10

// writerOnly hides ReadFrom from io.Copy, so that the fallback copies through Write.
type writerOnly struct{ io.Writer }

// ReadFrom sends the rest of a regular file (an *os.File, or one in an
// io.LimitedReader, as io.Copy, io.CopyN and http.ServeContent pass it) as a file
// segment of the connection, with sendfile(2) (read in chunks by the loop under
// TLS and on HTTP/2), instead of copying it through the 4 KiB response buffer, as
// net/http's ResponseWriter does; it returns once the loop has sent the bytes
// (or the client went), and the file's offset is moved past them. Other readers,
// small files, HEAD responses and writes past a declared Content-Length are
// copied through Write. The first 512 bytes go through Write too when the
// Content-Type is still to be sniffed.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(200)
	}
	var sniffed int64
	if !w.headPosted && !w.noSniff && len(w.buf) < sniffLen {
		n, err := io.CopyN(writerOnly{w}, src, int64(sniffLen-len(w.buf)))
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return n, err
		}
		sniffed = n
	}
	f, off, n, ok := fileRest(src)
	if !ok || w.hijacked || w.isHead || n < sendfileMin || !bodyAllowed(w.status) ||
		w.contentLength >= 0 && w.written+n > w.contentLength {
		n, err := io.Copy(writerOnly{w}, src)
		return sniffed + n, err
	}
	w.x.progress()
	if err := w.flushBuf(false); err != nil {
		return sniffed, err
	}
	sent, err := w.sendFile(f, off, n)
	if sent > 0 {
		f.Seek(off+sent, io.SeekStart)
		if lr, ok := src.(*io.LimitedReader); ok {
			lr.N -= sent
		}
	}
	w.x.progress()
	return sniffed + sent, err
}

// fileRest returns the regular file behind src, its current offset and how many
// bytes src would still yield, or false.
func fileRest(src io.Reader) (f *os.File, off, n int64, ok bool) {
	limit := int64(-1)
	if lr, isLR := src.(*io.LimitedReader); isLR {
		src, limit = lr.R, lr.N
	}
	f, isFile := src.(*os.File)
	if !isFile {
		return nil, 0, 0, false
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil, 0, 0, false
	}
	if off, err = f.Seek(0, io.SeekCurrent); err != nil || off > st.Size() {
		return nil, 0, 0, false
	}
	n = st.Size() - off
	if limit >= 0 && limit < n {
		n = limit
	}
	return f, off, n, true
}

// sendFile queues n bytes of f from off on the connection and waits until the
// loop is done with them: sent, or dropped because the client went (0 and its
// error then). The wait counts as waiting for the client (Options.ResponseTimeout).
func (w *responseWriter) sendFile(f *os.File, off, n int64) (int64, error) {
	x := w.x
	p := &x.pipe
	if err := p.reserve(0); err != nil {
		return 0, err
	}
	fd := int(f.Fd())
	done := make(chan struct{})
	// state settles who decides: the loop (1: it queued the file, whose release
	// closes done) or the handler (2: it gave up first, the client having gone, and
	// the loop must not touch the descriptor, which the handler may close).
	var state atomic.Int32
	ex := x.ex
	x.postRaw(func() {
		if !state.CompareAndSwap(0, 1) {
			return
		}
		if !p.begin() {
			close(done)
			return
		}
		ex.SendFile(fd, off, n, func() { close(done) })
		p.wrote(0)
	})
	p.mu.Lock()
	p.waiters++
	p.mu.Unlock()
	if x.c != nil {
		<-done // the loop runs the closure even after the connection closed
	} else {
		// A stream's Post drops the closure once the stream is gone, which
		// cancels the context.
		select {
		case <-done:
		case <-x.ctx.Done():
			if !state.CompareAndSwap(0, 2) {
				<-done // queued: released once sent or once the stream closes
			}
		}
	}
	p.mu.Lock()
	p.waiters--
	p.mu.Unlock()
	runtime.KeepAlive(f)
	if err := p.outputErr(); err != nil {
		return 0, err
	}
	if state.Load() == 2 {
		return 0, errConnGone
	}
	w.written += n
	return n, nil
}
