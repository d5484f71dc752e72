package static

import (
	"errors"
	"path/filepath"
	"testing"

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
