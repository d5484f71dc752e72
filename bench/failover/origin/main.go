// Command origin is the failover benchmark's origin: an HTTP/1.1 server on one
// address answering every request with 200 and a short body. The benchmark kills
// and restarts it.
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:20510", "listen address")
	flag.Parse()
	body := []byte("ok from " + *addr + "\n")
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})))
}
