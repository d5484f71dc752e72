package wsserver

import (
	"errors"
	"io"

	"github.com/gale-server/gale/internal/os/pool"
	"github.com/gale-server/gale/websocket"
)

// read consumes frames from in with Reader.ReadPart, so that the engine never keeps
// more than a frame header or a control frame unconsumed, and returns how many bytes
// it consumed.
func (c *Conn) read(in []byte) int {
	if c.state == stateDone {
		return len(in)
	}
	c.touch()
	off := 0
	for off < len(in) && c.state != stateDone && !c.ec.Closed() {
		f, n, err := c.rd.ReadPart(in[off:])
		if err == websocket.ErrNeedMore {
			break
		}
		if err != nil {
			c.protocolError(err)
			return len(in)
		}
		off += n
		switch {
		case f.Opcode.IsControl():
			c.control(&f)
		case c.state == stateOpen:
			c.data(&f)
		}
		if n == 0 {
			break
		}
	}
	return off
}

// protocolError fails the connection for an error of the Reader or Decompressor.
func (c *Conn) protocolError(err error) {
	var pe *websocket.ProtocolError
	if !errors.As(err, &pe) {
		pe = errInternal
	}
	c.dropMessage()
	c.failWith(pe)
}

// control handles a ping, pong or close frame.
func (c *Conn) control(f *websocket.Frame) {
	switch f.Opcode {
	case websocket.OpPing:
		if c.state == stateOpen {
			_ = c.writeFrame(true, websocket.OpPong, false, f.Payload)
		}
	case websocket.OpClose:
		c.got = f.CloseCode
		if c.state == stateOpen {
			code := f.CloseCode
			if code == websocket.CloseNoStatus {
				code = 0
			}
			c.lp.scratch = websocket.AppendClose(c.lp.scratch[:0], code, "", nil)
			_ = c.write(c.lp.scratch)
		}
		c.dropMessage()
		c.finish()
	}
	// Pongs need nothing: their arrival already counts as activity.
}

// data handles one part of a data frame.
func (c *Conn) data(f *websocket.Frame) {
	last := f.Fin && !f.More
	s := c.lp.s
	switch {
	case f.Compressed && !c.parts() && last:
		c.msgOp = f.Message
		c.inflate(f.Payload) // a whole message in one read: inflated from the read buffer
	case f.Compressed:
		msg := c.collect(f.Message, f.Payload)
		if last {
			c.inflate(msg)
		}
	case !c.parts() && last:
		s.h.OnMessage(c, f.Message, f.Payload)
	case s.part != nil:
		c.setParts(!last)
		c.msgOp = f.Message
		s.part.OnPart(c, f.Message, f.Payload, last)
	default:
		msg := c.collect(f.Message, f.Payload)
		if last {
			delete(c.lp.msgs, c)
			c.setParts(false)
			s.h.OnMessage(c, c.msgOp, msg)
			c.lp.putBuf(msg)
		}
	}
}

// collect appends a part of the current message to the connection's pooled buffer
// (kept in the loop's msgs map between parts) and returns the message so far. The
// Reader has already bounded the message by the limit.
func (c *Conn) collect(op websocket.Opcode, p []byte) []byte {
	lp := c.lp
	var b []byte
	if c.parts() {
		b = lp.msgs[c]
	} else {
		c.setParts(true)
		c.msgOp = op
		b = lp.bufs.Get(max(len(p), pool.MinSize))[:0]
		if lp.msgs == nil {
			lp.msgs = make(map[*Conn][]byte)
		}
	}
	b = lp.appendBuf(b, p)
	lp.msgs[c] = b
	return b
}

// inflate decompresses the message in (collected, or the payload of a single frame)
// and delivers it.
func (c *Conn) inflate(in []byte) {
	lp := c.lp
	dfl := c.deflater()
	if dfl.win == nil {
		if takeover, _ := dfl.params.Receive(websocket.RoleServer); takeover {
			dfl.win = new(websocket.Window)
		}
	}
	d := lp.pool.GetDecompressor()
	out := lp.bufs.Get(min(max(4*len(in), pool.MinSize), pool.MaxSize))[:0]
	out, err := d.Inflate(out, in, dfl.win, c.rd.MessageLimit(), c.msgOp == websocket.OpText)
	lp.pool.PutDecompressor(d)
	op := c.msgOp
	c.dropMessage()
	if err != nil {
		lp.putBuf(out)
		c.protocolError(err)
		return
	}
	lp.s.h.OnMessage(c, op, out)
	lp.putBuf(out)
}

// dropMessage gives back the buffer of an unfinished message.
func (c *Conn) dropMessage() {
	if !c.parts() {
		return
	}
	if b, ok := c.lp.msgs[c]; ok {
		c.lp.putBuf(b)
		delete(c.lp.msgs, c)
	}
	c.setParts(false)
}

// appendBuf appends p to b, moving to a larger pooled buffer when b is full.
func (lp *loopState) appendBuf(b, p []byte) []byte {
	if len(b)+len(p) <= cap(b) {
		return append(b, p...)
	}
	nb := lp.bufs.Get(max(2*cap(b), len(b)+len(p)))[:0]
	nb = append(nb, b...)
	lp.putBuf(b)
	return append(nb, p...)
}

// putBuf returns a buffer to the loop's cache (it drops those of no class size).
func (lp *loopState) putBuf(b []byte) { lp.bufs.Put(b[:cap(b)]) }

// eof records a peer that stopped sending without a close frame.
func (c *Conn) eof() {
	if c.state != stateDone && c.fail == 0 {
		c.setFail(io.ErrUnexpectedEOF)
	}
}
