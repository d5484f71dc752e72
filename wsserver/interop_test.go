package wsserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
	gws "github.com/gale-server/gale/websocket"
)

// This file runs clients nobody here wrote against gale's native echo: gorilla/websocket,
// coder/websocket, python3-websockets and a headless Chromium page.

// TestGorillaClient echoes messages of several sizes, fragmented writes, pings and the
// close handshake with gorilla/websocket's client, with and without compression.
func TestGorillaClient(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprint("compression=", compress), func(t *testing.T) {
			ws, addr := startWS(t, Echo{}, Options{Compression: compress})
			d := websocket.Dialer{EnableCompression: compress, HandshakeTimeout: 5 * time.Second}
			c, resp, err := d.Dial("ws://"+addr+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := resp.Header.Get("Sec-WebSocket-Extensions") != ""; got != compress {
				t.Fatalf("compression %v, want %v", got, compress)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			pong := make(chan string, 1)
			c.SetPongHandler(func(s string) error { pong <- s; return nil })
			for _, n := range []int{0, 10, 125, 126, 65535, 65536, 500000} {
				msg := []byte(strings.Repeat("gale ", n/5+1)[:n])
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					t.Fatal(err)
				}
				op, got, err := c.ReadMessage()
				if err != nil || op != websocket.TextMessage || string(got) != string(msg) {
					t.Fatalf("echo of %d bytes: op %d, %d bytes, %v", n, op, len(got), err)
				}
			}
			// A message written in fragments through NextWriter.
			w, _ := c.NextWriter(websocket.BinaryMessage)
			for i := 0; i < 5; i++ {
				w.Write([]byte{byte(i)})
			}
			w.Close()
			if _, got, err := c.ReadMessage(); err != nil || string(got) != "\x00\x01\x02\x03\x04" {
				t.Fatalf("fragmented echo: %q %v", got, err)
			}
			c.WriteControl(websocket.PingMessage, []byte("hb"), time.Now().Add(time.Second))
			// The pong is seen while reading; send one more message to read.
			c.WriteMessage(websocket.TextMessage, []byte("x"))
			if _, _, err := c.ReadMessage(); err != nil {
				t.Fatal(err)
			}
			if s := <-pong; s != "hb" {
				t.Fatalf("pong %q", s)
			}
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
			_, _, err = c.ReadMessage()
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("close: %v, want the server's close 1000", err)
			}
			c.Close()
			waitFor(t, func() bool { return ws.Stats().Closed == 1 })
		})
	}
}

// TestCoderClient echoes messages with coder/websocket's client and closes cleanly.
func TestCoderClient(t *testing.T) {
	for _, mode := range []coder.CompressionMode{coder.CompressionDisabled, coder.CompressionNoContextTakeover, coder.CompressionContextTakeover} {
		t.Run(fmt.Sprint("mode=", mode), func(t *testing.T) {
			opts := Options{Compression: true, MaxMessageBytes: 4 << 20}
			if mode == coder.CompressionContextTakeover {
				// Context takeover both ways: the server holds a Compressor and a Window.
				opts.Deflate = gws.DeflateOptions{Level: 1}
			}
			_, addr := startWS(t, Echo{}, opts)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := coder.Dial(ctx, "ws://"+addr+"/", &coder.DialOptions{CompressionMode: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			c.SetReadLimit(8 << 20)
			for _, n := range []int{1, 200, 70000, 3 << 20} {
				msg := []byte(strings.Repeat("coder ", n/6+1)[:n])
				for i := 0; i < 2; i++ {
					if err := c.Write(ctx, coder.MessageBinary, msg); err != nil {
						t.Fatal(err)
					}
					op, got, err := c.Read(ctx)
					if err != nil || op != coder.MessageBinary || string(got) != string(msg) {
						t.Fatalf("echo of %d bytes: %d bytes, %v", n, len(got), err)
					}
				}
			}
			if err := c.Close(coder.StatusNormalClosure, "done"); err != nil {
				t.Fatalf("close handshake: %v", err)
			}
		})
	}
}

// TestPythonClient runs python3-websockets (Debian's python3-websockets) against the
// echo: text, binary, a large message, compression, ping and the close handshake.
func TestPythonClient(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import websockets").Run(); err != nil {
		t.Skip("python3-websockets not installed (apt-get install -y python3-websockets)")
	}
	_, addr := startWS(t, Echo{}, Options{Compression: true})
	script := `
import asyncio, sys, websockets
async def main(uri):
    async with websockets.connect(uri, compression="deflate", max_size=2**21) as ws:
        assert ws.response_headers.get("Sec-WebSocket-Extensions", "").startswith("permessage-deflate"), ws.response_headers
        for msg in ["hello", "κόσμε " * 1000, b"\x00\x01\x02" * 50000]:
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 10)
            assert got == msg, (len(got), len(msg))
        pong = await ws.ping(b"py")
        await asyncio.wait_for(pong, 10)
        await ws.close(code=1000, reason="bye")
        assert ws.close_code == 1000, ws.close_code
    print("ok")
asyncio.run(main(sys.argv[1]))
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", script, "ws://"+addr+"/").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("python3-websockets: %v\n%s", err, out)
	}
}

// TestChromiumEcho loads a page in headless Chromium that opens a WebSocket to the
// echo (same origin: the page is served by a route of the same server), sends a text
// and a binary message and writes what came back into the DOM.
func TestChromiumEcho(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install -y chromium)")
	}
	ws, err := New(Echo{}, Options{Compression: true})
	if err != nil {
		t.Fatal(err)
	}
	page := `<!doctype html><html><body><div id="out">pending</div><script>
const out = document.getElementById("out");
const s = new WebSocket("ws://" + location.host + "/ws");
s.binaryType = "arraybuffer";
const got = [];
s.onopen = () => { s.send("héllo gale"); s.send(new Uint8Array([1, 2, 3, 250])); };
s.onmessage = (e) => {
  got.push(typeof e.data === "string" ? "text:" + e.data : "binary:" + Array.from(new Uint8Array(e.data)).join(","));
  if (got.length == 2) { out.textContent = "echo[" + got.join("|") + "] ext=" + s.extensions; s.close(1000, "done"); }
};
s.onerror = () => { out.textContent = "error"; };
</script></body></html>`
	srv := startRouted(t, ws, page)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := "echo[text:héllo gale|binary:1,2,3,250] ext=permessage-deflate"
	// --dump-dom writes the DOM once the virtual time budget is spent, which on an
	// idle machine can come before the echo's real round trip: a run whose DOM still
	// says "pending" is made again, up to 5 runs.
	var out []byte
	for run := 1; ; run++ {
		cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--no-first-run", "--user-data-dir="+filepath.Join(dir, fmt.Sprint("profile", run)),
			"--virtual-time-budget=5000", "--dump-dom", "http://"+srv+"/")
		cmd.Env = append(os.Environ(), "HOME="+dir)
		out, err = cmd.Output()
		if err != nil {
			t.Fatalf("chromium: %v\n%s", err, out)
		}
		if strings.Contains(string(out), want) || !strings.Contains(string(out), `<div id="out">pending</div>`) || run == 5 {
			break
		}
	}
	if !strings.Contains(string(out), want) {
		t.Fatalf("page DOM does not show the echo %q:\n%s", want, out)
	}
	waitFor(t, func() bool { return ws.Stats().Opened >= 1 })
}

// startRouted serves ws at /ws and page at every other path, on a one-loop gale server.
func startRouted(t *testing.T, ws *Server, page string) string {
	t.Helper()
	return servertest.Start(t, routed{ws: ws, page: []byte(page)}, nil).Addr()
}

// routed upgrades /ws and serves a page elsewhere.
type routed struct {
	ws   *Server
	page []byte
}

func (r routed) ServeGale(c *server.Ctx) {
	if string(c.Path()) == "/ws" {
		_ = r.ws.Upgrade(c)
		return
	}
	c.Respond(200, "text/html; charset=utf-8", r.page)
}
