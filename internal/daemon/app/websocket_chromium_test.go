package app

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
)

// chromiumPage opens a WebSocket to the page's own origin over wss, sends text and
// binary, and writes the echo into the DOM.
const chromiumPage = `<!doctype html><html><body><div id=out>pending</div><script>
const out = document.getElementById('out');
const s = new WebSocket('wss://' + location.host + '/ws');
s.binaryType = 'arraybuffer';
const got = [];
s.onopen = () => { s.send('hello over wss'); s.send(new Uint8Array([7, 8, 9])); };
s.onmessage = (e) => {
  got.push(typeof e.data === 'string' ? 'text:' + e.data : 'binary:' + Array.from(new Uint8Array(e.data)).join(','));
  if (got.length == 2) { out.textContent = 'echo[' + got.join('|') + '] ext=' + s.extensions; s.close(1000, 'done'); }
};
s.onerror = () => { out.textContent = 'error'; };
</script></body></html>`

// TestChromiumWSS loads a page from a tls: server in headless Chromium, which trusts the
// server's certificate by its public key (--ignore-certificate-errors-spki-list, no
// blanket certificate bypass), opens a wss:// WebSocket to the same origin with
// permessage-deflate, and checks the echo written into the DOM.
func TestChromiumWSS(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install -y chromium)")
	}
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.Issue("wss", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	yaml := fmt.Sprintf(`
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    tls:
      certificates: [{ cert: %s, key: %s }]
    routes:
      - match: { path: /ws }
        websocket: { echo: true, compression: true }
      - respond: { status: 200, body: %q, headers: { Content-Type: text/html; charset=utf-8 } }
`, f.Cert, f.Key, chromiumPage)
	_, addr := startApp(t, yaml)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := "echo[text:hello over wss|binary:7,8,9] ext=permessage-deflate"
	// --dump-dom writes the DOM once the virtual time budget is spent, which can come
	// before the echo's real round trip: a run whose DOM still says "pending" is made
	// again, up to 5 runs.
	var out []byte
	for run := 1; ; run++ {
		cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--no-first-run", "--user-data-dir="+filepath.Join(dir, fmt.Sprint("profile", run)),
			"--ignore-certificate-errors-spki-list="+base64.StdEncoding.EncodeToString(spki[:]),
			"--virtual-time-budget=5000", "--dump-dom", "https://"+addr+"/")
		cmd.Env = append(os.Environ(), "HOME="+dir)
		var err error
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
}
