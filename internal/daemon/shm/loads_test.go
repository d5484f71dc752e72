//go:build linux

package shm

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/gale-server/gale/lb"
)

// TestLoadTableShared: two mappings of one load table (as two worker
// processes have) see each other's in-flight counts, and a table of another
// layout is refused.
func TestLoadTableShared(t *testing.T) {
	stats := filepath.Join(t.TempDir(), "gale-x.stats")
	path := LoadTablePath(stats, "app")
	size := lb.LoadsSize(4, 8)
	m1, err := MapShared(path, size)
	if err != nil {
		t.Fatal(err)
	}
	defer Unmap(m1)
	m2, err := MapShared(path, size)
	if err != nil {
		t.Fatal(err)
	}
	defer Unmap(m2)
	w0, err := lb.LoadsOn(m1, 4, 8, 0, 1, ProcessAlive)
	if err != nil {
		t.Fatal(err)
	}
	w1, err := lb.LoadsOn(m2, 4, 8, 1, 2, ProcessAlive)
	if err != nil {
		t.Fatal(err)
	}
	w0.Inc(3)
	w1.Inc(3)
	w1.Inc(1)
	if w0.Get(3) != 2 || w0.Get(1) != 1 || w1.Get(3) != 2 {
		t.Errorf("counts %d %d %d, want 2 1 2", w0.Get(3), w0.Get(1), w1.Get(3))
	}
	if _, err := MapShared(path, size+8); !errors.Is(err, ErrFormat) {
		t.Errorf("a table of another size: %v, want ErrFormat", err)
	}
	RemoveLoadTables(stats)
	if m, _ := filepath.Glob(stats + ".lb-*"); len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}
}
