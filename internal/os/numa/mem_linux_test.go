package numa

import (
	"errors"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestAllocBindsToNode(t *testing.T) {
	topo, err := Read(DefaultRoot)
	if err != nil {
		t.Skipf("no NUMA topology on this machine: %v", err)
	}
	node := topo.Nodes[0].ID
	b, err := Alloc(128<<10, node)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
		t.Skipf("mbind refused here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer Free(b)
	for i := range b {
		b[i] = byte(i) // fault every page in under the policy
	}
	got, err := BoundNodes(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []int{node}) {
		t.Fatalf("BoundNodes = %v, want [%d]", got, node)
	}
	plain := make([]byte, 4096)
	if got, err := BoundNodes(plain); err != nil || got != nil {
		t.Errorf("BoundNodes of Go memory = %v, %v; want no binding", got, err)
	}
}

func TestAllocRejectsAbsentNode(t *testing.T) {
	topo, err := Read(DefaultRoot)
	if err != nil {
		t.Skipf("no NUMA topology on this machine: %v", err)
	}
	absent := topo.Nodes[len(topo.Nodes)-1].ID + 1
	if b, err := Alloc(4096, absent); err == nil {
		Free(b)
		t.Fatalf("Alloc on absent node %d succeeded", absent)
	}
	for _, bad := range [][2]int{{0, 0}, {4096, -1}, {4096, 1 << 20}} {
		if b, err := Alloc(bad[0], bad[1]); err == nil {
			Free(b)
			t.Errorf("Alloc(%d, %d) succeeded", bad[0], bad[1])
		}
	}
}
