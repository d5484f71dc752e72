package static

import "testing"

func TestNegotiateEncoding(t *testing.T) {
	all := encBrotli | encZstd | encGzip
	tests := []struct {
		ae    string
		avail encoding
		want  encoding
	}{
		{"", all, 0},
		{"gzip", all, encGzip},
		{"gzip, deflate, br", all, encBrotli},
		{"gzip, deflate, br, zstd", all, encBrotli},
		{"zstd, gzip", all, encZstd},
		{"gzip, br", encGzip | encZstd, encGzip},
		{"br", encGzip, 0},
		{"br;q=0, gzip", all, encGzip},
		{"br;q=0.0, gzip;q=0.5", all, encGzip},
		{"br;q=0.5, gzip;q=0.8", all, encGzip},
		{"br;q=1.0, gzip;q=1", all, encBrotli},
		{"BR, GZIP", all, encBrotli},
		{"x-gzip", all, encGzip},
		{"*", all, encBrotli},
		{"*;q=0.5, br;q=0", all, encZstd},
		{"*;q=0", all, 0},
		{"gzip;q=0", encGzip, 0},
		{"br;q=0.1, identity", all, 0},
		{"br;q=0.1, identity;q=0.1", all, encBrotli},
		{"br;q=0.5, identity;q=0", all, encBrotli},
		{"br;q=2", all, 0},
		{"br;q=abc, gzip", all, encGzip},
		{"br;q=0.5;foo=bar, gzip;q=0.4", all, encBrotli},
		{"br ; q=0.3 , gzip ; q=0.2", all, encBrotli},
		{"gzip;q=0, gzip", all, 0},
		{" , ,gzip,, ", all, encGzip},
		{`br;x="a,b;q=0", gzip;q=0.9`, all, encBrotli},
	}
	for _, tt := range tests {
		if got := negotiateEncoding([]byte(tt.ae), tt.avail); got != tt.want {
			t.Errorf("negotiateEncoding(%q, %b) = %b, want %b", tt.ae, tt.avail, got, tt.want)
		}
	}
}

func TestParseQValue(t *testing.T) {
	tests := map[string]int{"0": 0, "1": 1000, "0.5": 500, "0.123": 123, "1.000": 1000, "0.": 0, "1.": 1000,
		"1.001": -1, "0.1234": -1, "2": -1, "": -1, ".5": -1, "0,5": -1, "0.a": -1}
	for in, want := range tests {
		if got := parseQValue([]byte(in)); got != want {
			t.Errorf("parseQValue(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestWantsJSON(t *testing.T) {
	tests := map[string]bool{
		"application/json":            true,
		"application/json, text/html": true,
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8": false,
		"*/*":                                  false,
		"application/json;q=0.5, text/html":    false,
		"application/json;q=0.9, */*;q=0.8":    true,
		"application/json;q=0":                 false,
		"text/*;q=0.5, application/json;q=0.6": true,
		"APPLICATION/JSON":                     true,
		"":                                     false,
	}
	for in, want := range tests {
		if got := wantsJSON([]byte(in)); got != want {
			t.Errorf("wantsJSON(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestEachListItem(t *testing.T) {
	// Elements are split at commas outside quotes; empty elements are skipped.
	v := `gzip;q=0.5, br, , zstd;q=0;x="1,2", identity;q=0.1`
	type item struct {
		tok string
		q   int
	}
	var whole []item
	eachListItem([]byte(v), func(tok []byte, q int) bool {
		whole = append(whole, item{string(tok), q})
		return true
	})
	want := []item{{"gzip", 500}, {"br", 1000}, {"zstd", 0}, {"identity", 100}}
	if len(whole) != len(want) {
		t.Fatalf("items %v, want %v", whole, want)
	}
	for i := range want {
		if whole[i] != want[i] {
			t.Fatalf("items %v, want %v", whole, want)
		}
	}
}

func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{"gzip, deflate, br", "br;q=0, gzip", "*;q=0", `br;x="a,b"`, "identity;q=0, *", "gzip;q=0.0001"} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, ae []byte, avail uint8) {
		a := encoding(avail) & (encBrotli | encZstd | encGzip)
		got := negotiateEncoding(ae, a)
		if got&^a != 0 || (got != 0 && got&(got-1) != 0) {
			t.Fatalf("negotiateEncoding(%q, %b) = %b", ae, a, got)
		}
		n := 0
		eachListItem(ae, func(tok []byte, q int) bool {
			n++
			if q < -1 || q > 1000 || len(tok) > len(ae) {
				t.Fatalf("item %q q %d", tok, q)
			}
			return true
		})
		if n > len(ae) {
			t.Fatalf("%d items visited in %d bytes", n, len(ae))
		}
		wantsJSON(ae)
	})
}
