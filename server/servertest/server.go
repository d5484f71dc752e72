package servertest

import (
	"context"
	"testing"
	"time"

	"github.com/gale-server/gale/server"
)

// Start runs h on 127.0.0.1 port 0 with one loop (mod may change the options) and
// shuts the server down when the test ends.
func Start(tb testing.TB, h server.Handler, mod func(*server.Options)) *server.Server {
	tb.Helper()
	opts := server.Options{Handler: h, Workers: 1}
	if mod != nil {
		mod(&opts)
	}
	s, err := server.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Listen("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	s.Start()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
	})
	return s
}
