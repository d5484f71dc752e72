package app

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testcert"
)

// TestChromiumOverH2 loads a page from a TLS server with protocols [http1, h2]
// in headless Chromium, which trusts the server's key by its SPKI hash (no
// certificate errors ignored), and checks that the page, its script and a
// fetched resource all came over h2 (Resource Timing's nextHopProtocol).
func TestChromiumOverH2(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ca.Issue("site", "localhost", "127.0.0.1")
	kp, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(kp.Certificate[0])
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	www := filepath.Join(dir, "www")
	os.MkdirAll(www, 0o755)
	os.WriteFile(filepath.Join(www, "index.html"), []byte(`<!doctype html><html><body><div id="out">loading</div>
<script src="/app.js"></script></body></html>`), 0o644)
	// The browser's own /favicon.ico request (also h2) can finish before data.txt does
	// and then shows up among the resources: only the page's own are compared.
	os.WriteFile(filepath.Join(www, "app.js"), []byte(`
fetch('/data.txt').then(r => r.text()).then(text => {
  const nav = performance.getEntriesByType('navigation')[0].nextHopProtocol;
  const res = performance.getEntriesByType('resource').filter(e => !e.name.endsWith('/favicon.ico')).map(e => e.name.replace(location.origin, '') + '=' + e.nextHopProtocol).sort().join(',');
  document.getElementById('out').textContent = 'nav=' + nav + ' ' + res + ' data=' + text.trim();
});
`), 0o644)
	os.WriteFile(filepath.Join(www, "data.txt"), []byte(strings.Repeat("x", 100)+"\n"), 0o644)
	_, addr := startApp(t, fmt.Sprintf(`
workers: 2
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2]
    tls:
      certificates: [{ cert: %s, key: %s }]
    routes:
      - static: { root: %s }
`, f.Cert, f.Key, www))
	_, port, _ := strings.Cut(addr, ":")
	dom := runChromium(t, bin, "--ignore-certificate-errors-spki-list="+base64.StdEncoding.EncodeToString(spki[:]),
		"--dump-dom", "https://localhost:"+port+"/index.html")
	want := "nav=h2 /app.js=h2,/data.txt=h2 data=" + strings.Repeat("x", 100)
	if !strings.Contains(dom, `<div id="out">`+want+`</div>`) {
		t.Fatalf("page over h2: want %q in\n%s", want, dom)
	}
}
