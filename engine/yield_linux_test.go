//go:build linux && !galenet

package engine

import (
	"bufio"
	"net"
	"runtime"
	"testing"
	"time"
)

// yieldHandler answers every line it reads from a goroutine, as the net/http
// adapter does: OnData hands the line to a worker and calls YieldBeforeWait; the
// worker posts the answer back. block makes the worker wait before it posts, so the
// yield finds nothing and the answer must come through an ordinary wake-up.
type yieldHandler struct {
	NopHandler
	jobs  chan func()
	block time.Duration
	same  chan bool // per answer: posted in the iteration that read the request
}

func (h *yieldHandler) OnEOF(c *Conn) { c.Close(nil) }

func (h *yieldHandler) OnData(c *Conn, in []byte) int {
	l := c.Loop()
	read := l.iters
	line := append([]byte(nil), in...)
	h.jobs <- func() {
		if h.block > 0 {
			time.Sleep(h.block)
		}
		l.Post(func() {
			h.same <- l.iters == read
			c.Write(line)
		})
	}
	l.YieldBeforeWait()
	return len(in)
}

// TestYieldBeforeWaitAnswersInTheSameIteration checks that answers posted by a
// worker the loop readied go out in the iteration that read the request (no
// eventfd wake-up, no second epoll wait) on an unlocked epoll loop, and that
// answers from a worker that blocks still arrive through the ordinary wake-up.
func TestYieldBeforeWaitAnswersInTheSameIteration(t *testing.T) {
	for _, block := range []time.Duration{0, 2 * time.Millisecond} {
		h := &yieldHandler{jobs: make(chan func(), 64), block: block, same: make(chan bool, 1000)}
		go func() {
			for f := range h.jobs {
				f()
			}
		}()
		// One P: the worker readied by the loop can only run when the loop yields.
		procs := runtime.GOMAXPROCS(1)
		e, addr := startEngine(t, h, 1)
		uring := e.Loops()[0].ur != nil
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		const n = 200
		same := 0
		for i := 0; i < n; i++ {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("ping\n")); err != nil {
				t.Fatal(err)
			}
			if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
				t.Fatalf("block %v, request %d: got %q, %v", block, i, line, err)
			}
			if <-h.same {
				same++
			}
		}
		c.Close()
		close(h.jobs)
		var yields uint64
		onLoop(t, e.Loops()[0], func() { yields = e.Loops()[0].yields })
		if uring != (yields == 0) {
			t.Errorf("block %v, io_uring %v: the loop yielded %d times", block, uring, yields)
		}
		runtime.GOMAXPROCS(procs)
		t.Logf("block %v: %d of %d answers in the request's iteration (io_uring %v)", block, same, n, uring)
		switch {
		case uring || block > 0:
			if same > n/10 {
				t.Errorf("block %v, io_uring %v: %d of %d answers in the request's iteration; expected next ones", block, uring, same, n)
			}
		case same < n*8/10:
			t.Errorf("only %d of %d answers went out in the request's iteration", same, n)
		}
	}
}
