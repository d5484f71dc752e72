package static

import (
	"errors"
	"math"

	"github.com/gale-server/gale/http1"
)

// ByteRange is one satisfiable range of a representation: Length bytes starting at
// Start, with 0 <= Start, 1 <= Length and Start+Length <= the representation's size.
type ByteRange struct {
	Start, Length int64
}

// MaxRanges is the most range-specs a Range field may hold. A field with more is
// rejected with ErrRangeTooMany (answered 416): many small ranges are a denial-of-service
// pattern (RFC 9110 §14.2), and no real client needs more.
const MaxRanges = 16

// Errors returned by ParseRange. ErrRangeInvalid means the field must be ignored and the
// whole representation served with 200; the others are answered 416 with
// "Content-Range: bytes */size".
var (
	ErrRangeInvalid        = errors.New("static: Range field is malformed or not in bytes")
	ErrRangeNotSatisfiable = errors.New("static: no range in the Range field is satisfiable")
	ErrRangeTooMany        = errors.New("static: Range field has more than MaxRanges ranges")
	ErrRangeOverlap        = errors.New("static: Range field has more than two overlapping ranges")
)

// ParseRange parses a Range field value (RFC 9110 §14.1.2, §14.2) against a
// representation of size bytes and returns the satisfiable ranges in request order.
//
// The unit "bytes" is matched case-insensitively; any other unit, an empty range-set, a
// range-spec that is not digits "-" [digits] or "-" digits, or last-pos < first-pos makes
// the field ErrRangeInvalid. Empty list elements are allowed. A first-pos at or beyond
// size and a suffix length of 0 are unsatisfiable and dropped; if none remains the result
// is ErrRangeNotSatisfiable. Numbers too large for int64 saturate. More than MaxRanges
// range-specs give ErrRangeTooMany. When exactly two ranges overlap they are coalesced
// into one at the position of the earlier (RFC 9110 §14.2 allows it); when more than two
// take part in overlaps the field is ErrRangeOverlap. The result therefore never asks for
// more bytes than size.
func ParseRange(v []byte, size int64) ([]ByteRange, error) {
	return appendRanges(nil, v, size)
}

// appendRanges is ParseRange appending to dst, so the caller may supply storage.
func appendRanges(dst []ByteRange, v []byte, size int64) ([]ByteRange, error) {
	v = http1.TrimOWS(v)
	const unit = "bytes="
	if len(v) < len(unit) || !http1.EqualFold(v[:len(unit)-1], unit[:len(unit)-1]) || v[len(unit)-1] != '=' {
		return nil, ErrRangeInvalid
	}
	v = v[len(unit):]
	start := len(dst)
	specs := 0
	for len(v) > 0 {
		var elem []byte
		elem, v = cutAt(v, ',')
		elem = http1.TrimOWS(elem)
		if len(elem) == 0 {
			continue
		}
		specs++
		r, ok, err := parseRangeSpec(elem, size)
		if err != nil {
			return nil, err
		}
		if ok && specs <= MaxRanges {
			dst = append(dst, r)
		}
	}
	switch {
	case specs == 0:
		return nil, ErrRangeInvalid
	case specs > MaxRanges:
		return nil, ErrRangeTooMany
	case len(dst) == start:
		return nil, ErrRangeNotSatisfiable
	}
	out, err := coalesce(dst[start:])
	if err != nil {
		return nil, err
	}
	return dst[:start+len(out)], nil
}

// parseRangeSpec parses one range-spec. ok is false for a syntactically valid but
// unsatisfiable spec.
func parseRangeSpec(s []byte, size int64) (r ByteRange, ok bool, err error) {
	dash := -1
	for i, c := range s {
		if c == '-' {
			dash = i
			break
		}
	}
	if dash < 0 {
		return r, false, ErrRangeInvalid
	}
	firstDigits, lastDigits := s[:dash], s[dash+1:]
	if len(firstDigits) == 0 { // suffix-range
		n, valid := parseDigits(lastDigits)
		if !valid {
			return r, false, ErrRangeInvalid
		}
		if n == 0 || size == 0 {
			return r, false, nil
		}
		n = min(n, size)
		return ByteRange{Start: size - n, Length: n}, true, nil
	}
	first, valid := parseDigits(firstDigits)
	if !valid {
		return r, false, ErrRangeInvalid
	}
	last := int64(math.MaxInt64)
	if len(lastDigits) > 0 {
		if last, valid = parseDigits(lastDigits); !valid {
			return r, false, ErrRangeInvalid
		}
		if last < first {
			return r, false, ErrRangeInvalid
		}
	}
	if first >= size {
		return r, false, nil
	}
	last = min(last, size-1)
	return ByteRange{Start: first, Length: last - first + 1}, true, nil
}

// parseDigits parses 1*DIGIT, saturating at math.MaxInt64.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}

// coalesce applies the overlap rule of ParseRange to rs in place.
func coalesce(rs []ByteRange) ([]ByteRange, error) {
	involved, a, b := 0, -1, -1
	for i := range rs {
		for j := range rs {
			if i != j && overlaps(rs[i], rs[j]) {
				involved++
				if a < 0 {
					a, b = i, j
				}
				break
			}
		}
	}
	switch {
	case involved == 0:
		return rs, nil
	case involved > 2:
		return nil, ErrRangeOverlap
	}
	// a < b: merge b into a and close the gap.
	lo := min(rs[a].Start, rs[b].Start)
	hi := max(rs[a].Start+rs[a].Length, rs[b].Start+rs[b].Length)
	rs[a] = ByteRange{Start: lo, Length: hi - lo}
	copy(rs[b:], rs[b+1:])
	return rs[:len(rs)-1], nil
}

func overlaps(x, y ByteRange) bool {
	return x.Start < y.Start+y.Length && y.Start < x.Start+x.Length
}

// cutAt splits v at the first sep.
func cutAt(v []byte, sep byte) (before, after []byte) {
	for i, c := range v {
		if c == sep {
			return v[:i], v[i+1:]
		}
	}
	return v, nil
}
