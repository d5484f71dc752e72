package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testcert"
)

// TestTLSProtocols: h2 is accepted with a TLS section and offered only when
// listed; h2c and a list without http1 are refused on a TLS server.
func TestTLSProtocols(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.Issue("a", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("servers:\n  - listen: [\"127.0.0.1:0\"]\n    tls: { certificates: [{ cert: %s, key: %s }] }\n    routes: [{ respond: { status: 204 } }]\n", f.Cert, f.Key)
	c, err := Parse("a.yaml", []byte(base))
	if err != nil || c.Servers[0].HasProtocol(ProtoH2) {
		t.Fatalf("default: protocols %v, err %v", c.Servers[0].Protocols, err)
	}
	c, err = Parse("a.yaml", []byte(base+"    protocols: [http1, h2]\n"))
	if err != nil || !c.Servers[0].HasProtocol(ProtoH2) {
		t.Fatalf("h2: protocols %v, err %v", c.Servers[0].Protocols, err)
	}
	for list, want := range map[string]string{
		"[http1, h2c]": `servers[0].protocols: "h2c" is cleartext HTTP/2: over TLS list "h2"`,
		"[h2]":         `servers[0].protocols: must include "http1" or "h2c"`,
		"[h2c]":        `servers[0].protocols: "h2c" is cleartext HTTP/2`,
	} {
		_, err := Parse("a.yaml", []byte(base+"    protocols: "+list+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("protocols %s: error %v, want %q", list, err, want)
		}
	}
}
