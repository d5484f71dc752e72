package app

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/net/http2"
)

// TestH2HeaderLimitsFromConfig: limits.header_fields and limits.header_bytes bound an
// HTTP/2 request's header section as they bound an HTTP/1.1 one, with the same 431,
// limits.request_line bounds :method and :path with the same 414, and
// SETTINGS_MAX_HEADER_LIST_SIZE is advertised from them. The HTTP/2 side used to apply
// its own 64 KiB, no field count and no request line, so a request refused over
// HTTP/1.1 reached the handler (and the proxy's upstream) over HTTP/2. On epoll and
// io_uring.
func TestH2HeaderLimitsFromConfig(t *testing.T) { onLinuxEngines(t, testH2HeaderLimitsFromConfig) }

func testH2HeaderLimitsFromConfig(t *testing.T, eng string) {
	_, addr := startApp(t, `
engine: `+eng+`
limits: { request_line: 1KiB, header_bytes: 2KiB, header_fields: 10 }
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]
    routes:
      - match: { path: / }
        respond: { status: 200, body: "ok" }
`)
	h2 := testkit.H2CClient(t)
	status := func(h2c bool, fields int, long int) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		// Go sends user-agent and accept-encoding itself: two fields.
		for i := range fields - 2 {
			req.Header.Set(fmt.Sprintf("X-F%d", i), "v")
		}
		if long > 0 {
			req.Header.Set("X-Long", strings.Repeat("l", long))
		}
		c := http.DefaultClient
		if h2c {
			c = h2
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("h2c %v, %d fields: %v", h2c, fields, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if h2c != (resp.ProtoMajor == 2) {
			t.Fatalf("answered over %s", resp.Proto)
		}
		return resp.StatusCode
	}
	for _, tc := range []struct {
		fields, long, want int
	}{
		{10, 0, 200},
		{11, 0, 431},
		{3, 1800, 200},
		{3, 2100, 431},
	} {
		// HTTP/1.1 also counts Host, which HTTP/2 carries as :authority.
		h1 := status(false, tc.fields-1, tc.long)
		if got := status(true, tc.fields, tc.long); got != tc.want || h1 != tc.want {
			t.Errorf("%d fields, a %d-octet one: HTTP/2 %d, HTTP/1.1 %d, want %d", tc.fields, tc.long, got, h1, tc.want)
		}
	}

	// The request line: "GET " + target + " HTTP/1.1" within 1 KiB, 414 past it.
	for _, tc := range []struct{ n, want int }{{1024 - 13, 200}, {1024 - 12, 414}} {
		url := "http://" + addr + "/" + strings.Repeat("t", tc.n-1)
		var got [2]int
		for i, c := range []*http.Client{http.DefaultClient, h2} {
			resp, err := c.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got[i] = resp.StatusCode
		}
		if got != [2]int{tc.want, tc.want} {
			t.Errorf("%d-octet target: HTTP/1.1 %d, HTTP/2 %d, want %d", tc.n, got[0], got[1], tc.want)
		}
	}

	_, fr := testkit.H2Open(t, addr)
	fr.WriteSettingsAck()
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %T", f)
	}
	got, _ := sf.Value(http2.SettingMaxHeaderListSize)
	if want := uint32(2048 + 28*10 + 1024 + 5*32); got != want {
		t.Fatalf("SETTINGS_MAX_HEADER_LIST_SIZE %d, want %d", got, want)
	}
}
