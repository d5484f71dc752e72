package static

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// symlinkTree builds base/root with files and links pointing inside and outside it,
// and base/secret.txt and base/outdir/secret.txt outside it. It returns base and root.
func symlinkTree(t *testing.T) (string, string) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "root")
	writeTree(t, base, map[string]string{
		"secret.txt":         "SECRET",
		"outdir/secret.txt":  "SECRET",
		"root/file.txt":      "hello",
		"root/sub/inner.txt": "inner",
		"root/.hidden":       "hidden",
	})
	links := map[string]string{
		"link-in":         "file.txt",
		"sub/link-parent": "../file.txt",
		"abs-in":          filepath.Join(root, "file.txt"),
		"link-out":        "../secret.txt",
		"abs-out":         filepath.Join(base, "secret.txt"),
		"dir-out":         "../outdir",
		"dir-in":          "sub",
		"sub/deep-out":    "../../secret.txt",
		"loop":            "loop",
		"dangling":        "nothing-here",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Skipf("symlinks unavailable: %v", err)
		}
	}
	return base, root
}

type resolveCase struct {
	rel                   string
	inside, always, never bool // whether each policy may open it
}

var resolveCases = []resolveCase{
	{"file.txt", true, true, true},
	{"sub/inner.txt", true, true, true},
	{"", true, true, true},
	{"sub", true, true, true},
	{"link-in", true, true, false},
	{"sub/link-parent", true, true, false},
	{"abs-in", true, true, false},
	{"dir-in/inner.txt", true, true, false},
	{"link-out", false, true, false},
	{"abs-out", false, true, false},
	{"dir-out/secret.txt", false, true, false},
	{"sub/deep-out", false, true, false},
	{"loop", false, false, false},
	{"dangling", false, false, false},
	{"missing", false, false, false},
	{"file.txt/x", false, false, false},
}

func testResolver(t *testing.T, portable bool) {
	_, root := symlinkTree(t)
	for _, pol := range []struct {
		name   string
		policy symlinkPolicy
	}{{"inside_root", followInsideRoot}, {"always", followAlways}, {"never", followNever}} {
		r, err := openResolver(root, pol.policy)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range resolveCases {
			want := map[symlinkPolicy]bool{followInsideRoot: c.inside, followAlways: c.always, followNever: c.never}[pol.policy]
			open := r.open
			if portable {
				open = r.openPortable
			}
			f, fi, err := open(c.rel)
			if want != (err == nil) {
				t.Errorf("%s: open(%q): err %v, want success %v", pol.name, c.rel, err, want)
			}
			if err != nil {
				if !errors.Is(err, errNotFound) {
					t.Errorf("%s: open(%q): error %v is not errNotFound", pol.name, c.rel, err)
				}
				continue
			}
			if fi == nil || (!fi.Mode().IsRegular() && !fi.IsDir()) {
				t.Errorf("%s: open(%q): info %v", pol.name, c.rel, fi)
			}
			if fi.Mode().IsRegular() {
				b, _ := io.ReadAll(f)
				if string(b) == "SECRET" && pol.policy != followAlways {
					t.Errorf("%s: open(%q) read the secret outside root", pol.name, c.rel)
				}
			}
			f.Close()
		}
		r.close()
	}
}

func TestResolver(t *testing.T)         { testResolver(t, false) }
func TestResolverPortable(t *testing.T) { testResolver(t, true) }

func TestWithin(t *testing.T) {
	tests := []struct {
		root, p string
		want    bool
	}{
		{"/srv/www", "/srv/www", true},
		{"/srv/www", "/srv/www/a", true},
		{"/srv/www", "/srv/www/..a", true},
		{"/srv/www", "/srv/wwwx", false},
		{"/srv/www", "/srv", false},
		{"/srv/www", "/etc/passwd", false},
		{"/", "/etc", true},
	}
	for _, tt := range tests {
		if got := within(tt.root, tt.p); got != tt.want {
			t.Errorf("within(%q, %q) = %v", tt.root, tt.p, got)
		}
	}
}
