package static

import (
	"fmt"
	"strings"
	"testing"
)

func TestEvalPreconditions(t *testing.T) {
	const etag = `"abc-10"`
	const mod = int64(1_700_000_000) // Tue, 14 Nov 2023 22:13:20 GMT
	const (
		before = "Tue, 14 Nov 2023 22:13:19 GMT"
		same   = "Tue, 14 Nov 2023 22:13:20 GMT"
		after  = "Tue, 14 Nov 2023 22:13:21 GMT"
	)
	b := func(s string) []byte { return []byte(s) }
	tests := []struct {
		name string
		h    condHeaders
		want int
	}{
		{"none", condHeaders{}, condProceed},
		{"INM match", condHeaders{ifNoneMatch: b(etag)}, condNotModified},
		{"INM weak match", condHeaders{ifNoneMatch: b(`W/"abc-10"`)}, condNotModified},
		{"INM in list", condHeaders{ifNoneMatch: b(`"x", "abc-10"`)}, condNotModified},
		{"INM star", condHeaders{ifNoneMatch: b("*")}, condNotModified},
		{"INM no match", condHeaders{ifNoneMatch: b(`"x"`)}, condProceed},
		{"INM unquoted", condHeaders{ifNoneMatch: b(`abc-10`)}, condProceed},
		{"IMS not modified", condHeaders{ifModifiedSince: b(same)}, condNotModified},
		{"IMS later", condHeaders{ifModifiedSince: b(after)}, condNotModified},
		{"IMS modified", condHeaders{ifModifiedSince: b(before)}, condProceed},
		{"IMS invalid", condHeaders{ifModifiedSince: b("yesterday")}, condProceed},
		// now is mod+3600: a date after it is not one gale sent, and is ignored.
		{"IMS up to now", condHeaders{ifModifiedSince: b("Tue, 14 Nov 2023 23:13:20 GMT")}, condNotModified},
		{"IMS in the future", condHeaders{ifModifiedSince: b("Tue, 14 Nov 2023 23:13:21 GMT")}, condProceed},
		{"IMS far future", condHeaders{ifModifiedSince: b("Fri, 31 Dec 9999 23:59:59 GMT")}, condProceed},
		{"IMS rfc850", condHeaders{ifModifiedSince: b("Tuesday, 14-Nov-23 22:13:20 GMT")}, condNotModified},
		{"IMS asctime", condHeaders{ifModifiedSince: b("Tue Nov 14 22:13:20 2023")}, condNotModified},
		// If-None-Match takes precedence: a non-matching tag ignores a matching date.
		{"INM over IMS", condHeaders{ifNoneMatch: b(`"x"`), ifModifiedSince: b(after)}, condProceed},
		{"INM match, IMS modified", condHeaders{ifNoneMatch: b(etag), ifModifiedSince: b(before)}, condNotModified},
		{"IM match", condHeaders{ifMatch: b(etag)}, condProceed},
		{"IM star", condHeaders{ifMatch: b("*")}, condProceed},
		{"IM weak never matches", condHeaders{ifMatch: b(`W/"abc-10"`)}, condFailed},
		{"IM no match", condHeaders{ifMatch: b(`"x"`)}, condFailed},
		{"IM empty", condHeaders{ifMatch: b("")}, condFailed},
		{"IUS ok", condHeaders{ifUnmodifiedSince: b(same)}, condProceed},
		{"IUS failed", condHeaders{ifUnmodifiedSince: b(before)}, condFailed},
		{"IUS invalid", condHeaders{ifUnmodifiedSince: b("soon")}, condProceed},
		// If-Match takes precedence over If-Unmodified-Since.
		{"IM over IUS", condHeaders{ifMatch: b(etag), ifUnmodifiedSince: b(before)}, condProceed},
		{"IM fails before INM", condHeaders{ifMatch: b(`"x"`), ifNoneMatch: b(etag)}, condFailed},
		{"IM ok then INM", condHeaders{ifMatch: b(etag), ifNoneMatch: b(etag)}, condNotModified},
	}
	for _, tt := range tests {
		if got := evalPreconditions(tt.h, etag, mod, mod+3600); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestIfRangeMatches(t *testing.T) {
	const etag = `"abc-10"`
	const mod = int64(1_700_000_000)
	tests := map[string]bool{
		`"abc-10"`:                        true,
		` "abc-10" `:                      true,
		`W/"abc-10"`:                      false,
		`"abc-1"`:                         false,
		`"abc-10", "x"`:                   false,
		"Tue, 14 Nov 2023 22:13:20 GMT":   true,
		"Tue, 14 Nov 2023 22:13:21 GMT":   false,
		"Wed, 15 Nov 2023 22:13:20 GMT":   false,
		"Tuesday, 14-Nov-23 22:13:20 GMT": true,
		"":                                false,
		"garbage":                         false,
	}
	for in, want := range tests {
		if got := ifRangeMatches([]byte(in), etag, mod); got != want {
			t.Errorf("ifRangeMatches(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestETagListMatch(t *testing.T) {
	const etag = `"e"`
	tests := []struct {
		list         string
		strong, weak bool
	}{
		{`"e"`, true, true},
		{`W/"e"`, false, true},
		{`"a", W/"e"`, false, true},
		{`"a",,"e"`, true, true},
		{`junk, "e"`, true, true},
		{`"a" junk, "e"`, true, true},
		{`"e`, false, false},
		{`e`, false, false},
		{`"E"`, false, false},
		{` * `, true, true},
		{`*, "a"`, false, false},
		{``, false, false},
	}
	for _, tt := range tests {
		if got := etagListMatch([]byte(tt.list), etag, true); got != tt.strong {
			t.Errorf("strong etagListMatch(%q) = %v", tt.list, got)
		}
		if got := etagListMatch([]byte(tt.list), etag, false); got != tt.weak {
			t.Errorf("weak etagListMatch(%q) = %v", tt.list, got)
		}
	}
}

func TestHTTPDateRoundTrip(t *testing.T) {
	for _, sec := range []int64{0, 1_700_000_000, 4_102_444_800} {
		s := formatHTTPDate(sec)
		if got, ok := parseHTTPDate([]byte(s)); !ok || got != sec {
			t.Errorf("%d → %q → %d, %v", sec, s, got, ok)
		}
	}
}

func FuzzETagList(f *testing.F) {
	for _, s := range []string{`"e"`, `W/"e", "f"`, `*`, `"a" junk, "e"`, `W/`, `"`, `,,,`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, list []byte) {
		strong := etagListMatch(list, `"e"`, true)
		weak := etagListMatch(list, `"e"`, false)
		if strong && !weak {
			t.Fatalf("%q matches strongly but not weakly", list)
		}
		ifRangeMatches(list, `"e"`, 0)
		evalPreconditions(condHeaders{ifMatch: list, ifNoneMatch: list, ifModifiedSince: list, ifUnmodifiedSince: list}, `"e"`, 0, 0)
	})
}

// TestLongLists puts the one element that matters at the end of a long list: every
// list field is read whole (the header section limit bounds it), never cut short.
func TestLongLists(t *testing.T) {
	const etag = `"abc-10"`
	for _, n := range []int{1, 31, 32, 33, 64, 65, 1000} {
		var list, loose []byte
		for i := 0; i < n; i++ {
			list = append(list, fmt.Sprintf(`"t%d", `, i)...)
			loose = append(loose, `,, W/"w" ,`...)
		}
		for _, l := range [][]byte{append(list, etag...), append(loose, etag...)} {
			if got := evalPreconditions(condHeaders{ifMatch: l}, etag, 0, 0); got != condProceed {
				t.Errorf("If-Match with the tag after %d others: %d, want proceed", n, got)
			}
			if got := evalPreconditions(condHeaders{ifNoneMatch: l}, etag, 0, 0); got != condNotModified {
				t.Errorf("If-None-Match with the tag after %d others: %d, want 304", n, got)
			}
		}
		ae := []byte(strings.Repeat("identity;q=0.5, ", n) + "br")
		if got := negotiateEncoding(ae, encBrotli|encGzip); got != encBrotli {
			t.Errorf("Accept-Encoding with br after %d others: %v, want br", n, got)
		}
		accept := []byte(strings.Repeat("text/plain;q=0.1, ", n) + "application/json")
		if !wantsJSON(accept) {
			t.Errorf("Accept with application/json after %d others: not JSON", n)
		}
	}
}

// TestLongListsServed sends a long If-None-Match to a real file.
func TestLongListsServed(t *testing.T) {
	h, _ := site(t, Options{})
	r := do(t, h, "GET", "/small.txt")
	etag := r.Get("ETag")
	list := strings.Repeat(`"nope", `, 40) + etag
	expect(t, do(t, h, "GET", "/small.txt", "If-None-Match", list), 304, anyBody)
	expect(t, do(t, h, "GET", "/small.txt", "If-Match", list), 200, "0123456789")
}

// TestServeSingleValueFieldsOnSeveralLines: Range, If-Range, If-Modified-Since and
// If-Unmodified-Since hold one value each, so one sent on several lines that disagree
// is invalid. Only the first line was read, so an If-Range whose first line matched
// gave a 206 although its second did not (a proxy or cache in front that reads the
// last line expects the whole file), and a second If-Modified-Since or Range line was
// ignored. Now such a field is ignored as an invalid one is: the whole file with 200.
// Lines that repeat the same value still count as that value.
func TestServeSingleValueFieldsOnSeveralLines(t *testing.T) {
	h, _ := site(t, Options{})
	first := do(t, h, "GET", "/small.txt")
	etag, lm := first.Get("ETag"), first.Get("Last-Modified")
	const old = "Sat, 01 Jan 2000 00:00:00 GMT"
	const whole = "0123456789"
	for _, tc := range []struct {
		name   string
		fields []string
		status int
		body   string
	}{
		{"If-Range matching, then not", []string{"Range", "bytes=0-1", "If-Range", etag, "If-Range", `"other"`}, 200, whole},
		{"If-Range not matching, then matching", []string{"Range", "bytes=0-1", "If-Range", `"other"`, "if-range", etag}, 200, whole},
		{"If-Range twice the same", []string{"Range", "bytes=0-1", "If-Range", etag, "If-Range", " " + etag}, 206, "01"},
		{"two Ranges", []string{"Range", "bytes=0-1", "Range", "bytes=2-3"}, 200, whole},
		{"Range twice the same", []string{"Range", "bytes=0-1", "Range", "bytes=0-1"}, 206, "01"},
		{"If-Modified-Since now, then old", []string{"If-Modified-Since", lm, "If-Modified-Since", old}, 200, whole},
		{"If-Modified-Since twice the same", []string{"If-Modified-Since", lm, "If-Modified-Since", lm}, 304, ""},
		{"If-Unmodified-Since old, then now", []string{"If-Unmodified-Since", old, "If-Unmodified-Since", lm}, 200, whole},
		{"If-Unmodified-Since old twice", []string{"If-Unmodified-Since", old, "If-Unmodified-Since", old}, 412, anyBody},
	} {
		r := do(t, h, "GET", "/small.txt", tc.fields...)
		if r.Status != tc.status || (tc.body != anyBody && r.Body.String() != tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, r.Status, r.Body.String(), tc.status, tc.body)
		}
	}
}

// TestServeListingPreconditions: a directory listing is a current representation
// without an entity-tag or a modification date. Its preconditions were not evaluated
// at all, so "If-Match" with any tag got the listing (200) instead of 412 and
// "If-None-Match: *" a 200 instead of 304, where nginx's autoindex answers 412 and 304.
func TestServeListingPreconditions(t *testing.T) {
	h, _ := site(t, Options{Browse: true})
	const old = "Sat, 01 Jan 2000 00:00:00 GMT"
	for _, tc := range []struct {
		fields []string
		status int
	}{
		{[]string{"If-Match", `"x"`}, 412},
		{[]string{"If-Match", `"x", *`}, 412}, // "*" counts only alone
		{[]string{"If-Match", "*"}, 200},
		{[]string{"If-None-Match", "*"}, 304},
		{[]string{"If-None-Match", `"x"`}, 200},
		{[]string{"If-None-Match", `"x"`, "If-Match", `"y"`}, 412},
		{[]string{"If-Unmodified-Since", old}, 200}, // no Last-Modified: ignored
		{[]string{"If-Modified-Since", old}, 200},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			r := do(t, h, method, "/assets/", tc.fields...)
			if r.Status != tc.status {
				t.Errorf("%s %v: %d, want %d", method, tc.fields, r.Status, tc.status)
			}
			if tc.status == 304 && (r.Body.Len() != 0 || r.Get("Vary") != "Accept") {
				t.Errorf("%s %v: 304 with %d body bytes, Vary %q", method, tc.fields, r.Body.Len(), r.Get("Vary"))
			}
		}
	}
}
