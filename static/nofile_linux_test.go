package static

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// openDescriptors counts the descriptors the process has open.
func openDescriptors(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// lowerDescriptorLimit sets the soft RLIMIT_NOFILE to n until the test ends.
func lowerDescriptorLimit(t *testing.T, n uint64) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if n >= old.Cur {
		t.Skipf("descriptor limit %d is already at most %d", old.Cur, n)
	}
	lowered := unix.Rlimit{Cur: n, Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restore RLIMIT_NOFILE: %v", err)
		}
	})
}

// TestCacheDescriptorsStayWithinLimit serves more files above smallFileMax (each
// cached with its descriptor open) than the process may open, with the default
// open_file_cache.max of 10000. The cache held a descriptor per file until the limit,
// then every file not cached yet was a 500 ("openat2: too many open files") for good,
// and connections could no longer be accepted. Now the cache holds at most a quarter
// of the limit, and when descriptors run out anyway (taken by something else) it gives
// back its least recently used ones and the open is tried again.
func TestCacheDescriptorsStayWithinLimit(t *testing.T) {
	root := t.TempDir()
	const files = 300
	body := strings.Repeat("x", smallFileMax+1000)
	for i := range files + 1 {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("f%d.bin", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := openDescriptors(t)
	limit := base + 200
	lowerDescriptorLimit(t, uint64(limit))
	h := newHandler(t, Options{Root: root}) // after lowering: New reads the limit

	for i := range files {
		expect(t, do(t, h, "GET", fmt.Sprintf("/f%d.bin", i)), 200, body)
	}
	if held, most := openDescriptors(t)-base, limit/4+16; held > most {
		t.Fatalf("the cache holds %d descriptors after %d files; want at most %d (a quarter of the limit %d, plus shards' rounding)", held, files, most, limit)
	}

	// Something else takes every descriptor left: the next file not cached yet still
	// opens, with a descriptor the cache gives back.
	var hogs []int
	t.Cleanup(func() {
		for _, fd := range hogs {
			unix.Close(fd)
		}
	})
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hogs = append(hogs, fd)
	}
	expect(t, do(t, h, "GET", fmt.Sprintf("/f%d.bin", files)), 200, body)
}
