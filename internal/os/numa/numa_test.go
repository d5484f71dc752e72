package numa

import (
	"reflect"
	"testing"
)

func TestReadTwoNodes(t *testing.T) {
	topo, err := Read("testdata/two-nodes")
	if err != nil {
		t.Fatal(err)
	}
	want := Topology{Nodes: []Node{
		{ID: 0, CPUs: []int{0, 1, 2, 3, 8, 9, 10, 11}},
		{ID: 1, CPUs: []int{4, 5, 6, 7, 12, 13, 14, 15}},
	}}
	if !reflect.DeepEqual(topo, want) {
		t.Fatalf("Read = %+v, want %+v (node2 has no CPUs and is left out)", topo, want)
	}
	if got := topo.String(); got != "node0=0-3,8-11 node1=4-7,12-15" {
		t.Errorf("String = %q", got)
	}
	for cpu, node := range map[int]int{0: 0, 11: 0, 4: 1, 15: 1, 16: -1} {
		if got := topo.NodeOf(cpu); got != node {
			t.Errorf("NodeOf(%d) = %d, want %d", cpu, got, node)
		}
	}
}

func TestReadMissing(t *testing.T) {
	if _, err := Read("testdata/no-such-dir"); err == nil {
		t.Fatal("Read of a missing tree succeeded")
	}
	if _, err := Read("testdata/two-nodes/node2"); err == nil {
		t.Fatal("Read of a tree without nodes succeeded")
	}
}

func TestParseCPUList(t *testing.T) {
	good := map[string][]int{
		"":             nil,
		"\n":           nil,
		"0":            {0},
		"0-3\n":        {0, 1, 2, 3},
		"8,0-1,3":      {0, 1, 3, 8},
		"2-3,3-4":      {2, 3, 4},
		"1023":         {1023},
		"0-1,4-5,9-10": {0, 1, 4, 5, 9, 10},
	}
	for in, want := range good {
		got, err := ParseCPUList(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", in, got, err, want)
		}
		if want != nil {
			if back := FormatCPUList(got); !reflect.DeepEqual(mustParse(t, back), want) {
				t.Errorf("FormatCPUList(%v) = %q does not parse back", got, back)
			}
		}
	}
	for _, in := range []string{"a", "1-", "-1", "3-1", "1,,2", "1-2-3", "99999999"} {
		if got, err := ParseCPUList(in); err == nil {
			t.Errorf("ParseCPUList(%q) = %v, want an error", in, got)
		}
	}
	if got := FormatCPUList([]int{0, 1, 2, 5, 7, 8}); got != "0-2,5,7-8" {
		t.Errorf("FormatCPUList = %q", got)
	}
}

func mustParse(t *testing.T, s string) []int {
	t.Helper()
	v, err := ParseCPUList(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPlan(t *testing.T) {
	two, err := Read("testdata/two-nodes")
	if err != nil {
		t.Fatal(err)
	}
	one, err := Read("testdata/one-node")
	if err != nil {
		t.Fatal(err)
	}
	all16 := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	tests := []struct {
		name string
		topo Topology
		req  Request
		want Placement
	}{
		{"one node changes nothing", one,
			Request{CPUs: []int{0, 1}, Group: true, NUMA: true, Loops: 3, Processes: 1},
			Placement{CPUs: []int{0, 1, 0}}},
		{"numa off rotates by process", two,
			Request{CPUs: all16, Group: true, NUMA: false, Loops: 2, Process: 1, Processes: 2},
			Placement{CPUs: []int{2, 3}}},
		{"not pinned", two,
			Request{NUMA: true, Group: true, Loops: 4, Processes: 1},
			Placement{}},
		{"one loop per CPU grouped by node", two,
			Request{CPUs: all16, Group: true, NUMA: true, Loops: 16, Processes: 1},
			Placement{
				CPUs:  []int{0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15},
				Nodes: []int{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}}},
		{"fewer loops than CPUs are spread over both nodes", two,
			Request{CPUs: all16, Group: true, NUMA: true, Loops: 4, Processes: 1},
			Placement{CPUs: []int{0, 1, 4, 5}, Nodes: []int{0, 0, 1, 1}}},
		{"second process of two lands on the second node", two,
			Request{CPUs: all16, Group: true, NUMA: true, Loops: 2, Process: 1, Processes: 2},
			Placement{CPUs: []int{4, 5}, Nodes: []int{1, 1}}},
		{"more loops than CPUs wrap within the node", two,
			Request{CPUs: []int{0, 4}, Group: true, NUMA: true, Loops: 4, Processes: 1},
			Placement{CPUs: []int{0, 0, 4, 4}, Nodes: []int{0, 0, 1, 1}}},
		{"uneven nodes get proportional shares", two,
			Request{CPUs: []int{0, 1, 2, 4}, Group: true, NUMA: true, Loops: 4, Processes: 1},
			Placement{CPUs: []int{0, 1, 2, 4}, Nodes: []int{0, 0, 0, 1}}},
		{"an explicit list keeps its order", two,
			Request{CPUs: []int{4, 0, 5}, Group: false, NUMA: true, Loops: 4, Processes: 1},
			Placement{CPUs: []int{4, 0, 5, 4}, Nodes: []int{1, 0, 1, 1}}},
		{"CPUs on one node of two bind nothing", two,
			Request{CPUs: []int{0, 1}, Group: true, NUMA: true, Loops: 2, Processes: 1},
			Placement{CPUs: []int{0, 1}}},
		{"a CPU no node lists is pinned but not bound", two,
			Request{CPUs: []int{0, 4, 20}, Group: true, NUMA: true, Loops: 3, Processes: 1},
			Placement{CPUs: []int{0, 4, 20}, Nodes: []int{0, 1, -1}}},
	}
	for _, tt := range tests {
		if got := Plan(tt.topo, tt.req); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Plan = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestPlanString(t *testing.T) {
	p := Placement{CPUs: []int{0, 4}, Nodes: []int{0, -1}}
	if got := p.String(); got != "loop0=cpu0/node0 loop1=cpu4" {
		t.Errorf("String = %q", got)
	}
	if got := (Placement{}).String(); got != "loops not pinned" {
		t.Errorf("String = %q", got)
	}
}
