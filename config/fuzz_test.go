package config

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it reports has
// a position, and that a configuration it accepts prints as YAML that parses
// back to the same configuration. The seed corpus is in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(fullExample))
	f.Add([]byte("servers: [{listen: ':0', routes: [{respond: {status: 204}}]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %v", err)
			}
			for _, e := range list {
				if e.File != "f.yaml" || e.Line < 1 || e.Column < 1 {
					t.Fatalf("error without a position: %q", e.Error())
				}
			}
			return
		}
		checkRoundTrip(t, c)
	})
}

// FuzzParseSize checks that parseSize never panics, never returns a negative
// size, and agrees with formatSize.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "64KiB", "10 MiB", "1GB", "9223372036854775807", "8388608TiB", "1.5k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
		if back, err := parseSize(formatSize(n)); err != nil || back != n {
			t.Fatalf("parseSize(formatSize(%d)) = %d, %v", n, back, err)
		}
	})
}
