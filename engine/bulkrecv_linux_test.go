//go:build linux && !galenet

package engine

import (
	"crypto/sha256"
	"hash"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// pauseEveryRead hashes what it receives, pauses reading after every OnData and
// resumes through a posted closure, so each read of a bulk upload is a pause and
// resume; at the end of stream, once it has all size bytes, it answers with their
// SHA-256. (OnEOF may come while bytes sent before the FIN are still unread: the
// peer's FIN is reported at once when it arrives during a pause.)
type pauseEveryRead struct {
	NopHandler
	mu        sync.Mutex // the test reads what the loop wrote
	sum       hash.Hash
	n, size   int64
	eof       bool
	bigBulk   int // OnData calls in bulk mode larger than a bulk buffer (io_uring)
	pauses    int
	sawBulk   bool
	retainMax int
}

func (h *pauseEveryRead) OnData(c *Conn, in []byte) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sum.Write(in)
	h.n += int64(len(in))
	if c.flags&fBulk != 0 {
		h.sawBulk = true
		if len(in) > uringBulkSize {
			h.bigBulk++
		}
	}
	h.retainMax = max(h.retainMax, len(in))
	if h.eof && h.n == h.size {
		h.answer(c)
		return len(in)
	}
	c.PauseRead()
	h.pauses++
	c.Loop().Post(c.ResumeRead)
	return len(in)
}

func (h *pauseEveryRead) OnEOF(c *Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.eof = true
	if h.n == h.size {
		h.answer(c)
	}
}

// answer sends the digest and closes; h.mu is held.
func (h *pauseEveryRead) answer(c *Conn) {
	c.Write(h.sum.Sum(nil))
	c.CloseAfterFlush(false)
}

// TestBulkUploadPausedEveryRead sends 64 MiB to a handler that pauses after every
// read: every byte must arrive once and in order (SHA-256), and on io_uring the
// connection must turn to single-shot bulk receives, after which no OnData but
// the first carries more than a bulk buffer (a multishot receive kept reading
// while the connection was paused and piled its bytes up as unconsumed input).
func TestBulkUploadPausedEveryRead(t *testing.T) {
	const size = 64 << 20
	h := &pauseEveryRead{sum: sha256.New(), size: size}
	e, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	want := sha256.New()
	rng := rand.NewChaCha8([32]byte{7})
	buf := make([]byte, 1<<20)
	done := make(chan error, 1)
	go func() {
		for sent := 0; sent < size; sent += len(buf) {
			rng.Read(buf)
			want.Write(buf)
			if _, err := c.Write(buf); err != nil {
				done <- err
				return
			}
		}
		done <- c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the digest: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("sending: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if string(got) != string(want.Sum(nil)) {
		t.Fatalf("digest of the %d bytes received differs from the %d sent", h.n, size)
	}
	t.Logf("%s: %d reads (pauses), largest %d bytes, bulk %v (%d larger than a bulk buffer)", e.Backend(), h.pauses, h.retainMax, h.sawBulk, h.bigBulk)
	if e.Backend() != BackendIOURing {
		return
	}
	if !h.sawBulk {
		t.Fatal("the connection never turned to bulk receives")
	}
	// The bytes the multishot receive kept before its cancellation took effect
	// come in one OnData; from then on each is at most one bulk buffer.
	if h.bigBulk > 1 {
		t.Fatalf("%d OnData calls in bulk mode carried more than one bulk buffer (%d bytes)", h.bigBulk, uringBulkSize)
	}
}
