package l4

import (
	"net/netip"
	"testing"

	"github.com/gale-server/gale/lb"
)

// TestWeightedGroup: a group with weights 3:1:1 interleaves its servers as
// smooth weighted round robin does, and lists each server once.
func TestWeightedGroup(t *testing.T) {
	s := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), netip.MustParseAddrPort("127.0.0.1:3")}
	ls := []lb.Server{{ID: "a", Weight: 3}, {ID: "b", Weight: 1}, {ID: "c", Weight: 0}} // 0 counts as 1
	g, err := NewGroupOf(s, ls, lb.WeightedRoundRobin, lb.Options{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	var r lb.Request
	for range 10 {
		got = append(got, g.Pick(&r))
	}
	want := []int{0, 1, 0, 2, 0, 0, 1, 0, 2, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("picks %v, want %v (interleaved by weight)", got, want)
		}
	}
	if len(g.Servers()) != 3 {
		t.Fatalf("servers %v: each once", g.Servers())
	}
}
