package config

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"512", 512, ""},
		{"512B", 512, ""},
		{"64KiB", 64 << 10, ""},
		{"10MiB", 10 << 20, ""},
		{"10 MiB", 10 << 20, ""},
		{"2GiB", 2 << 30, ""},
		{"1TiB", 1 << 40, ""},
		{"1kB", 1000, ""},
		{"1KB", 1000, ""},
		{"1MB", 1e6, ""},
		{"1GB", 1e9, ""},
		{"3TB", 3e12, ""},
		{"9223372036854775807", 1<<63 - 1, ""},
		{"9223372036854775808", 0, "too large"},
		{"8388608TiB", 0, "too large"},
		{"1.5MiB", 0, `unknown unit ".5MiB"`},
		{"-1", 0, "invalid size"},
		{"", 0, "invalid size"},
		{"MiB", 0, "invalid size"},
		{"10mib", 0, `unknown unit "mib" (did you mean "MiB"?)`},
		{"10 K", 0, `unknown unit "K"`},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if tt.err == "" && (err != nil || got != tt.want) {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
		if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("parseSize(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.err)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 1: "1", 1000: "1kB", 1024: "1KiB", 8 << 10: "8KiB", 10 << 20: "10MiB",
		1e9: "1GB", 1 << 40: "1TiB", 1500: "1500", 2048000: "2000KiB", 1<<63 - 1: "9223372036854775807",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := parseSize(want); err != nil || back != n {
			t.Errorf("parseSize(formatSize(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0": 0, "5s": 5 * time.Second, "1m30s": 90 * time.Second, "250ms": 250 * time.Millisecond, "2h": 2 * time.Hour, " 1s ": time.Second,
	} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"5", "1d", "", "-1s", "s", "1x"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", in, got)
		}
	}
	// A well-formed duration beyond time.Duration's range is too large, not
	// malformed: the message said "expected a duration like 250ms".
	for _, in := range []string{"99999999999h", "2562048h", "9223372036854775808ns", "1h9223372036854775807ns"} {
		_, err := parseDuration(in)
		if err == nil || !strings.Contains(err.Error(), "too large (at most 2562047h)") {
			t.Errorf("parseDuration(%q): %v, want too large (at most 2562047h)", in, err)
		}
	}
	for _, in := range []string{"1.5.5s", "1e3s", "h", ".s", "1 h"} {
		if _, err := parseDuration(in); err == nil || !strings.Contains(err.Error(), "invalid duration") {
			t.Errorf("parseDuration(%q): %v, want invalid duration", in, err)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "0s", time.Second: "1s", 75 * time.Second: "75s", 60 * time.Second: "1m", 90 * time.Minute: "90m",
		2 * time.Hour: "2h", 3601 * time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s", time.Microsecond: "1µs",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := parseDuration(want); err != nil || back != d {
			t.Errorf("parseDuration(formatDuration(%v)) = %v, %v", d, back, err)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"workers", "processes", "cpu_affinity", "numa", "log", "timeouts", "limits", "servers"}
	for word, want := range map[string]string{
		"wokers": "workers", "Workers": "workers", "timeout": "timeouts", "sever": "servers",
		"cpu-affinity": "cpu_affinity", "lgo": "log", "proccesses": "processes",
		"zzz": "", "listen": "", "x": "",
	} {
		if got := suggest(word, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"hedaer", "header", 1}, {"kitten", "sitting", 3}, {"ab", "ba", 1}} {
		if got := editDistance(tt.a, tt.b); got != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}

func TestReloadsContext(t *testing.T) {
	if Reloads(context.Background()) != nil {
		t.Error("a bare context carries a reload channel")
	}
	ch := make(chan *Config, 1)
	ctx := WithReloads(context.Background(), ch)
	c := New()
	ch <- c
	if got := <-Reloads(ctx); got != c {
		t.Error("Reloads returned another channel")
	}
}
