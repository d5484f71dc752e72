package l4

import (
	"net/netip"
	"testing"
)

func TestWeighted(t *testing.T) {
	s := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), netip.MustParseAddrPort("127.0.0.1:3")}
	w := NewWeighted(s, []int{3, 1, 0}) // 0 counts as 1
	var got []int
	for range 10 {
		got = append(got, w.Pick())
	}
	want := []int{0, 1, 2, 0, 0, 0, 1, 2, 0, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("picks %v, want %v (interleaved by weight)", got, want)
		}
	}
	if len(w.Servers()) != 3 {
		t.Fatalf("servers %v: each once", w.Servers())
	}
	if big := NewWeighted(s[:1], []int{5000}); len(big.slots) != MaxWeight {
		t.Fatalf("weight above %d kept %d slots", MaxWeight, len(big.slots))
	}
}
