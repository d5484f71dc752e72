package nethttp_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"

	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/nethttp"
)

// ExampleAdapt serves a standard http.ServeMux on gale's event loops: the mux runs
// on a pool of goroutines, the connections stay on the loops.
func ExampleAdapt() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s\n", r.URL.Query().Get("name"))
	})

	pool := server.NewPool(8, 0) // at most 8 handlers at once; 0: the default queue
	defer pool.Close()
	s, err := server.New(server.Options{Handler: nethttp.Adapt(mux, pool)})
	if err != nil {
		log.Fatal(err)
	}
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s.Start()
	defer s.Shutdown(context.Background())

	resp, err := http.Get("http://" + addr + "/hello?name=gale")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))
	// Output: hello, gale
}
