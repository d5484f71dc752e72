package http1

import "testing"

// TestToolkit covers the exported byte-level helpers that server, static, config and
// the app share, for both string and []byte arguments.
func TestToolkit(t *testing.T) {
	for _, tc := range []struct {
		s     string
		token bool
		value bool
	}{
		{"Content-Type", true, true},
		{"x!#$%&'*+-.^_`|~9", true, true},
		{"", false, true},
		{"a b", false, true},
		{"a:b", false, true},
		{"a\tb", false, true},
		{"a\r\nb", false, false},
		{"a\x00", false, false},
		{"a\x7f", false, false},
		{"caf\xc3\xa9", false, true}, // obs-text is a valid value, never a token
		{"(x)", false, true},
	} {
		if IsToken(tc.s) != tc.token || IsToken([]byte(tc.s)) != tc.token {
			t.Errorf("IsToken(%q) != %v", tc.s, tc.token)
		}
		if ValidFieldName(tc.s) != tc.token {
			t.Errorf("ValidFieldName(%q) != %v", tc.s, tc.token)
		}
		if ValidFieldValue(tc.s) != tc.value || ValidFieldValue([]byte(tc.s)) != tc.value {
			t.Errorf("ValidFieldValue(%q) != %v", tc.s, tc.value)
		}
		if got := ValidField(tc.s, tc.s); got != (tc.token && tc.value) {
			t.Errorf("ValidField(%q, %q) = %v", tc.s, tc.s, got)
		}
	}
	for _, tc := range []struct {
		a, b string
		eq   bool
	}{{"Host", "host", true}, {"HOST", "hOsT", true}, {"host", "hosts", false}, {"K", "\u212a", false}, {"", "", true}} {
		if EqualFold(tc.a, tc.b) != tc.eq || EqualFold([]byte(tc.a), tc.b) != tc.eq {
			t.Errorf("EqualFold(%q, %q) != %v", tc.a, tc.b, tc.eq)
		}
	}
	for _, tc := range []struct {
		s  string
		n  int64
		ok bool
	}{{"0", 0, true}, {"42", 42, true}, {"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false}, {"", 0, false}, {"+1", 0, false}, {"-1", 0, false}, {" 1", 0, false}, {"1x", 0, false}} {
		n, ok := ParseDecimal(tc.s)
		if n != tc.n || ok != tc.ok {
			t.Errorf("ParseDecimal(%q) = %d, %v", tc.s, n, ok)
		}
		if bn, bok := ParseDecimal([]byte(tc.s)); bn != n || bok != ok {
			t.Errorf("ParseDecimal([]byte(%q)) differs", tc.s)
		}
	}
	if Lower('A') != 'a' || Lower('z') != 'z' || Lower('@') != '@' || Lower('[') != '[' {
		t.Error("Lower")
	}
}
