package websocket

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gale-server/gale/http1"
)

// parseReq parses a raw request head with package http1, as the server does.
func parseReq(t testing.TB, raw string) *http1.Request {
	t.Helper()
	var p http1.Parser
	req := &http1.Request{}
	req.Reset()
	if _, err := p.ParseHead([]byte(raw), req); err != nil {
		t.Fatalf("http1 parse: %v", err)
	}
	return req
}

func TestAcceptKeyRFCExample(t *testing.T) {
	// RFC 6455 §1.3.
	if got := AcceptKey([]byte("dGhlIHNhbXBsZSBub25jZQ==")); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q", got)
	}
}

// TestHandshakeRealClients answers requests captured from python3-websockets 10.4 and
// node 20's WebSocket (undici), and browser-shaped requests.
func TestHandshakeRealClients(t *testing.T) {
	defl := DefaultDeflateOptions()
	cases := []struct {
		file, origins string
		want          []string
	}{
		{"python-websockets-10.4.txt", "", []string{"Sec-WebSocket-Protocol: chat\r\n",
			"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"}},
		{"node-20-undici.txt", "", []string{"Sec-WebSocket-Protocol: chat\r\n", "permessage-deflate"}},
		{"chromium-like.txt", "", []string{"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", "permessage-deflate"}},
		{"firefox-like.txt", "https://example.com", []string{"Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n", "permessage-deflate"}},
	}
	for _, c := range cases {
		raw, err := os.ReadFile(filepath.Join("testdata", "handshake", c.file))
		if err != nil {
			t.Fatal(err)
		}
		req := parseReq(t, string(raw))
		opt := HandshakeOptions{Subprotocols: []string{"superchat", "chat"}, Deflate: &defl}
		if c.origins != "" {
			opt.AllowedOrigins = strings.Split(c.origins, ",")
		}
		a, err := Handshake(FromHTTP1(req), &opt)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		resp := string(a.AppendResponse(nil))
		if !strings.HasPrefix(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n") || !strings.HasSuffix(resp, "\r\n\r\n") {
			t.Fatalf("%s: response %q", c.file, resp)
		}
		key, _ := (*HTTP1Header)(req).Field("Sec-WebSocket-Key", 0)
		if !strings.Contains(resp, "Sec-WebSocket-Accept: "+AcceptKey(key)+"\r\n") {
			t.Fatalf("%s: accept missing in %q", c.file, resp)
		}
		for _, w := range c.want {
			if !strings.Contains(resp, w) {
				t.Fatalf("%s: %q missing in %q", c.file, w, resp)
			}
		}
	}
}

// base is a valid request; tests replace or drop its lines.
var baseLines = []string{
	"Host: example.com",
	"Upgrade: websocket",
	"Connection: Upgrade",
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
	"Sec-WebSocket-Version: 13",
}

// request builds a Request from the base lines, dropping those whose name is in drop and
// adding extra.
func request(method string, drop []string, extra ...string) Request {
	var f Fields
	host := []byte(nil)
	add := func(l string) {
		name, val, _ := strings.Cut(l, ":")
		val = strings.TrimSpace(val)
		if strings.EqualFold(name, "Host") {
			host = []byte(val)
		}
		f = append(f, Field{[]byte(name), []byte(val)})
	}
outer:
	for _, l := range baseLines {
		for _, d := range drop {
			if strings.HasPrefix(l, d+":") {
				continue outer
			}
		}
		add(l)
	}
	for _, l := range extra {
		add(l)
	}
	return Request{Method: []byte(method), Host: host, Header: f}
}

func TestHandshakeRefusals(t *testing.T) {
	cases := []struct {
		name   string
		req    Request
		opt    HandshakeOptions
		status int
		header string
	}{
		{"POST", request("POST", nil), HandshakeOptions{}, 405, "Allow"},
		{"get lower case", request("get", nil), HandshakeOptions{}, 405, ""},
		{"HTTP/1.0", func() Request { r := request("GET", nil); r.HTTP10 = true; return r }(), HandshakeOptions{}, 400, ""},
		{"no upgrade", request("GET", []string{"Upgrade"}), HandshakeOptions{}, 400, ""},
		{"upgrade h2c", request("GET", []string{"Upgrade"}, "Upgrade: h2c"), HandshakeOptions{}, 400, ""},
		{"no connection", request("GET", []string{"Connection"}), HandshakeOptions{}, 400, ""},
		{"connection close", request("GET", []string{"Connection"}, "Connection: close"), HandshakeOptions{}, 400, ""},
		{"no version", request("GET", []string{"Sec-WebSocket-Version"}), HandshakeOptions{}, 426, "Sec-WebSocket-Version"},
		{"version 8", request("GET", []string{"Sec-WebSocket-Version"}, "Sec-WebSocket-Version: 8"), HandshakeOptions{}, 426, "Sec-WebSocket-Version"},
		{"two versions", request("GET", nil, "Sec-WebSocket-Version: 13"), HandshakeOptions{}, 426, ""},
		{"no key", request("GET", []string{"Sec-WebSocket-Key"}), HandshakeOptions{}, 400, ""},
		{"short key", request("GET", []string{"Sec-WebSocket-Key"}, "Sec-WebSocket-Key: dGhlIHNhbXBsZQ=="), HandshakeOptions{}, 400, ""},
		{"key 17 bytes", request("GET", []string{"Sec-WebSocket-Key"}, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZXg="), HandshakeOptions{}, 400, ""},
		{"key not base64", request("GET", []string{"Sec-WebSocket-Key"}, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q=="), HandshakeOptions{}, 400, ""},
		{"two keys", request("GET", nil, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="), HandshakeOptions{}, 400, ""},
		{"no host", request("GET", []string{"Host"}), HandshakeOptions{}, 400, ""},
		{"content-length body", request("GET", nil, "Content-Length: 5"), HandshakeOptions{}, 400, ""},
		{"chunked body", request("GET", nil, "Transfer-Encoding: chunked"), HandshakeOptions{}, 400, ""},
		{"cross origin", request("GET", nil, "Origin: https://evil.example"), HandshakeOptions{}, 403, ""},
		{"other port", request("GET", nil, "Origin: http://example.com:8080"), HandshakeOptions{}, 403, ""},
		{"null origin", request("GET", nil, "Origin: null"), HandshakeOptions{}, 403, ""},
		{"not listed", request("GET", nil, "Origin: https://example.com"), HandshakeOptions{AllowedOrigins: []string{"https://app.example"}}, 403, ""},
		{"wrong scheme", request("GET", nil, "Origin: http://app.example"), HandshakeOptions{AllowedOrigins: []string{"https://app.example"}}, 403, ""},
	}
	for _, c := range cases {
		_, err := Handshake(c.req, &c.opt)
		var he *HandshakeError
		if !errors.As(err, &he) || he.Status != c.status {
			t.Errorf("%s: got %v, want status %d", c.name, err, c.status)
			continue
		}
		resp := string(he.AppendResponse(nil))
		if !strings.HasPrefix(resp, "HTTP/1.1 ") || !strings.Contains(resp, "\r\n\r\n"+he.Reason) {
			t.Errorf("%s: response %q", c.name, resp)
		}
		if c.header != "" && !strings.Contains(resp, "\r\n"+c.header+": ") {
			t.Errorf("%s: %s missing in %q", c.name, c.header, resp)
		}
	}
}

func TestHandshakeAccepts(t *testing.T) {
	cases := []struct {
		name string
		req  Request
		opt  HandshakeOptions
	}{
		{"tokens in lists, any case", request("GET", []string{"Upgrade", "Connection"}, "upgrade: foo, WebSocket", "Connection: keep-alive", "connection: UPGRADE"), HandshakeOptions{}},
		{"no origin", request("GET", nil), HandshakeOptions{}},
		{"content-length 0", request("GET", nil, "Content-Length: 0"), HandshakeOptions{}},
		{"same origin default port", request("GET", nil, "Origin: https://EXAMPLE.com"), HandshakeOptions{}},
		{"same origin explicit port", request("GET", []string{"Host"}, "Host: example.com:8443", "Origin: https://example.com:8443"), HandshakeOptions{}},
		{"host with default port", request("GET", []string{"Host"}, "Host: example.com:443", "Origin: https://example.com"), HandshakeOptions{}},
		{"ipv6", request("GET", []string{"Host"}, "Host: [::1]:9000", "Origin: http://[::1]:9000"), HandshakeOptions{}},
		{"listed", request("GET", nil, "Origin: https://app.example"), HandshakeOptions{AllowedOrigins: []string{"https://other", "https://app.example:443"}}},
		{"bare host listed", request("GET", nil, "Origin: http://app.example"), HandshakeOptions{AllowedOrigins: []string{"app.example"}}},
		{"star", request("GET", nil, "Origin: null"), HandshakeOptions{AllowedOrigins: []string{"*"}}},
	}
	for _, c := range cases {
		if _, err := Handshake(c.req, &c.opt); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestSubprotocolSelection(t *testing.T) {
	opt := HandshakeOptions{Subprotocols: []string{"v2", "v1"}}
	for _, c := range []struct {
		lines []string
		want  string
	}{
		{[]string{"Sec-WebSocket-Protocol: v1, v2"}, "v2"},
		{[]string{"Sec-WebSocket-Protocol: v1", "Sec-WebSocket-Protocol: v2"}, "v2"},
		{[]string{"Sec-WebSocket-Protocol: v1"}, "v1"},
		{[]string{"Sec-WebSocket-Protocol: V1, v3"}, ""},
		{nil, ""},
	} {
		a, err := Handshake(request("GET", nil, c.lines...), &opt)
		if err != nil || a.Subprotocol != c.want {
			t.Errorf("%q: got %q %v, want %q", c.lines, a.Subprotocol, err, c.want)
		}
		hasLine := bytes.Contains(a.AppendHeaders(nil), []byte("Sec-WebSocket-Protocol"))
		if hasLine != (c.want != "") {
			t.Errorf("%q: headers %q", c.lines, a.AppendHeaders(nil))
		}
	}
}

func TestDeflateNegotiation(t *testing.T) {
	cases := []struct {
		name  string
		opt   DeflateOptions
		offer []string
		want  string // "" for declined
	}{
		{"plain", DeflateOptions{}, []string{"permessage-deflate"}, "permessage-deflate"},
		{"client bits no value", DeflateOptions{}, []string{"permessage-deflate; client_max_window_bits"}, "permessage-deflate"},
		{"client bits value", DeflateOptions{}, []string{"permessage-deflate; client_max_window_bits=10"}, "permessage-deflate"},
		{"client bits asked", DeflateOptions{ClientMaxWindowBits: 9}, []string{"permessage-deflate; client_max_window_bits"}, "permessage-deflate; client_max_window_bits=9"},
		{"client bits not offered", DeflateOptions{ClientMaxWindowBits: 9}, []string{"permessage-deflate"}, "permessage-deflate"},
		{"server no ctx", DeflateOptions{}, []string{"permessage-deflate; server_no_context_takeover"}, "permessage-deflate; server_no_context_takeover"},
		{"client no ctx", DeflateOptions{}, []string{"permessage-deflate; client_no_context_takeover"}, "permessage-deflate; client_no_context_takeover"},
		{"defaults", DefaultDeflateOptions(), []string{"permessage-deflate"}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"server bits 15", DeflateOptions{}, []string{"permessage-deflate; server_max_window_bits=15"}, "permessage-deflate; server_max_window_bits=15"},
		{"server bits 10", DeflateOptions{}, []string{"permessage-deflate; server_max_window_bits=10"}, "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"},
		{"server bits quoted", DeflateOptions{}, []string{`permessage-deflate; server_max_window_bits="12"`}, "permessage-deflate; server_no_context_takeover; server_max_window_bits=12"},
		{"server bits config", DeflateOptions{ServerMaxWindowBits: 11}, []string{"permessage-deflate; server_max_window_bits=13"}, "permessage-deflate; server_no_context_takeover; server_max_window_bits=11"},
		{"name case", DeflateOptions{}, []string{"PerMessage-Deflate"}, "permessage-deflate"},
		{"second offer", DeflateOptions{}, []string{"permessage-deflate; server_max_window_bits=7, permessage-deflate; client_no_context_takeover"}, "permessage-deflate; client_no_context_takeover"},
		{"second line", DeflateOptions{}, []string{"x-webkit-deflate-frame", "permessage-deflate"}, "permessage-deflate"},
		{"other extension", DeflateOptions{}, []string{"x-webkit-deflate-frame"}, ""},
		{"server bits 7", DeflateOptions{}, []string{"permessage-deflate; server_max_window_bits=7"}, ""},
		{"server bits 16", DeflateOptions{}, []string{"permessage-deflate; server_max_window_bits=16"}, ""},
		{"server bits leading zero", DeflateOptions{}, []string{"permessage-deflate; server_max_window_bits=09"}, ""},
		{"server bits no value", DeflateOptions{}, []string{"permessage-deflate; server_max_window_bits"}, ""},
		{"client bits 0", DeflateOptions{}, []string{"permessage-deflate; client_max_window_bits=0"}, ""},
		{"no ctx with value", DeflateOptions{}, []string{"permessage-deflate; server_no_context_takeover=1"}, ""},
		{"duplicate", DeflateOptions{}, []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, ""},
		{"unknown param", DeflateOptions{}, []string{"permessage-deflate; foo"}, ""},
	}
	for _, c := range cases {
		var lines []string
		for _, o := range c.offer {
			lines = append(lines, "Sec-WebSocket-Extensions: "+o)
		}
		a, err := Handshake(request("GET", nil, lines...), &HandshakeOptions{Deflate: &c.opt})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := ""
		if a.Compression {
			got = string(a.Deflate.AppendExtension(nil))
		}
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
		// The response must parse back to the same parameters on the client side.
		if a.Compression {
			p, ok, err := ParseDeflateResponse(Fields{{[]byte("Sec-WebSocket-Extensions"), []byte(got)}})
			if !ok || err != nil || p.ServerNoContextTakeover != a.Deflate.ServerNoContextTakeover ||
				p.ClientNoContextTakeover != a.Deflate.ClientNoContextTakeover || p.ServerMaxWindowBits != a.Deflate.ServerMaxWindowBits {
				t.Errorf("%s: parse back %+v %v %v, want %+v", c.name, p, ok, err, a.Deflate)
			}
		}
	}
	// Without options the extension is declined whatever the offer.
	a, _ := Handshake(request("GET", nil, "Sec-WebSocket-Extensions: permessage-deflate"), &HandshakeOptions{})
	if a.Compression || bytes.Contains(a.AppendHeaders(nil), []byte("Extensions")) {
		t.Fatal("deflate accepted without options")
	}
}

func TestMapHeader(t *testing.T) {
	h := MapHeader{"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Version": {"13"}}
	a, err := Handshake(Request{Method: []byte("GET"), Host: []byte("h"), Header: h}, &HandshakeOptions{})
	if err != nil || a.AcceptValue() != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("%v %q", err, a.AcceptValue())
	}
	if len(a.Headers()) != 3 {
		t.Fatalf("headers %q", a.Headers())
	}
}
