package http2

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestH2Spec runs h2spec in strict mode against a Conn served by the test pump, with the
// binary GALE_H2SPEC names or h2spec from PATH. Every case must pass.
func TestH2Spec(t *testing.T) {
	bin := os.Getenv("GALE_H2SPEC")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("h2spec"); err != nil {
			t.Skip("h2spec not installed (go install github.com/summerwind/h2spec/cmd/h2spec@latest)")
		}
	}
	url, _ := h2cServer(t, Config{})
	hostPort := strings.TrimPrefix(url, "http://")
	host, port, _ := strings.Cut(hostPort, ":")
	out, err := exec.Command(bin, "-S", "-h", host, "-p", port, "-o", "2").CombinedOutput()
	if err != nil {
		t.Fatalf("h2spec: %v\n%s", err, out)
	}
	t.Logf("%s", out[max(0, len(out)-300):])
}
