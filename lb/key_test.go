package lb

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	for in, want := range map[string]KeySpec{
		"ip": {Kind: KeyIP}, "uri": {Kind: KeyURI},
		"header:X-User": {KeyHeader, "x-user"}, "cookie:SID": {KeyCookie, "SID"}, "query:id": {KeyQuery, "id"},
	} {
		got, err := ParseKey(in)
		if err != nil || got != want {
			t.Errorf("ParseKey(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if err == nil && !strings.EqualFold(got.String(), in) {
			t.Errorf("%q prints as %q", in, got.String())
		}
	}
	for in, want := range map[string]string{
		"":                                   "unknown hash key",
		"addr":                               "unknown hash key",
		"header":                             "needs a name",
		"header:":                            "needs a name",
		"cookie:a b":                         "not allowed",
		"query:a=b":                          "not allowed",
		"header:" + strings.Repeat("x", 300): "at most 256",
	} {
		if _, err := ParseKey(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKey(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestCookieValue(t *testing.T) {
	for _, c := range []struct {
		field, name, want string
		ok                bool
	}{
		{"sid=abc", "sid", "abc", true},
		{"a=1; sid=abc; b=2", "sid", "abc", true},
		{"a=1;sid=abc", "sid", "abc", true},
		{"  sid = \"q v\" ;", "sid", "q v", true},
		{"SID=x; sid=y", "sid", "y", true},
		{"sid=first; sid=second", "sid", "first", true},
		{"sid", "sid", "", false},
		{"sid=", "sid", "", true},
		{"xsid=1; sidx=2", "sid", "", false},
		{"", "sid", "", false},
		{";;;=;", "sid", "", false},
		{"\"=\"", "sid", "", false},
	} {
		v, ok := CookieValue([]byte(c.field), c.name)
		if ok != c.ok || string(v) != c.want {
			t.Errorf("CookieValue(%q, %q) = %q, %v; want %q, %v", c.field, c.name, v, ok, c.want, c.ok)
		}
	}
}

func TestQueryValue(t *testing.T) {
	for _, c := range []struct {
		query, name, want string
		ok                bool
	}{
		{"id=7", "id", "7", true},
		{"a=1&id=7&b", "id", "7", true},
		{"id", "id", "", true},
		{"id=", "id", "", true},
		{"idx=1&xid=2", "id", "", false},
		{"id=a%20b", "id", "a%20b", true},
		{"id=1&id=2", "id", "1", true},
		{"&&", "id", "", false},
		{"", "id", "", false},
		{"id=a=b", "id", "a=b", true},
	} {
		v, ok := QueryValue([]byte(c.query), c.name)
		if ok != c.ok || string(v) != c.want {
			t.Errorf("QueryValue(%q, %q) = %q, %v; want %q, %v", c.query, c.name, v, ok, c.want, c.ok)
		}
	}
}

// FuzzKeys checks the key extractors on any input: they never panic, what
// they return is a sub-slice of the input, a cookie value holds no ";" and a
// query value no "&", and what ParseKey accepts prints back to itself.
func FuzzKeys(f *testing.F) {
	f.Add([]byte("a=1; sid=\"x\"; b"), "sid")
	f.Add([]byte("q=1&id=a%20b&id=2"), "id")
	f.Add([]byte(";=;\"\"=\""), "")
	f.Add([]byte("header:X-Session"), "cookie:s")
	f.Fuzz(func(t *testing.T, in []byte, name string) {
		if v, ok := CookieValue(in, name); ok {
			if bytes.IndexByte(v, ';') >= 0 || !within(in, v) {
				t.Fatalf("cookie %q of %q: %q", name, in, v)
			}
		}
		if v, ok := QueryValue(in, name); ok {
			if bytes.IndexByte(v, '&') >= 0 || !within(in, v) {
				t.Fatalf("query %q of %q: %q", name, in, v)
			}
		}
		for _, s := range []string{string(in), name} {
			k, err := ParseKey(s)
			if err != nil {
				continue
			}
			if again, err := ParseKey(k.String()); err != nil || again != k {
				t.Fatalf("ParseKey(%q) = %+v does not survive String (%q: %+v, %v)", s, k, k.String(), again, err)
			}
		}
		_ = HashBytes(in)
	})
}

// within reports whether v is empty or lies inside in.
func within(in, v []byte) bool {
	if len(v) == 0 {
		return true
	}
	for i := 0; i+len(v) <= len(in); i++ {
		if &in[i] == &v[0] {
			return true
		}
	}
	return false
}
