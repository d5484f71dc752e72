package l4proto

import (
	"bytes"
	"net/netip"
	"testing"
)

type ap2 = netip.AddrPort

// FuzzParseProxy checks that ParseProxy never panics, that a split at a point
// chosen by the input gives the same answer as the whole, and that a header it
// accepts is re-encoded to one that parses to the same addresses.
func FuzzParseProxy(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(AppendV2(nil, ap("10.0.0.1:1000"), ap("10.0.0.2:443")))
	f.Add(AppendV2(nil, ap("[::1]:1"), ap("[::2]:2")))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 8192 {
			return
		}
		whole := feed(proxyStep, in, nil)
		if len(in) > 1 {
			k := 1 + int(in[len(in)-1])%(len(in)-1)
			if got := feed(proxyStep, in, []int{k}); got.String() != whole.String() {
				t.Fatalf("split at %d: got %v, whole %v", k, got, whole)
			}
		}
		h, n, err := ParseProxy(in)
		if err != nil || n == 0 {
			return
		}
		if n > len(in) {
			t.Fatalf("consumed %d of %d bytes", n, len(in))
		}
		if h.Unknown {
			return
		}
		for _, app := range []func([]byte, ap2, ap2) []byte{AppendV1, AppendV2} {
			b := app(nil, h.Src, h.Dst)
			g, m, err := ParseProxy(b)
			if err != nil || m != len(b) || g.Src.Addr().Unmap() != h.Src.Addr().Unmap() || g.Dst.Port() != h.Dst.Port() {
				t.Fatalf("re-encoded %q: %+v %d %v; was %+v", b, g, m, err, h)
			}
		}
	})
}

// FuzzServerName checks that ServerName never panics, that a split chosen by
// the input gives the same answer as the whole, and that a HelloReader given
// the prefixes at cuts chosen by the input gives it too.
func FuzzServerName(f *testing.F) {
	f.Add(clientHello(f, "a.example"))
	f.Add(reframe(clientHello(f, "b.example"), 50))
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<15 {
			return
		}
		orig := bytes.Clone(in)
		whole := feed(sniStep, in, nil)
		if len(in) > 1 {
			k := 1 + int(in[len(in)-1])%(len(in)-1)
			if got := feed(sniStep, in, []int{k}); got.String() != whole.String() {
				t.Fatalf("split at %d: got %v, whole %v", k, got, whole)
			}
			// A HelloReader fed the prefixes at cuts the input chooses agrees.
			step := max(1, int(in[0])%64)
			var cuts []int
			for c := k; c < len(in); c += step {
				cuts = append(cuts, c)
			}
			if got := feed(readerStep(), in, cuts); got.String() != whole.String() {
				t.Fatalf("HelloReader at cuts from %d every %d: got %v, whole %v", k, step, got, whole)
			}
		}
		if !bytes.Equal(in, orig) {
			t.Fatal("ServerName modified its input")
		}
	})
}
