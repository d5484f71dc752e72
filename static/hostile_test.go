package static

import (
	"strings"
	"testing"
)

// TestHostilePaths sends paths that try to leave the root through every policy. The
// answer is 400, 404 or 414 (dot segments that stay inside the root are resolved, as
// routing resolves them; or a 301 to a cleaned path inside the root), never the
// secret that lives outside the root, except through a link under "always", which
// follows links by design.
func TestHostilePaths(t *testing.T) {
	base, root := symlinkTree(t)
	for _, policy := range []string{SymlinksInsideRoot, SymlinksAlways, SymlinksNever} {
		for _, fallback := range []string{"", "/file.txt"} {
			h := newHandler(t, Options{Root: root, FollowSymlinks: policy, Dotfiles: DotfilesAllow, Fallback: fallback})
			checkHostile(t, h, policy, fallback != "", hostileCases(base))
		}
	}
}

// hostileCases lists the hostile paths; base is the directory holding the root.
func hostileCases(base string) []hostileCase {
	// status 0: 404 under inside_root and never, 200 (the secret) under always.
	tests := []hostileCase{
		{"/../secret.txt", 400},
		{"/..", 400},
		{"/sub/../../secret.txt", 400},
		{"/./../secret.txt", 400},
		{"/%2e%2e/secret.txt", 400},
		{"/%2E%2E/secret.txt", 400},
		{"/.%2e/secret.txt", 400},
		{"/%2e./secret.txt", 400},
		{"/%2e%2e", 400},
		{"/..%2fsecret.txt", 400},
		{"/..%2Fsecret.txt", 400},
		{"/sub%2f..%2f..%2fsecret.txt", 400},
		{"/..%5csecret.txt", 400},
		{"/..%5Csecret.txt", 400},
		{"/..\\secret.txt", 400},
		{"/sub\\..\\..\\secret.txt", 400},
		{"/secret.txt%00", 400},
		{"/secret.txt%00.html", 400},
		{"/file.txt\x00", 400},
		{"/%", 400},
		{"/%2", 400},
		{"/%zz/secret.txt", 400},
		{"/%%32%65%%32%65/secret.txt", 400},
		{"secret.txt", 400},
		{"../secret.txt", 400},
		{"http://localhost/../secret.txt", 400},
		{"/" + strings.Repeat("../", 2000) + "secret.txt", 400},
		{"/" + strings.Repeat("a/", 2100), 414},
		{"/%252e%252e/secret.txt", 404},
		{"/%252e%252e%252fsecret.txt", 404},
		{"/%25%32%65%25%32%65/secret.txt", 404},
		{"/%c0%ae%c0%ae/secret.txt", 404},
		{"/%c0%af..%c0%afsecret.txt", 404},
		{"/..;/secret.txt", 400},
		{"/.;/secret.txt", 400},
		{"/...//secret.txt", 404},
		{"/.../secret.txt", 404},
		{"//secret.txt", 404},
		{"/" + base + "/secret.txt", 404},
		{"/secret.txt", 404},
		{"/link-out", 0},
		{"/abs-out", 0},
		{"/dir-out/secret.txt", 0},
		{"/sub/deep-out", 0},
		{"/dir-out/../secret.txt", 404}, // normalized to /secret.txt, which is not below the root
		{"/loop", 404},
	}
	return tests
}

type hostileCase struct {
	path   string
	status int
}

func checkHostile(t *testing.T, h *Handler, policy string, fallback bool, tests []hostileCase) {
	t.Helper()
	for _, tt := range tests {
		r := newRecorder(t, "GET", "")
		r.PathS = tt.path
		h.ServeExchange(r)
		want := tt.status
		if want == 0 {
			want = 404
			if policy == SymlinksAlways {
				want = 200
			}
		}
		leaked := strings.Contains(r.Body.String(), "SECRET")
		switch {
		case fallback && want == 404 && r.Status == 200 && r.Body.String() == "hello":
			// The fallback file answers a missing path.
		case r.Status != want:
			t.Errorf("%s: GET %q: status %d, want %d", policy, tt.path, r.Status, want)
		}
		if leaked && want != 200 {
			t.Errorf("%s: GET %q served a file outside the root", policy, tt.path)
		}
		if !r.Done {
			t.Errorf("%s: GET %q: response not ended", policy, tt.path)
		}
	}
}
