package wsserver

import "github.com/gale-server/gale/websocket"

// Echo is a Handler that sends every message back as it came (text as text, binary as
// binary), the `websocket: { echo: true }` action.
type Echo struct{}

var _ Handler = Echo{}

// OnOpen implements Handler.
func (Echo) OnOpen(*Conn) {}

// OnMessage implements Handler: it sends msg back.
func (Echo) OnMessage(c *Conn, op websocket.Opcode, msg []byte) { _ = c.Send(op, msg) }

// OnClose implements Handler.
func (Echo) OnClose(*Conn, uint16, error) {}
