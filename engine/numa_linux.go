//go:build linux && !galenet

package engine

import "github.com/gale-server/gale/internal/os/numa"

// allocReadBuf returns loop i's shared read buffer. With Config.Nodes set it
// is mapped outside the Go heap and bound to the loop's node, so that the
// bytes every read lands in sit next to the CPU the loop is pinned to; if the
// kernel refuses (no such node, mbind filtered), the loop logs it and uses
// ordinary memory. numa reports whether the buffer must go to numa.Free.
func (e *Engine) allocReadBuf(i int) (buf []byte, bound bool) {
	if len(e.cfg.Nodes) == 0 {
		return make([]byte, readBufSize), false
	}
	node := e.cfg.Nodes[i%len(e.cfg.Nodes)]
	if node < 0 {
		return make([]byte, readBufSize), false
	}
	b, err := numa.Alloc(readBufSize, node)
	if err != nil {
		e.cfg.Logger.Warn("numa: read buffer not bound to its node", "loop", i, "node", node, "err", err)
		return make([]byte, readBufSize), false
	}
	return b, true
}

// freeReadBuf releases a buffer that allocReadBuf mapped; called once the
// loop has stopped and nothing reads into it any more.
func (l *Loop) freeReadBuf() {
	if l.bufNUMA {
		numa.Free(l.buf)
		l.bufNUMA = false
	}
	l.buf = nil
}
