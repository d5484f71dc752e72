package metrics

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
)

// TestObserverCountsClientClosed serves one request whose handler never
// answers and one that it answers; the client of the first resets the
// connection: that request counts as 499, the other with its status.
func TestObserverCountsClientClosed(t *testing.T) {
	rt := NewRegistry(1, []time.Duration{time.Second}).Route("s", "r")
	ob := &Observer{Route: rt, Name: "r"}
	hung := make(chan struct{}, 1)
	srv, err := server.New(server.Options{Workers: 1, Handler: server.HandlerFunc(func(c *server.Ctx) {
		c.Observe(ob)
		if string(c.Request().Path) == "/answer" {
			c.Respond(204, "", nil)
			return
		}
		c.Detach() // never answers
		hung <- struct{}{}
	})})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	for _, path := range []string{"/answer", "/hang"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"))
		if path == "/answer" {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.Read(make([]byte, 512))
		} else {
			select {
			case <-hung:
			case <-time.After(10 * time.Second):
				t.Fatal("the request never reached the handler")
			}
			c.(*net.TCPConn).SetLinger(0) // a reset: the server sees the connection fail
		}
		c.Close()
	}
	testkit.WaitFor(t, "one 2xx and one 4xx (499)", func() bool {
		tot := rt.Totals()
		return tot.Codes[2] == 1 && tot.Codes[4] == 1
	})
}
