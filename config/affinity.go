package config

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// CPUAffinity says whether event loops are pinned to CPUs. In YAML it is
// "auto", "off" or a list of CPU ids.
type CPUAffinity struct {
	// Mode is AffinityAuto, AffinityOff or AffinityList.
	Mode string `yaml:"-"`
	// CPUs holds the CPU ids loops are pinned to, in order, when Mode is
	// AffinityList; loop i runs on CPUs[i % len(CPUs)].
	CPUs []int `yaml:"-"`
}

// Values of CPUAffinity.Mode.
const (
	AffinityAuto = "auto" // pin loop i to the i-th CPU the process may run on
	AffinityOff  = "off"  // leave scheduling to the kernel
	AffinityList = "list" // pin loops to the CPUs in CPUAffinity.CPUs
)

// maxCPU bounds CPU ids to what a Linux cpu_set_t holds.
const maxCPU = 1024

var _ nodeDecoder = (*CPUAffinity)(nil)
var _ nodeEncoder = (*CPUAffinity)(nil)

// decodeNode accepts "auto", "off" or a list of integer CPU ids; range and
// duplicates are checked by Validate.
func (a *CPUAffinity) decodeNode(d *decoder, n *yaml.Node, path string) {
	switch {
	case n.Kind == yaml.ScalarNode && (n.Value == AffinityAuto || n.Value == AffinityOff):
		*a = CPUAffinity{Mode: n.Value}
		return
	case n.Kind == yaml.SequenceNode:
		cpus := make([]int, 0, len(n.Content))
		ok := true
		for i, item := range n.Content {
			restore := d.through(item)
			for item.Kind == yaml.AliasNode && item.Alias != nil {
				item = item.Alias
			}
			id, err := strconv.Atoi(item.Value)
			if item.Kind != yaml.ScalarNode || item.ShortTag() != "!!int" || err != nil {
				d.errorf(item, fmt.Sprintf("%s[%d]", path, i), "expected a CPU id, got %s", describe(item))
				ok = false
			} else {
				d.src.pos[fmt.Sprintf("%s[%d]", path, i)] = d.where(item)
				cpus = append(cpus, id)
			}
			restore()
		}
		if ok {
			*a = CPUAffinity{Mode: AffinityList, CPUs: cpus}
		}
		return
	}
	d.errorf(n, path, "expected \"auto\", \"off\" or a list of CPU ids, got %s%s",
		describe(n), didYouMean(n.Value, []string{AffinityAuto, AffinityOff}))
}

// encodeNode writes the mode, or the CPU ids as a flow list.
func (a *CPUAffinity) encodeNode() *yaml.Node {
	if a.Mode != AffinityList {
		return scalar("!!str", a.Mode)
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, id := range a.CPUs {
		seq.Content = append(seq.Content, scalar("!!int", strconv.Itoa(id)))
	}
	return seq
}
