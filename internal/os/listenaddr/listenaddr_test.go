package listenaddr

import "testing"

func TestResolve(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:80": "127.0.0.1:80", "localhost:80": "127.0.0.1:80", ":80": "0.0.0.0:80",
		"0.0.0.0:80": "0.0.0.0:80", "[::1]:80": "[::1]:80", "[::]:0": "[::]:0",
		"[::ffff:127.0.0.1]:80": "127.0.0.1:80", "127.0.0.1:080": "127.0.0.1:80", "LocalHost:0": "127.0.0.1:0", "[0:0::1]:443": "[::1]:443",
	} {
		got, err := Resolve(in)
		if err != nil || got.String() != want {
			t.Errorf("Resolve(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"999.1.1.1:80", "example.com:80", "127.0.0.1", "127.0.0.1:65536",
		"127.0.0.1:http", "[fe80::1%eth0]:80", "1.2.3:80", "[127.0.0.1]:80x"} {
		if got, err := Resolve(in); err == nil {
			t.Errorf("Resolve(%q) = %v, want an error", in, got)
		}
	}
}

func TestOverlap(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:80", "localhost:80", true},
		{"0.0.0.0:80", "127.0.0.1:80", true},
		{":80", "10.0.0.1:80", true},
		{"[::]:80", "127.0.0.1:80", true},
		{"[::]:80", "[::1]:80", true},
		{"[::]:80", ":80", true},
		{"[::1]:80", "localhost:80", false},
		{"0.0.0.0:80", "[::1]:80", false},
		{"127.0.0.1:80", "127.0.0.2:80", false},
		{"127.0.0.1:80", "127.0.0.1:81", false},
		{"127.0.0.1:0", "127.0.0.1:0", false},
	}
	for _, tc := range cases {
		a, _ := Resolve(tc.a)
		b, _ := Resolve(tc.b)
		if Overlap(a, b) != tc.want || Overlap(b, a) != tc.want {
			t.Errorf("Overlap(%s, %s) = %v, want %v", tc.a, tc.b, !tc.want, tc.want)
		}
	}
}
