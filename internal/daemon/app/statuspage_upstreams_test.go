package app

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// TestStatusPageUpstreams checks that /status.json carries the upstream
// groups' health and that the status page shows it: one server up, one whose
// port refuses connections down.
func TestStatusPageUpstreams(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer origin.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: its checks fail
	a, _ := startApp(t, fmt.Sprintf(`
workers: 1
admin: { listen: 127.0.0.1:0 }
upstreams:
  app:
    servers: ["%s", "%s"]
    health_check: { type: tcp, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: app }
`, strings.TrimPrefix(origin.URL, "http://"), dead))
	var st struct {
		Upstreams []struct {
			Name    string `json:"name"`
			Servers []struct {
				Address string `json:"address"`
				Healthy bool   `json:"healthy"`
				Down    bool   `json:"down"`
			} `json:"servers"`
		} `json:"upstreams"`
	}
	testkit.WaitFor(t, "/status.json to show the dead server down", func() bool {
		_, body := adminDo(t, "GET", "http://"+a.AdminAddr()+"/status.json", "")
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		return len(st.Upstreams) == 1 && len(st.Upstreams[0].Servers) == 2 && st.Upstreams[0].Servers[1].Down
	})
	if u := st.Upstreams[0]; u.Name != "app" || !u.Servers[0].Healthy || u.Servers[1].Healthy {
		t.Fatalf("upstreams in /status.json: %+v", st.Upstreams)
	}
	dom := runChromium(t, chromium(t), "--dump-dom", "http://"+a.AdminAddr()+"/status")
	for _, want := range []string{`<td>app</td><td class="l">` + strings.TrimPrefix(origin.URL, "http://") + `</td><td class="l">up</td>`,
		`<td>app</td><td class="l">` + dead + `</td><td class="l c5">down</td>`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the status page has no row %s:\n%s", want, dom)
		}
	}
}
