package app

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gorilla/websocket"
)

// TestProxyWebSocketOverTLS tunnels a WebSocket from a wss:// client through a
// TLS listener's proxy route to a plain ws:// origin: the tunnel works under
// the TLS layer (the upgraded client connection's bytes are decrypted and
// encrypted by it), with messages both small and larger than the tunnel's
// high-water mark, and closes cleanly.
func TestProxyWebSocketOverTLS(t *testing.T) {
	ca, cert := serverCert(t)
	origin := httptest.NewServer(gorillaEcho())
	defer origin.Close()
	wssThroughProxy(t, ca, cert, fmt.Sprintf(`{ upstreams: ["%s"] }`, strings.TrimPrefix(origin.URL, "http://")))
}

// TestProxyWebSocketTLSBothSides is TestProxyWebSocketOverTLS with a wss://
// origin (an https:// upstream verified with the test CA): both ends of the
// tunnel are TLS layers, the client's and the upstream's.
func TestProxyWebSocketTLSBothSides(t *testing.T) {
	ca, cert := serverCert(t)
	origin := httptest.NewUnstartedServer(gorillaEcho())
	kp, err := tls.LoadX509KeyPair(cert.Cert, cert.Key)
	if err != nil {
		t.Fatal(err)
	}
	origin.TLS = &tls.Config{Certificates: []tls.Certificate{kp}}
	origin.StartTLS()
	defer origin.Close()
	wssThroughProxy(t, ca, cert, fmt.Sprintf(`{ upstreams: ["%s"], tls: { ca: %s, server_name: localhost } }`, origin.URL, ca.CAFile))
}

// gorillaEcho is a gorilla WebSocket origin that sends the X-Forwarded-Proto it
// got, then echoes every message.
func gorillaEcho() http.Handler {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ws.WriteMessage(websocket.TextMessage, []byte("proto="+r.Header.Get("X-Forwarded-Proto")))
		for {
			mt, p, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := ws.WriteMessage(mt, p); err != nil {
				return
			}
		}
	})
}

// wssThroughProxy dials wss:// through a TLS listener whose route is proxy and
// checks the tunnel: messages below and above the high-water mark, then the close.
func wssThroughProxy(t *testing.T, ca *testcert.CA, cert testcert.Files, proxy string) {
	t.Helper()
	_, addr := startApp(t, fmt.Sprintf(`
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    tls: { certificates: [{ cert: %s, key: %s }] }
    routes:
      - proxy: %s
`, cert.Cert, cert.Key, proxy))
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial("wss://"+addr+"/chat", nil)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, p, err := ws.ReadMessage(); err != nil || string(p) != "proto=https" {
		t.Fatalf("first message %q, %v", p, err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: above the high-water mark
	for i, msg := range [][]byte{[]byte("hello"), big, []byte("after")} {
		if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		_, p, err := ws.ReadMessage()
		if err != nil || !bytes.Equal(p, msg) {
			t.Fatalf("echo %d: %d bytes, %v", i, len(p), err)
		}
	}
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("close: %v", err)
	}
}
