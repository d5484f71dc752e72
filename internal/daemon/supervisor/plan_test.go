package supervisor

import (
	"bytes"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/os/numa"
)

func TestPlanUsesTopologyAndAffinity(t *testing.T) {
	defer func(old string) { numaRoot = old }(numaRoot)
	defer func(old func() []int) { allowed = old }(allowed)
	allowed = func() []int { return nil }         // unknown: the lists are taken as they are
	numaRoot = "../../os/numa/testdata/two-nodes" // node0=0-3,8-11 node1=4-7,12-15
	cfg := config.New()
	cfg.Workers = 2
	tests := []struct {
		name           string
		affinity       config.CPUAffinity
		numaMode       string
		process, procs int
		want           numa.Placement
		logWants       []string
	}{
		{"a list across nodes binds each loop to its CPU's node",
			config.CPUAffinity{Mode: config.AffinityList, CPUs: []int{0, 4, 1, 5}}, config.NUMAAuto, 1, 2,
			numa.Placement{CPUs: []int{1, 5}, Nodes: []int{0, 1}},
			[]string{"node0=0-3,8-11 node1=4-7,12-15", "loop0=cpu1/node0 loop1=cpu5/node1"}},
		{"numa off pins without binding",
			config.CPUAffinity{Mode: config.AffinityList, CPUs: []int{0, 4}}, config.NUMAOff, 0, 1,
			numa.Placement{CPUs: []int{0, 4}},
			[]string{"(numa: off)", "loop0=cpu0 loop1=cpu4"}},
		{"affinity off pins nothing",
			config.CPUAffinity{Mode: config.AffinityOff}, config.NUMAAuto, 0, 1,
			numa.Placement{},
			[]string{"loops not pinned"}},
	}
	for _, tt := range tests {
		cfg.CPUAffinity, cfg.NUMA = tt.affinity, tt.numaMode
		var logs bytes.Buffer
		got := plan(cfg, slog.New(slog.NewTextHandler(&logs, nil)), tt.process, tt.procs)
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("%s: plan = %+v, want %+v", tt.name, *got, tt.want)
		}
		for _, w := range tt.logWants {
			if !strings.Contains(logs.String(), w) {
				t.Errorf("%s: log %q lacks %q", tt.name, logs.String(), w)
			}
		}
	}
	numaRoot = "testdata/no-such-tree"
	cfg.CPUAffinity = config.CPUAffinity{Mode: config.AffinityList, CPUs: []int{0, 1}}
	var logs bytes.Buffer
	if got := plan(cfg, slog.New(slog.NewTextHandler(&logs, nil)), 0, 1); !reflect.DeepEqual(*got, numa.Placement{CPUs: []int{0, 1}}) ||
		!strings.Contains(logs.String(), "unknown") {
		t.Errorf("without a topology: plan = %+v, log %q", *got, logs.String())
	}
}

// TestPlanUnpinsForbiddenCPUs: a loop whose CPU from a cpu_affinity list is
// not one the process may run on (CPU 5 of a 2-CPU machine) is left unpinned
// with a warning, and the placement logged says so; the loops left pinned lie
// on one node, so nothing is bound (CPU 5 was the list's only CPU of node 1).
// It used to name the CPU
// as if the loop ran there, while the loop only warned "cpu pinning failed".
func TestPlanUnpinsForbiddenCPUs(t *testing.T) {
	defer func(old string) { numaRoot = old }(numaRoot)
	defer func(old func() []int) { allowed = old }(allowed)
	numaRoot = "../../os/numa/testdata/two-nodes" // node0=0-3,8-11 node1=4-7,12-15
	allowed = func() []int { return []int{0, 1} }
	cfg := config.New()
	cfg.Workers = 3
	cfg.CPUAffinity = config.CPUAffinity{Mode: config.AffinityList, CPUs: []int{0, 5, 1}}
	var logs bytes.Buffer
	got := plan(cfg, slog.New(slog.NewTextHandler(&logs, nil)), 0, 1)
	if want := (numa.Placement{CPUs: []int{0, -1, 1}}); !reflect.DeepEqual(*got, want) {
		t.Errorf("plan = %+v, want %+v", *got, want)
	}
	for _, w := range []string{
		`level=WARN msg="cpu_affinity: this process may not run on the CPU; the loop runs unpinned" loop=1 cpu=5 allowed=0-1`,
		`(one node in use: no binding)" loops="loop0=cpu0 loop1=unpinned loop2=cpu1"`,
	} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log %q lacks %q", logs.String(), w)
		}
	}
	allowed = func() []int { return []int{0, 4} }
	cfg.CPUAffinity.CPUs = []int{0, 4, 99}
	logs.Reset()
	got = plan(cfg, slog.New(slog.NewTextHandler(&logs, nil)), 0, 1)
	if want := (numa.Placement{CPUs: []int{0, 4, -1}, Nodes: []int{0, 1, -1}}); !reflect.DeepEqual(*got, want) {
		t.Errorf("with two nodes left: plan = %+v, want %+v", *got, want)
	}
	if w := `loops="loop0=cpu0/node0 loop1=cpu4/node1 loop2=unpinned"`; !strings.Contains(logs.String(), w) {
		t.Errorf("log %q lacks %q", logs.String(), w)
	}
}
