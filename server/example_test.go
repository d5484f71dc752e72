package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

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
