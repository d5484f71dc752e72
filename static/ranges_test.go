package static

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func br(start, length int64) ByteRange { return ByteRange{Start: start, Length: length} }

func TestParseRange(t *testing.T) {
	tests := []struct {
		v    string
		size int64
		want []ByteRange
		err  error
	}{
		{"bytes=0-499", 10000, []ByteRange{br(0, 500)}, nil},
		{"bytes=500-999", 10000, []ByteRange{br(500, 500)}, nil},
		{"bytes=-500", 10000, []ByteRange{br(9500, 500)}, nil},
		{"bytes=9500-", 10000, []ByteRange{br(9500, 500)}, nil},
		{"bytes=0-0,-1", 10000, []ByteRange{br(0, 1), br(9999, 1)}, nil},
		{"BYTES=0-1", 10, []ByteRange{br(0, 2)}, nil},
		{"Bytes=0-1", 10, []ByteRange{br(0, 2)}, nil},
		{"  bytes=0-1  ", 10, []ByteRange{br(0, 2)}, nil},
		{"bytes=0-1 , 3-4", 10, []ByteRange{br(0, 2), br(3, 2)}, nil},
		{"bytes=,0-1,,", 10, []ByteRange{br(0, 2)}, nil},
		{"bytes=5-3000", 10, []ByteRange{br(5, 5)}, nil},
		{"bytes=-3000", 10, []ByteRange{br(0, 10)}, nil},
		{"bytes=0-99999999999999999999999", 10, []ByteRange{br(0, 10)}, nil},
		{"bytes=6-8,0-2", 10, []ByteRange{br(6, 3), br(0, 3)}, nil},     // request order kept
		{"bytes=0-4,5-9", 10, []ByteRange{br(0, 5), br(5, 5)}, nil},     // adjacent, not overlapping
		{"bytes=20-30,0-1", 10, []ByteRange{br(0, 2)}, nil},             // unsatisfiable one dropped
		{"bytes=0-5,3-8", 10, []ByteRange{br(0, 9)}, nil},               // two overlapping coalesced
		{"bytes=7-9,0-1,2-8", 10, []ByteRange{br(2, 8), br(0, 2)}, nil}, // merged at the earlier position
		{"bytes=0-,0-", 10, []ByteRange{br(0, 10)}, nil},
		{"bytes=0-1,0-1,0-1", 10, nil, ErrRangeOverlap},
		{"bytes=0-5,1-2,8-9,4-4", 10, nil, ErrRangeOverlap},
		{"bytes=10-", 10, nil, ErrRangeNotSatisfiable},
		{"bytes=10-20", 10, nil, ErrRangeNotSatisfiable},
		{"bytes=-0", 10, nil, ErrRangeNotSatisfiable},
		{"bytes=0-", 0, nil, ErrRangeNotSatisfiable},
		{"bytes=-5", 0, nil, ErrRangeNotSatisfiable},
		{"bytes=99999999999999999999-", 10, nil, ErrRangeNotSatisfiable},
		{"bytes=", 10, nil, ErrRangeInvalid},
		{"bytes=,", 10, nil, ErrRangeInvalid},
		{"bytes", 10, nil, ErrRangeInvalid},
		{"", 10, nil, ErrRangeInvalid},
		{"items=0-1", 10, nil, ErrRangeInvalid},
		{"bytes =0-1", 10, nil, ErrRangeInvalid},
		{"bytes=1", 10, nil, ErrRangeInvalid},
		{"bytes=-", 10, nil, ErrRangeInvalid},
		{"bytes=a-b", 10, nil, ErrRangeInvalid},
		{"bytes=1-a", 10, nil, ErrRangeInvalid},
		{"bytes=+1-2", 10, nil, ErrRangeInvalid},
		{"bytes=1 -2", 10, nil, ErrRangeInvalid},
		{"bytes=5-4", 10, nil, ErrRangeInvalid},
		{"bytes=0-1,5-4", 10, nil, ErrRangeInvalid},
		{"bytes=--1", 10, nil, ErrRangeInvalid},
		{"bytes=0--1", 10, nil, ErrRangeInvalid},
		{"bytes=0-1;x", 10, nil, ErrRangeInvalid},
		{"bytes=" + strings.Repeat("0-0,", MaxRanges+1), 10, nil, ErrRangeTooMany},
		{"bytes=" + strings.Repeat("20-30,", MaxRanges+1), 10, nil, ErrRangeTooMany},
		{"bytes=" + strings.Repeat("1-a,", MaxRanges+1), 10, nil, ErrRangeInvalid},
	}
	for _, tt := range tests {
		got, err := ParseRange([]byte(tt.v), tt.size)
		if !errors.Is(err, tt.err) || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRange(%q, %d) = %v, %v; want %v, %v", tt.v, tt.size, got, err, tt.want, tt.err)
		}
	}
	many := "bytes="
	for i := range MaxRanges {
		if i > 0 {
			many += ","
		}
		many += itoa(int64(i*10)) + "-" + itoa(int64(i*10+1))
	}
	if got, err := ParseRange([]byte(many), 1000); err != nil || len(got) != MaxRanges {
		t.Errorf("exactly MaxRanges ranges: %d, %v", len(got), err)
	}
}

func itoa(n int64) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int64) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// TestParseRangeSplit checks that a range-set parses like the concatenation of its
// elements parsed one at a time, for every way of cutting a set of disjoint specs into
// two Range values. A Range value always arrives whole (the HTTP/1 parser hands over
// complete field values), so this composition property replaces the byte-split feeding
// that incremental parsers get.
func TestParseRangeSplit(t *testing.T) {
	specs := []string{"0-0", "2-3", "-1", "5-", "100-200", "4-4"}
	const size = 50
	// "5-" and "-1" overlap ("5-" covers 49): exclude "5-" for the disjoint property.
	specs = append(specs[:3], specs[4:]...)
	var one []ByteRange
	for _, s := range specs {
		r, err := ParseRange([]byte("bytes="+s), size)
		if err == nil {
			one = append(one, r...)
		}
	}
	whole, err := ParseRange([]byte("bytes="+strings.Join(specs, ",")), size)
	if err != nil || !reflect.DeepEqual(whole, one) {
		t.Fatalf("whole %v, %v; elementwise %v", whole, err, one)
	}
	for cut := 1; cut < len(specs); cut++ {
		a, errA := ParseRange([]byte("bytes="+strings.Join(specs[:cut], ",")), size)
		b, errB := ParseRange([]byte("bytes="+strings.Join(specs[cut:], ",")), size)
		var got []ByteRange
		if errA == nil {
			got = append(got, a...)
		}
		if errB == nil {
			got = append(got, b...)
		}
		if !reflect.DeepEqual(got, whole) {
			t.Errorf("cut %d: %v + %v != %v", cut, a, b, whole)
		}
	}
	// Every prefix of a valid value that ends after a complete last-pos parses to a
	// prefix of the value's ranges (an open "N-" prefix legitimately means more).
	v := "bytes=0-1,3-4,6-"
	for i := 0; i <= len(v); i++ {
		got, err := ParseRange([]byte(v[:i]), 10)
		if err == nil && !reflect.DeepEqual(got, []ByteRange{br(0, 2), br(3, 2), br(6, 4)}[:len(got)]) &&
			!strings.HasSuffix(v[:i], "-") {
			t.Errorf("prefix %q: %v", v[:i], got)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-499", "bytes=-500", "bytes=9500-", "bytes=0-0,-1", "bytes=0-5,3-8",
		"bytes=0-1,0-1,0-1", "bytes=5-4", "bytes=,,", "items=1-2", "bytes=99999999999999999999-"} {
		f.Add([]byte(s), int64(10000))
	}
	f.Add([]byte("bytes=0-"), int64(0))
	f.Fuzz(func(t *testing.T, v []byte, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		rs, err := ParseRange(v, size)
		if err != nil {
			if rs != nil {
				t.Fatalf("ParseRange(%q, %d): ranges %v with error %v", v, size, rs, err)
			}
			return
		}
		if len(rs) == 0 || len(rs) > MaxRanges {
			t.Fatalf("ParseRange(%q, %d): %d ranges", v, size, len(rs))
		}
		var total int64
		for i, r := range rs {
			if r.Start < 0 || r.Length < 1 || r.Start+r.Length > size || r.Start+r.Length < r.Start {
				t.Fatalf("ParseRange(%q, %d): bad range %v", v, size, r)
			}
			for j := range i {
				if overlaps(rs[j], r) {
					t.Fatalf("ParseRange(%q, %d): %v overlaps %v", v, size, rs[j], r)
				}
			}
			total += r.Length
		}
		if total > size {
			t.Fatalf("ParseRange(%q, %d): %d bytes selected", v, size, total)
		}
	})
}
