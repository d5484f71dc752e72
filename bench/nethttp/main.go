// Command nethttp serves the same net/http handler either through gale's net/http
// adapter (-mode gale) or on net/http's own server (-mode std), so that bench/run
// can compare the two with the same load generator.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/nethttp"
)

// handler is a typical small JSON endpoint: it reads a query parameter, sets
// headers and writes a short body.
func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"hello":"world","q":"`+r.URL.Query().Get("q")+`"}`)
	})
	return mux
}

func main() {
	mode := flag.String("mode", "gale", "gale (through the adapter) or std (net/http's server)")
	addr := flag.String("addr", "127.0.0.1:18100", "listen address")
	workers := flag.Int("workers", runtime.NumCPU(), "gale event loops")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file until stopped")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	switch *mode {
	case "std":
		go func() { log.Fatal(http.ListenAndServe(*addr, handler())) }()
	case "gale":
		pool := server.NewPool(0, 0)
		s, err := server.New(server.Options{Handler: nethttp.Adapt(handler(), pool), Workers: *workers})
		if err != nil {
			log.Fatal(err)
		}
		if _, err := s.Listen(*addr); err != nil {
			log.Fatal(err)
		}
		s.Start()
	default:
		fmt.Fprintln(os.Stderr, "unknown -mode", *mode)
		os.Exit(2)
	}
	fmt.Println("ready", *addr)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	<-ch
}
