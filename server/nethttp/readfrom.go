package nethttp

import (
	"io"
	"os"
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
	dup, err := dupFile(f)
	if err != nil {
		n, err := io.Copy(writerOnly{w}, src)
		return sniffed + n, err
	}
	w.x.progress()
	if err := w.flushBuf(false); err != nil {
		dup.Close()
		return sniffed, err
	}
	sent, err := w.sendFile(dup, off, n)
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

// sendFile queues n bytes of dup (a duplicate of the handler's file, which sendFile
// closes) from off on the connection and waits until the loop is done with them,
// or the output failed (the client went, the response timeout expired: 0 and that
// error then). Since the loop sends from its own descriptor, the handler may close
// its file as soon as this returns, even if the loop has not run the send yet (it
// is dropped, or fails on the closed connection, then). The wait counts as waiting
// for the client (Options.ResponseTimeout).
func (w *responseWriter) sendFile(dup *os.File, off, n int64) (int64, error) {
	x := w.x
	p := &x.pipe
	if err := p.reserve(0); err != nil {
		dup.Close()
		return 0, err
	}
	done := make(chan struct{})
	ex := x.ex
	// If a stream's Post drops the closure (the stream is gone), dup is closed when
	// it is collected.
	x.postRaw(func() {
		if !p.begin() {
			dup.Close()
			close(done)
			return
		}
		ex.SendFile(int(dup.Fd()), off, n, func() {
			dup.Close()
			close(done)
		})
		p.wrote(0)
	})
	p.mu.Lock()
	p.waiters++
	p.mu.Unlock()
	select {
	case <-done:
	case <-p.outputFailed():
	}
	p.mu.Lock()
	p.waiters--
	p.mu.Unlock()
	if err := p.outputErr(); err != nil {
		return 0, err
	}
	w.written += n
	return n, nil
}
