package static

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/sys/unix"
)

// A FIFO inside the root must be refused without blocking the loop in open(2).
func TestResolverRefusesFIFO(t *testing.T) {
	root := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Skip(err)
	}
	r, err := openResolver(root, followInsideRoot)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if _, _, err := r.open("fifo"); !errors.Is(err, errNotFound) {
		t.Errorf("open(fifo): %v", err)
	}
	if _, _, err := r.openPortable("fifo"); !errors.Is(err, errNotFound) {
		t.Errorf("openPortable(fifo): %v", err)
	}
}

// A socket file or a device without a driver fails open(2) with ENXIO (ENODEV for
// some devices): it is not a file that can be served, and is answered 404 like a FIFO,
// as the package documents for anything but a regular file or a directory. It was a
// 500 on Linux (the portable resolver stats before opening and already said 404).
func TestServeSocketFileIsNotFound(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"d/index.html": "<h1>d</h1>"})
	ln, err := net.Listen("unix", filepath.Join(root, "app.sock"))
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	if ln2, err := net.Listen("unix", filepath.Join(root, "d", "index.html.gz")); err == nil {
		defer ln2.Close()
	}
	for _, portable := range []bool{false, true} {
		h := newHandler(t, Options{Root: root, Fallback: "/d/index.html"})
		h.res.noOpenat2.Store(portable)
		expect(t, do(t, h, "GET", "/app.sock"), 200, "<h1>d</h1>") // missing: the fallback
		h2 := newHandler(t, Options{Root: root})
		h2.res.noOpenat2.Store(portable)
		expect(t, do(t, h2, "GET", "/app.sock"), 404, anyBody)
		expect(t, do(t, h2, "GET", "/d/", "Accept-Encoding", "gzip"), 200, "<h1>d</h1>")
	}
}

// After openat2 reports ENOSYS the resolver keeps working through the portable path.
func TestResolverENOSYSFallback(t *testing.T) {
	_, root := symlinkTree(t)
	r, err := openResolver(root, followInsideRoot)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	r.noOpenat2.Store(true)
	f, _, err := r.open("link-in")
	if err != nil {
		t.Fatalf("open(link-in): %v", err)
	}
	f.Close()
	if _, _, err := r.open("link-out"); !errors.Is(err, errNotFound) {
		t.Errorf("open(link-out): %v", err)
	}
}

// The hostile-path table also holds when the portable resolver does the work.
func TestHostilePathsPortableOnLinux(t *testing.T) {
	base, root := symlinkTree(t)
	for _, policy := range []string{SymlinksInsideRoot, SymlinksAlways, SymlinksNever} {
		h := newHandler(t, Options{Root: root, FollowSymlinks: policy, Dotfiles: DotfilesAllow})
		h.res.noOpenat2.Store(true)
		checkHostile(t, h, policy, false, hostileCases(base))
	}
}

// A Handler dropped without Close, as a configuration reload drops the handlers of the
// routes it replaces, gives its root descriptor back once it is garbage-collected:
// the O_PATH descriptor was a bare int, and every reload leaked one per static route
// (ten SIGHUPs left 20 descriptors of the root open in a process with two routes).
func TestDroppedHandlerReleasesRoot(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"big.bin": bigContent(64 << 10)})
	rootFDs := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip(err)
		}
		n := 0
		for _, e := range ents {
			if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == root {
				n++
			}
		}
		return n
	}
	before := rootFDs()
	for range 50 {
		h, err := New(Options{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		// A cached large file keeps its own descriptor too.
		if r := do(t, h, "GET", "/big.bin"); r.Status != 200 {
			t.Fatalf("GET /big.bin: %d", r.Status)
		}
	}
	testkit.WaitFor(t, "root descriptors of dropped handlers closed", func() bool {
		runtime.GC()
		return rootFDs() <= before
	})
}
