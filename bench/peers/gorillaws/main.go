// Command gorillaws is the gorilla/websocket peer of gale's WebSocket benchmarks: an
// unmodified gorilla/websocket Upgrader on net/http, written as its documentation shows,
// echoing every text or binary message at /ws/echo (the ws-echo and ws-idle scenarios).
//
//	gorillaws -addr 127.0.0.1:20614 [-deflate] [-reuseport]
//
// -deflate enables permessage-deflate (gorilla negotiates it without context takeover and
// compresses every message it writes). -reuseport sets SO_REUSEPORT on the listener so
// that several processes can share the port when one process's open-file limit is not
// enough (bench/run ws-idle at 100,000 connections). GOMAXPROCS is left to the
// environment so that bench/run gives it the same core count as gale.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"syscall"

	"github.com/gorilla/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:20614", "listen address")
	deflate := flag.Bool("deflate", false, "negotiate permessage-deflate")
	reuse := flag.Bool("reuseport", false, "set SO_REUSEPORT on the listener")
	flag.Parse()

	up := websocket.Upgrader{
		ReadBufferSize:    4096,
		WriteBufferSize:   4096,
		EnableCompression: *deflate,
		CheckOrigin:       func(*http.Request) bool { return true },
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has answered the client
		}
		defer c.Close()
		for {
			op, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(op, msg); err != nil {
				return
			}
		}
	})

	var lc net.ListenConfig
	if *reuse {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.Serve(ln, mux))
}
