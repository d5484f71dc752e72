package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/server"
)

// get fetches url and returns the status and body, for the examples.
func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

// A native handler runs inline on the connection's event loop: it reads the request
// through the Ctx and answers before returning, without blocking.
func Example() {
	hello := server.HandlerFunc(func(c *server.Ctx) {
		c.Respond(200, "text/plain", []byte("hello from "+string(c.Path())))
	})
	s, err := server.New(server.Options{Handler: hello, Workers: 1})
	if err != nil {
		panic(err)
	}
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()

	fmt.Println(get("http://" + addr + "/world"))
	// Output: 200 hello from /world
}

// A handler that must wait (a database, a slow computation) detaches, does the work
// elsewhere, and finishes the response on the loop with Post.
func ExampleCtx_Detach() {
	slow := server.HandlerFunc(func(c *server.Ctx) {
		c.Detach()
		go func() {
			answer := 6 * 7 // work done off the loop
			c.Post(func() {
				c.Header().Set("X-Answer", fmt.Sprint(answer))
				c.Respond(200, "text/plain", fmt.Appendf(nil, "%d", answer))
			})
		}()
	})
	s, _ := server.New(server.Options{Handler: slow, Workers: 1})
	addr, _ := s.Listen("127.0.0.1:0")
	s.Start()
	defer s.Shutdown(context.Background())

	fmt.Println(get("http://" + addr + "/"))
	// Output: 200 42
}

// The same handler value can serve any protocol when it is written against
// server.Exchange, the protocol-neutral request and response; *Ctx is the HTTP/1.1
// implementation.
func ExampleExchange() {
	var greet server.ExchangeHandler = exchangeFunc(func(x server.Exchange) {
		x.Header().Set("Content-Type", "text/plain")
		x.SetContentLength(int64(len("hi ") + len(x.Proto())))
		x.WriteHeader(200)
		x.Write([]byte("hi " + x.Proto()))
		x.End()
	})
	s, _ := server.New(server.Options{Handler: server.HandlerFunc(func(c *server.Ctx) { greet.ServeExchange(c) }), Workers: 1})
	addr, _ := s.Listen("127.0.0.1:0")
	s.Start()
	defer s.Shutdown(context.Background())

	fmt.Println(get("http://" + addr + "/"))
	// Output: 200 hi HTTP/1.1
}

type exchangeFunc func(server.Exchange)

func (f exchangeFunc) ServeExchange(x server.Exchange) { f(x) }

// shout is a tiny protocol for ExampleCtx_Upgrade: it answers every line with the
// line in capitals. It is an engine.Handler, as a WebSocket or tunnel handler is.
// Embedding engine.NopHandler supplies the events it does not care about.
type shout struct{ engine.NopHandler }

func (shout) OnData(c *engine.Conn, in []byte) int {
	c.Write(bytes.ToUpper(in))
	return len(in)
}
func (shout) OnEOF(c *engine.Conn)      { c.CloseAfterFlush(true) }
func (shout) OnShutdown(c *engine.Conn) { c.Close(nil) }

// Upgrade hands the connection to another protocol after a 101: here a made-up
// "shout" protocol, as WebSocket does. Bytes the client sent right after the request
// head are not lost: the new handler reads them first.
func ExampleCtx_Upgrade() {
	h := server.HandlerFunc(func(c *server.Ctx) {
		if !c.Request().Upgrade {
			c.Error(426, "this resource speaks shout")
			return
		}
		c.Header().Set("Upgrade", "shout")
		c.Header().Set("Connection", "Upgrade")
		if err := c.Upgrade(shout{}); err != nil {
			c.Error(400, err.Error())
		}
	})
	s, _ := server.New(server.Options{Handler: h, Workers: 1})
	addr, _ := s.Listen("127.0.0.1:0")
	s.Start()
	defer s.Shutdown(context.Background())

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nhello\n")
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	for line, _ := br.ReadString('\n'); line != "\r\n"; line, _ = br.ReadString('\n') {
	}
	echo, _ := br.ReadString('\n')
	fmt.Println(strings.TrimSpace(status))
	fmt.Print(echo)
	// Output:
	// HTTP/1.1 101 Switching Protocols
	// HELLO
}
