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
