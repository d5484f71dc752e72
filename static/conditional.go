package static

import (
	"time"

	"github.com/gale-server/gale/http1"
)

// condHeaders holds the precondition fields of a request; nil means absent.
type condHeaders struct {
	ifMatch, ifNoneMatch, ifModifiedSince, ifUnmodifiedSince []byte
}

// Outcomes of evalPreconditions.
const (
	condProceed     = 0
	condNotModified = 304
	condFailed      = 412
)

// evalPreconditions applies RFC 9110 §13.2.2 to a GET or HEAD of an existing
// representation with the strong entity-tag etag (quotes included) and modification
// time modSec (Unix seconds, at most nowSec: see lastModified), at the server's time
// nowSec. An empty etag is a representation without one, which only "*" matches. The
// steps, in order:
//
//  1. If-Match present: false (no strong match) → 412.
//  2. Else If-Unmodified-Since present and a valid date: modified after it → 412.
//  3. If-None-Match present: a (weak) match → 304.
//  4. Else If-Modified-Since present, a valid date and not later than nowSec: not
//     modified after it → 304.
//
// If-None-Match thus takes precedence over If-Modified-Since, and If-Match over
// If-Unmodified-Since. Invalid dates are ignored (RFC 9110 §13.1.3, §13.1.4), and so
// is an If-Modified-Since in the future (as RFC 2616 §14.25 said and Apache does):
// gale never sends a Last-Modified later than its Date, so such a date was not one of
// its validators, and a 304 for it would let a client keep a copy that a later edit
// (with an mtime before that date) should replace.
func evalPreconditions(h condHeaders, etag string, modSec, nowSec int64) int {
	if h.ifMatch != nil {
		if !etagListMatch(h.ifMatch, etag, true) {
			return condFailed
		}
	} else if h.ifUnmodifiedSince != nil {
		if t, ok := parseHTTPDate(h.ifUnmodifiedSince); ok && modSec > t {
			return condFailed
		}
	}
	if h.ifNoneMatch != nil {
		if etagListMatch(h.ifNoneMatch, etag, false) {
			return condNotModified
		}
	} else if h.ifModifiedSince != nil {
		if t, ok := parseHTTPDate(h.ifModifiedSince); ok && t <= nowSec && modSec <= t {
			return condNotModified
		}
	}
	return condProceed
}

// ifRangeMatches evaluates an If-Range value (RFC 9110 §13.1.5): an entity-tag must
// match etag by strong comparison (a weak tag never matches); an HTTP-date must equal
// the modification time exactly. Anything else does not match, so the Range is ignored.
func ifRangeMatches(v []byte, etag string, modSec int64) bool {
	v = http1.TrimOWS(v)
	if len(v) > 0 && (v[0] == '"' || (len(v) > 1 && v[0] == 'W' && v[1] == '/')) {
		tag, rest, ok := nextETag(v)
		return ok && len(http1.TrimOWS(rest)) == 0 && !tag.weak && string(tag.opaque) == etag
	}
	t, ok := parseHTTPDate(v)
	return ok && t == modSec
}

type entityTag struct {
	weak   bool
	opaque []byte // with the quotes
}

// etagListMatch reports whether the field value list ("*" or #entity-tag) matches etag,
// a strong tag with its quotes. strong selects strong comparison (If-Match), otherwise
// weak comparison (If-None-Match) is used (RFC 9110 §8.8.3.2). Malformed elements are
// skipped up to the next comma. The whole list is read, however long (the header
// section limit bounds it); each step consumes input, so the walk is linear.
func etagListMatch(list []byte, etag string, strong bool) bool {
	v := http1.TrimOWS(list)
	if len(v) == 1 && v[0] == '*' {
		return true
	}
	for len(v) > 0 {
		v = http1.TrimOWS(v)
		if len(v) > 0 && v[0] == ',' {
			v = v[1:]
			continue
		}
		tag, rest, ok := nextETag(v)
		if !ok {
			_, v = cutAt(v, ',')
			continue
		}
		if string(tag.opaque) == etag && !(strong && tag.weak) {
			return true
		}
		v = http1.TrimOWS(rest)
		if len(v) > 0 && v[0] != ',' {
			_, v = cutAt(v, ',')
		}
	}
	return false
}

// nextETag parses entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE at the start of v, where
// etagc = %x21 / %x23-7E / obs-text.
func nextETag(v []byte) (entityTag, []byte, bool) {
	var t entityTag
	if len(v) >= 2 && v[0] == 'W' && v[1] == '/' {
		t.weak = true
		v = v[2:]
	}
	if len(v) < 2 || v[0] != '"' {
		return t, v, false
	}
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			t.opaque = v[:i+1]
			return t, v[i+1:], true
		case c == 0x21 || (c >= 0x23 && c != 0x7f):
		default:
			return t, v, false
		}
	}
	return t, v, false
}

// HTTP-date layouts (RFC 9110 §5.6.7): IMF-fixdate, then the obsolete RFC 850 and
// asctime forms, which recipients must accept.
const (
	imfFixdate  = "Mon, 02 Jan 2006 15:04:05 GMT"
	rfc850Date  = "Monday, 02-Jan-06 15:04:05 GMT"
	asctimeDate = "Mon Jan _2 15:04:05 2006"
)

// parseHTTPDate parses an HTTP-date into Unix seconds.
func parseHTTPDate(b []byte) (int64, bool) {
	s := string(http1.TrimOWS(b))
	for _, layout := range [...]string{imfFixdate, rfc850Date, asctimeDate} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix(), true
		}
	}
	return 0, false
}

// lastModified returns the modification time a response at nowSec reports and
// compares: modSec, or nowSec when the file's mtime lies in the future (RFC 9110
// §8.8.2.1: an origin server must not send a Last-Modified later than its Date, and
// must send the Date instead).
func lastModified(modSec, nowSec int64) int64 { return min(modSec, nowSec) }

// formatHTTPDate renders Unix seconds as an IMF-fixdate.
func formatHTTPDate(sec int64) string {
	return time.Unix(sec, 0).UTC().Format(imfFixdate)
}
