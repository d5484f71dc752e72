package engine_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gale-server/gale/engine"
)

// echoHandler writes back what it reads. Embedding NopHandler, it implements only
// the events an echo needs.
type echoHandler struct{ engine.NopHandler }

// OnData queues the bytes back; Write copies them, so in may be consumed whole.
func (echoHandler) OnData(c *engine.Conn, in []byte) int {
	c.Write(in)
	return len(in)
}

// OnEOF closes once what is queued has gone.
func (echoHandler) OnEOF(c *engine.Conn) { c.CloseAfterFlush(false) }

// OnShutdown lets the engine's graceful shutdown end the connection.
func (echoHandler) OnShutdown(c *engine.Conn) { c.CloseAfterFlush(true) }

// A minimal echo server on the engine, and a client talking to it.
func Example() {
	e, err := engine.New(engine.Config{Workers: 1})
	if err != nil {
		panic(err)
	}
	addr, err := e.Listen("127.0.0.1:0", echoHandler{})
	if err != nil {
		panic(err)
	}
	e.Start()
	defer e.Shutdown(context.Background())

	c, err := net.Dial("tcp", addr)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	buf := make([]byte, 5)
	io.ReadFull(c, buf)
	fmt.Println(string(buf))
	// Output: hello
}

// Timers belong to a loop: arm them from a handler callback or a posted closure.
func ExampleLoop_AfterFunc() {
	e, err := engine.New(engine.Config{Workers: 1})
	if err != nil {
		panic(err)
	}
	e.Start()
	defer e.Shutdown(context.Background())

	l := e.Loops()[0]
	done := make(chan string)
	l.Post(func() {
		ping := l.AfterFunc(time.Hour, func() { done <- "ping" })
		ping.Stop() // cancelled: never fires
		l.AfterFunc(10*time.Millisecond, func() { done <- "close" })
	})
	fmt.Println(<-done)
	// Output: close
}

// One buffer queued to many connections: each WriteShared holds a reference until
// that connection has sent the bytes; the free function runs after the last.
func ExampleShared() {
	freed := make(chan struct{})
	s := engine.NewShared([]byte("news\n"), func() { close(freed) })
	// On each subscriber's loop: c.WriteShared(s)
	s.Release() // the creator's reference; with no subscriber this is the last
	<-freed
	fmt.Println("freed")
	// Output: freed
}
