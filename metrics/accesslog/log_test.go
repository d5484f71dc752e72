package accesslog

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// stallWriter blocks every Write until release is closed.
type stallWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *stallWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *stallWriter) Close() error { return nil }

func TestStalledWriterDropsAndCounts(t *testing.T) {
	w := &stallWriter{release: make(chan struct{})}
	l, err := Open(Options{Server: "s", Path: "x", open: func(string) (io.WriteCloser, error) { return w, nil }})
	if err != nil {
		t.Fatal(err)
	}
	lb := &l.loops[0]
	line := []byte(strings.Repeat("x", 99) + "\n")
	const rounds = 3 * maxQueued
	for i := 0; i < rounds; i++ {
		lb.buf = append(lb.buf, line...)
		lb.pending++
		l.handOff(lb)
	}
	lines, dropped := l.Counts()
	if dropped == 0 || lines+dropped != rounds {
		t.Fatalf("lines %d dropped %d, want some dropped and %d in all", lines, dropped, rounds)
	}
	// The queue, not the loop, held the lines that were kept: at most the
	// queue's capacity plus the one the writer is stuck on.
	if lines > maxQueued+1 {
		t.Fatalf("%d lines accepted with a stalled writer; the queue holds %d", lines, maxQueued)
	}
	close(w.release)
	lb.buf = append(lb.buf, line...)
	lb.pending++
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines, _ = l.Counts()
	if got := uint64(bytes.Count(w.buf.Bytes(), []byte("\n"))); got != lines {
		t.Fatalf("%d lines written, %d counted", got, lines)
	}
	if err := l.Reopen(); err != ErrClosed {
		t.Fatalf("Reopen after Close: %v", err)
	}
}

func TestEscaping(t *testing.T) {
	if got := string(appendEscaped(nil, []byte("a\"b\\c\x01\xff"))); got != `a\x22b\x5Cc\x01\xFF` {
		t.Errorf("appendEscaped = %s", got)
	}
	for in, want := range map[string]string{
		"plain":        `"plain"`,
		"q\"b\\\n\x1f": `"q\"b\\\u000A\u001F"`,
		"é€":           `"é€"`,
		"bad\xffutf8":  `"bad\ufffdutf8"`,
		// Line breaks beyond JSON's own: a splitter on Unicode line boundaries
		// (Python's str.splitlines) must not cut the line.
		"a\u2028b\u2029c":    `"a\u2028b\u2029c"`,
		"nel\u0085c1\u009f":  `"nel\u0085c1\u009F"`,
		"del\x7f":            `"del\u007F"`,
		"\u00a0\u2027\u202a": "\"\u00a0\u2027\u202a\"", // printable neighbours stay raw
	} {
		got := appendJSONString(nil, []byte(in))
		if string(got) != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, want)
		}
		var s string
		if err := json.Unmarshal(got, &s); err != nil {
			t.Errorf("%s is not JSON: %v", got, err)
		} else if want := strings.ToValidUTF8(in, "\ufffd"); s != want {
			t.Errorf("%s decodes to %q, want %q", got, s, want)
		}
	}
}

// TestReopenWritesQueuedLinesToTheOldFile: buffers handed to the writer
// before Reopen are written to the file open until then, even when the
// reopen request and the queued buffers are ready for the writer at once (a
// select would pick either). Twenty rounds, each queueing buffers behind a
// stalled write and then asking for a reopen.
func TestReopenWritesQueuedLinesToTheOldFile(t *testing.T) {
	for round := range 20 {
		var files []*stallWriter
		var mu sync.Mutex
		open := func(string) (io.WriteCloser, error) {
			mu.Lock()
			defer mu.Unlock()
			w := &stallWriter{release: make(chan struct{})}
			if len(files) > 0 {
				close(w.release) // only the first file stalls
			}
			files = append(files, w)
			return w, nil
		}
		l, err := Open(Options{Server: "s", Path: "x", open: open})
		if err != nil {
			t.Fatal(err)
		}
		lb := &l.loops[0]
		const queued = 4
		for range queued {
			lb.buf = append(lb.buf, "old\n"...)
			lb.pending++
			l.handOff(lb)
		}
		reopened := make(chan error, 1)
		go func() { reopened <- l.Reopen() }()
		// Once the writer is stuck on the first buffer, let the reopen
		// request wait beside the rest of the queue, then unstall.
		deadline := time.Now().Add(5 * time.Second)
		for len(l.full) > queued-1 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		first := files[0]
		mu.Unlock()
		close(first.release)
		if err := <-reopened; err != nil {
			t.Fatal(err)
		}
		lb.buf = append(lb.buf, "new\n"...)
		lb.pending++
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		old, next := files[0].buf.String(), files[1].buf.String()
		mu.Unlock()
		if old != strings.Repeat("old\n", queued) || next != "new\n" {
			t.Fatalf("round %d: old file %q, new file %q; want every old line in the old file", round, old, next)
		}
	}
}
