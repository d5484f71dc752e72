package app

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2StallResetObserved: a client that opens a stream window of 1,000 bytes
// and never widens it has the stream reset with RST_STREAM CANCEL after
// timeouts.write. The reset counts in gale_http2_resets_total{direction="sent"},
// the request in gale_http_requests_total with the status it sent (200, as nginx
// logs a send timeout), and the access log has its line with the 1,000 bytes that
// reached the client and a duration of at least the write timeout; a second
// stream on the same connection is served and logged on its own.
func TestH2StallResetObserved(t *testing.T) { onLinuxEngines(t, h2StallResetObserved) }

func h2StallResetObserved(t *testing.T, eng string) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), bytes.Repeat([]byte("x"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "access.log")
	a, addr := runApp(t, `
engine: `+eng+`
workers: 1
timeouts: { write: 300ms }
admin: { listen: "127.0.0.1:0" }
servers:
  - { name: web, listen: ["127.0.0.1:0"], protocols: [http1, h2c], access_log: { path: `+logPath+`, format: json },
      routes: [{ name: files, static: { root: `+dir+` } }] }
`)
	r := dialH2Raw(t, addr)
	r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
	block := func(path string) []byte {
		var b bytes.Buffer
		enc := hpack.NewEncoder(&b)
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", addr}, {":path", path}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		return b.Bytes()
	}
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("/big.bin"), EndStream: true, EndHeaders: true})
	if err := r.out.Flush(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	data, second := 0, false
	for !second {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", data, err)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			if f.StreamID == 1 {
				data += len(f.Data())
			}
			second = f.StreamID == 3 && f.StreamEnded()
		case *http2.RSTStreamFrame:
			if f.StreamID != 1 || f.ErrCode != http2.ErrCodeCancel {
				t.Fatalf("RST_STREAM %d %v", f.StreamID, f.ErrCode)
			}
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Fatalf("reset after %v, before the write timeout", d)
			}
			r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block("/big.bin?small"), EndStream: true, EndHeaders: true})
			// The second stream's window is as small, and the connection's is 64 KiB:
			// WINDOW_UPDATEs for both let it finish.
			r.fr.WriteWindowUpdate(3, 1<<20)
			r.fr.WriteWindowUpdate(0, 1<<20)
			r.out.Flush()
		}
	}
	if data != 1000 {
		t.Fatalf("stream 1 received %d bytes, want the 1,000 of its window", data)
	}
	text := scrape(t, &http.Client{Timeout: 10 * time.Second}, a.AdminAddr())
	for series, want := range map[string]float64{
		`gale_http2_resets_total{direction="sent"}`:                             1,
		`gale_http_requests_total{code_class="2xx",route="files",server="web"}`: 2,
	} {
		if got := metricValue(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	r.c.Close()
	shutdownNow(t, a)
	lines := readLines(t, logPath)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%q", len(lines), lines)
	}
	for _, line := range lines {
		var e struct {
			Path     string
			Status   int
			Bytes    int64
			Duration float64
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		switch e.Path {
		case "/big.bin":
			if e.Status != 200 || e.Bytes != 1000 || e.Duration < 0.3 {
				t.Errorf("stalled stream logged %s, want status 200, 1000 bytes, at least 0.3 s", line)
			}
		case "/big.bin?small":
			if e.Status != 200 || e.Bytes != 1<<20 {
				t.Errorf("second stream logged %s, want status 200 and %d bytes", line, 1<<20)
			}
		default:
			t.Errorf("unexpected line %s", line)
		}
	}
}
