package pubsub

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
)

// curlStream runs curl -N on url and returns its output lines as they arrive.
func curlStream(t *testing.T, url string, hdr ...string) <-chan string {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed (apt-get install -y curl)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	args := []string{"-N", "-s", "-H", "Accept: text/event-stream"}
	for _, h := range hdr {
		args = append(args, "-H", h)
	}
	cmd := exec.CommandContext(ctx, "curl", append(args, url)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	return lines
}

// expectLines reads lines until every one of want has appeared, in order.
func expectLines(t *testing.T, lines <-chan string, want ...string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for _, w := range want {
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended before %q", w)
				}
				if l != w {
					continue
				}
			case <-deadline:
				t.Fatalf("no line %q within 10s", w)
			}
			break
		}
	}
}

// TestSSECurl subscribes with curl -N, publishes over HTTP (multi-line text too) and
// reads the events with their ids; a reconnect with Last-Event-ID gets what it
// missed, and one with an unknown epoch is told recovery failed.
func TestSSECurl(t *testing.T) {
	hd, addr := startHub(t, Options{HistorySize: 16}, HandlerOptions{Mode: ProtocolMode, PublishToken: "tok"})
	lines := curlStream(t, "http://"+addr+"/ws/sse/news")
	expectLines(t, lines, ": subscribed")
	waitCount(t, hd.Hub(), "news", 1)
	publish := func(body string) {
		head, _ := testkit.Curl(t, "-s", "-i", "-H", "Authorization: Bearer tok", "--data-binary", body, "http://"+addr+"/ws/publish/news")
		if testkit.StatusOf(head) != "200" {
			t.Fatalf("publish: %s", head)
		}
	}
	publish("first")
	publish("two\nlines")
	epoch, _ := hd.Hub().Lookup("news").Epoch()
	expectLines(t, lines, "id: "+epoch+"-1", "data: first", "", "id: "+epoch+"-2", "data: two", "data: lines", "")

	// Missed messages after offset 1, then live ones.
	publish("third")
	again := curlStream(t, "http://"+addr+"/ws/sse/news", "Last-Event-ID: "+epoch+"-1")
	expectLines(t, again, "id: "+epoch+"-2", "data: two", "data: lines", "", "id: "+epoch+"-3", "data: third")
	stale := curlStream(t, "http://"+addr+"/ws/sse/news", "Last-Event-ID: 0000-5")
	expectLines(t, stale, "event: recovery-failed", "data: "+epoch+"-3")

	head, _ := testkit.Curl(t, "-s", "-i", "-H", "Accept: text/event-stream", "-H", "Last-Event-ID: garbage", "http://"+addr+"/ws/sse/news")
	if testkit.StatusOf(head) != "400" {
		t.Fatalf("bad Last-Event-ID: %s", head)
	}
	head, _ = testkit.Curl(t, "-s", "-i", "-H", "Accept: text/event-stream", "http://"+addr+"/ws/sse/")
	if testkit.StatusOf(head) != "404" {
		t.Fatalf("SSE without a topic: %s", head)
	}
}

// pageAndHub serves page at / and the hub below /ws/.
type pageAndHub struct {
	hd   *Handler
	page []byte
}

func (p pageAndHub) ServeGale(c *server.Ctx) {
	if strings.HasPrefix(string(c.Path()), "/ws/") {
		p.hd.ServeGale(c)
		return
	}
	c.Respond(200, "text/html; charset=utf-8", p.page)
}

// TestChromiumEventSource loads a page in headless Chromium that subscribes with
// EventSource, publishes three messages with fetch once the stream is open, and
// writes what arrived (data and offset from lastEventId) into the DOM.
func TestChromiumEventSource(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install -y chromium)")
	}
	h := New(Options{Loops: 2})
	hd, err := NewHandler(h, HandlerOptions{Prefix: "/ws/", Mode: ProtocolMode, PublishToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	page := `<!doctype html><html><body><div id="out">pending</div><script>
const out = document.getElementById("out");
const es = new EventSource("/ws/sse/news");
const got = [];
es.onopen = async () => {
  for (const m of ["alpha", "beta", "gamma"]) {
    await fetch("/ws/publish/news", {method: "POST", headers: {Authorization: "Bearer tok"}, body: m});
  }
};
es.onmessage = (e) => {
  got.push(e.data + "@" + e.lastEventId.split("-")[1]);
  if (got.length == 3) { out.textContent = "sse[" + got.join("|") + "]"; es.close(); }
};
es.onerror = () => { if (got.length < 3) out.textContent = "error after " + got.length; };
</script></body></html>`
	srv := servertest.Start(t, pageAndHub{hd: hd, page: []byte(page)}, func(so *server.Options) { so.Workers = 2 })
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--virtual-time-budget=5000", "--dump-dom", "http://"+srv.Addr()+"/")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	if want := "sse[alpha@1|beta@2|gamma@3]"; !strings.Contains(string(out), want) {
		t.Fatalf("page DOM does not show %q:\n%s", want, out)
	}
}

// TestSSEHead: the head of an SSE response carries Date and Server like every other
// response of the server, and the stream follows it.
func TestSSEHead(t *testing.T) {
	_, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, "GET /ws/sse/news HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Server") != "gale" {
		t.Fatalf("status %d, head %v", resp.StatusCode, resp.Header)
	}
	if d, err := http.ParseTime(resp.Header.Get("Date")); err != nil || time.Since(d).Abs() > time.Minute {
		t.Fatalf("Date %q: %v", resp.Header.Get("Date"), err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != ": subscribed\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
}

// TestSSELineBreaks publishes a payload with every kind of line break: each of CRLF,
// LF and a lone CR ends a data line, as the event-stream parser reads them. Before, a
// lone CR went out inside a data line, where the client's parser ends the line: what
// followed became a field of its own, so a publisher could set the subscribers'
// event id, event type or retry time ("x\rid: forged-9").
func TestSSELineBreaks(t *testing.T) {
	hd, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode, PublishToken: "tok"})
	lines := curlStream(t, "http://"+addr+"/ws/sse/news")
	expectLines(t, lines, ": subscribed")
	waitCount(t, hd.Hub(), "news", 1)
	head, _ := testkit.Curl(t, "-s", "-i", "-H", "Authorization: Bearer tok", "--data-binary",
		"cr\rlf\ncrlf\r\nid: forged-9\revent: x\r\rend", "http://"+addr+"/ws/publish/news")
	if testkit.StatusOf(head) != "200" {
		t.Fatalf("publish: %s", head)
	}
	epoch, _ := hd.Hub().Lookup("news").Epoch()
	expectLines(t, lines, "id: "+epoch+"-1")
	// The event's lines, exactly (the scanner splits at LF and drops a CR before it).
	want := []string{"data: cr", "data: lf", "data: crlf", "data: id: forged-9", "data: event: x", "data: ", "data: end", ""}
	for i, w := range want {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended at line %d", i)
			}
			if strings.ContainsRune(l, '\r') || l != w {
				t.Fatalf("line %d of the event: %q, want %q", i, l, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no line %d (%q) within 10s", i, w)
		}
	}
}

// TestSSEHeadRequest: HEAD with Accept: text/event-stream gets the head of an event
// stream and no body, subscribes nothing, and leaves the HTTP/1.1 connection usable
// (a pipelined request after it is answered). Before, it was served as a GET over
// HTTP/1.1: the stream's first lines went out as a body a HEAD response cannot have
// and the subscription stayed open; HTTP/2 was right already.
func TestSSEHeadRequest(t *testing.T) {
	hd, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, "HEAD /ws/sse/news HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"+
		"GET /ws/presence/news HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("HEAD: status %d, head %v", resp.StatusCode, resp.Header)
	}
	next, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request after HEAD: %v", err)
	}
	body, _ := io.ReadAll(next.Body)
	if next.StatusCode != 200 || !strings.Contains(string(body), `"subscribers":0`) {
		t.Fatalf("presence after HEAD: %d %s", next.StatusCode, body)
	}
	if n := hd.Hub().Count("news"); n != 0 {
		t.Fatalf("HEAD left %d subscribers", n)
	}
}
