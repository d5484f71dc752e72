// Command gohttp is the Go standard library baseline of gale's benchmarks: a net/http server
// configured as a Go programmer would, answering the same URLs as gale and nginx do in
// bench/run.
//
//	/            "hello, world\n" as text/plain (the tiny scenarios)
//	/ws/echo     WebSocket echo of every text or binary message (ws-echo)
//	/ws/fanout/  WebSocket hub: a message from one client goes to every other client
//	             connected to the same path (ws-fanout)
//	anything else  a file under -root through http.FileServer (static scenarios)
//
// It speaks HTTP/1.1 and, on the same port, HTTP/2 with prior knowledge (h2c). GOMAXPROCS is
// left to the environment so that bench/run can give it the same core count as the others.
package main

import (
	"bufio"
	"flag"
	"log"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/gale-server/gale/bench/internal/wsproto"
)

var hello = []byte("hello, world\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:18083", "listen address")
	root := flag.String("root", ".", "document root of the static scenarios")
	flag.Parse()

	files := http.FileServer(http.Dir(*root))
	hubs := newHubs()
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	})
	mux.HandleFunc("/ws/echo", func(w http.ResponseWriter, r *http.Request) {
		serveWS(w, r, echo)
	})
	mux.HandleFunc("/ws/fanout/", func(w http.ResponseWriter, r *http.Request) {
		serveWS(w, r, hubs.join)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Setting the type up front spares FileServer its content sniffing, as an
		// operator's mime table spares nginx.
		if path.Ext(r.URL.Path) == ".bin" {
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		files.ServeHTTP(w, r)
	})

	srv := &http.Server{Addr: *addr, Handler: mux, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	log.Fatal(srv.ListenAndServe())
}

// wsConn is one accepted WebSocket connection. Writes are serialised by mu because the
// fan-out hub writes from other goroutines.
type wsConn struct {
	c  net.Conn
	br *bufio.Reader
	mu sync.Mutex // owns writes to c
}

func (w *wsConn) send(frame []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.c.Write(frame)
	return err
}

// serveWS performs the server side of the opening handshake and hands the connection to run.
func serveWS(w http.ResponseWriter, r *http.Request, run func(string, *wsConn)) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" {
		http.Error(w, "websocket upgrade required", http.StatusBadRequest)
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		wsproto.Accept(key) + "\r\n\r\n"
	if _, err := c.Write([]byte(resp)); err != nil {
		return
	}
	run(r.URL.Path, &wsConn{c: c, br: brw.Reader})
}

// readLoop reads frames until the peer closes, answering pings and close frames, and
// passes every data frame (already encoded as a server frame) to onData.
func readLoop(ws *wsConn, onData func(frame []byte)) {
	buf := make([]byte, 4096)
	var out []byte
	for {
		f, err := wsproto.ReadFrame(ws.br, buf)
		if err != nil {
			return
		}
		switch f.Opcode {
		case wsproto.OpText, wsproto.OpBinary:
			out = wsproto.AppendFrame(out[:0], f.Opcode, f.Payload, false)
			onData(out)
		case wsproto.OpPing:
			out = wsproto.AppendFrame(out[:0], wsproto.OpPong, f.Payload, false)
			if ws.send(out) != nil {
				return
			}
		case wsproto.OpClose:
			ws.send(wsproto.AppendFrame(out[:0], wsproto.OpClose, f.Payload, false))
			return
		}
	}
}

func echo(_ string, ws *wsConn) {
	readLoop(ws, func(frame []byte) { ws.send(frame) })
}

// subscriber is one hub member with its own bounded outbound queue; a member that falls
// 1024 messages behind loses the newest ones rather than stalling the publisher.
type subscriber struct {
	ws *wsConn
	q  chan []byte
}

// hubs maps a request path (the topic) to its members.
type hubs struct {
	mu     sync.Mutex // owns topics
	topics map[string]map[*subscriber]struct{}
}

func newHubs() *hubs { return &hubs{topics: make(map[string]map[*subscriber]struct{})} }

func (h *hubs) join(topic string, ws *wsConn) {
	s := &subscriber{ws: ws, q: make(chan []byte, 1024)}
	h.mu.Lock()
	if h.topics[topic] == nil {
		h.topics[topic] = make(map[*subscriber]struct{})
	}
	h.topics[topic][s] = struct{}{}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case frame := <-s.q:
				if ws.send(frame) != nil {
					return
				}
			case <-done:
				return
			}
		}
	}()
	readLoop(ws, func(frame []byte) {
		shared := append([]byte(nil), frame...) // encoded once, sent to every member
		h.mu.Lock()
		for other := range h.topics[topic] {
			if other == s {
				continue
			}
			select {
			case other.q <- shared:
			default:
			}
		}
		h.mu.Unlock()
	})
	close(done)
	h.mu.Lock()
	delete(h.topics[topic], s)
	h.mu.Unlock()
}
