package config

import (
	"reflect"
	"testing"
)

// TestZeroCopyConfig: zerocopy defaults to 256KiB, takes 0 (off) or a size from
// 4KiB to 1GiB, and refuses anything else with the value's position.
func TestZeroCopyConfig(t *testing.T) {
	c, err := Parse("gale.yaml", []byte(okServers))
	if err != nil {
		t.Fatal(err)
	}
	if c.ZeroCopy != 256<<10 {
		t.Fatalf("default zerocopy %d", c.ZeroCopy)
	}
	for src, want := range map[string]int64{"zerocopy: 0\n": 0, "zerocopy: 1MiB\n": 1 << 20, "zerocopy: 4KiB\n": 4 << 10} {
		c, err := Parse("gale.yaml", []byte(src+okServers))
		if err != nil || c.ZeroCopy != want {
			t.Fatalf("%q: zerocopy %v, %v; want %d", src, c, err, want)
		}
	}
	bad := map[string][]string{
		"zerocopy: 1KiB\n": {`gale.yaml:1:11: zerocopy: 1KiB is out of range 4KiB-1GiB (0 turns zero-copy off)`},
		"zerocopy: 2GiB\n": {`gale.yaml:1:11: zerocopy: 2GiB is out of range 4KiB-1GiB (0 turns zero-copy off)`},
		"zerocopy: -1\n":   {`gale.yaml:1:11: zerocopy: invalid size "-1": expected a byte count like 512, 64KiB, 10MiB or 1GB (units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)`},
	}
	for src, want := range bad {
		if got := errorLines(t, src+okServers); !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %q\nwant %q", src, got, want)
		}
	}
}
