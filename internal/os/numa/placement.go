package numa

import (
	"fmt"
	"strings"
)

// Request describes the event loops of one worker process to be placed.
type Request struct {
	// CPUs are the CPUs loops may be pinned to, in the order they are handed
	// out. Empty means loops are not pinned, and then memory is not bound
	// either: a thread that may move between nodes gains nothing from it.
	CPUs []int
	// Group hands CPUs out node by node, giving each node a share of the loops
	// proportional to its CPUs (cpu_affinity: auto). When false, CPUs are used
	// in the given order (an explicit cpu_affinity list) and each loop is
	// bound to the node of the CPU it got.
	Group bool
	// NUMA enables grouping and binding; false ignores the topology.
	NUMA bool
	// Loops is the number of loops of this process, Process its index among
	// Processes worker processes (0 and 1 for a single process). Loop i of
	// process p is global loop p*Loops+i, so that processes do not all pin
	// their first loop to the same CPU.
	Loops, Process, Processes int
}

// Placement says where each loop of one process runs.
type Placement struct {
	// CPUs[i] is the CPU loop i is pinned to, or -1 for a loop left unpinned;
	// nil when loops are not pinned.
	CPUs []int
	// Nodes[i] is the node loop i's buffers are bound to, or -1 for none; nil
	// when memory is not bound at all (one node, numa: off, no pinning).
	Nodes []int
}

// Plan places r's loops on topology t. On a machine where r.CPUs fall on
// fewer than two nodes, or with r.NUMA false, it only rotates the CPU list
// by the process's first global loop and binds nothing: one node changes
// nothing.
func Plan(t Topology, r Request) Placement {
	if len(r.CPUs) == 0 || r.Loops <= 0 {
		return Placement{}
	}
	if r.Processes < 1 {
		r.Processes = 1
	}
	first := r.Process * r.Loops
	var groups []group
	if r.NUMA {
		groups = groupByNode(t, r.CPUs)
	}
	p := Placement{CPUs: make([]int, r.Loops)}
	if len(groups) < 2 {
		for i := range p.CPUs {
			p.CPUs[i] = r.CPUs[(first+i)%len(r.CPUs)]
		}
		return p
	}
	p.Nodes = make([]int, r.Loops)
	if !r.Group {
		for i := range p.CPUs {
			p.CPUs[i] = r.CPUs[(first+i)%len(r.CPUs)]
			p.Nodes[i] = t.NodeOf(p.CPUs[i])
		}
		return p
	}
	shares(groups, r.Loops*r.Processes, len(r.CPUs))
	for i := range p.CPUs {
		g := first + i
		for _, gr := range groups {
			if g < gr.start+gr.share {
				p.CPUs[i] = gr.cpus[(g-gr.start)%len(gr.cpus)]
				p.Nodes[i] = gr.node
				break
			}
		}
	}
	return p
}

// group is the part of a CPU list that lies on one node, and the range of
// global loops given to it.
type group struct {
	node         int // -1 for CPUs no node lists
	cpus         []int
	start, share int // global loops [start, start+share) run here
}

// groupByNode splits cpus by node, in node order, keeping their order within
// a node; CPUs that no node lists form a last group with node -1.
func groupByNode(t Topology, cpus []int) []group {
	var groups []group
	index := map[int]int{} // node -> position in groups
	for _, c := range cpus {
		n := t.NodeOf(c)
		k, ok := index[n]
		if !ok {
			k = len(groups)
			index[n] = k
			groups = append(groups, group{node: n})
		}
		groups[k].cpus = append(groups[k].cpus, c)
	}
	// Order by node id, the unlisted group (-1) last.
	for i := 1; i < len(groups); i++ {
		for j := i; j > 0 && less(groups[j].node, groups[j-1].node); j-- {
			groups[j], groups[j-1] = groups[j-1], groups[j]
		}
	}
	return groups
}

func less(a, b int) bool {
	if a < 0 || b < 0 {
		return b < 0 && a >= 0
	}
	return a < b
}

// shares gives each group a number of the total loops proportional to its
// CPUs (largest remainder; ties go to the lower node) and sets the ranges.
func shares(groups []group, total, cpus int) {
	given := 0
	rem := make([]int, len(groups))
	for i := range groups {
		groups[i].share = total * len(groups[i].cpus) / cpus
		rem[i] = total * len(groups[i].cpus) % cpus
		given += groups[i].share
	}
	for ; given < total; given++ {
		best := 0
		for i := range rem {
			if rem[i] > rem[best] {
				best = i
			}
		}
		groups[best].share++
		rem[best] = -1
	}
	start := 0
	for i := range groups {
		groups[i].start = start
		start += groups[i].share
	}
}

// String describes the placement for the startup log, one "loopI=cpuC/nodeN"
// item per loop.
func (p Placement) String() string {
	if p.CPUs == nil {
		return "loops not pinned"
	}
	parts := make([]string, len(p.CPUs))
	for i, c := range p.CPUs {
		if c < 0 {
			parts[i] = fmt.Sprintf("loop%d=unpinned", i)
			continue
		}
		parts[i] = fmt.Sprintf("loop%d=cpu%d", i, c)
		if p.Nodes != nil && p.Nodes[i] >= 0 {
			parts[i] += fmt.Sprintf("/node%d", p.Nodes[i])
		}
	}
	return strings.Join(parts, " ")
}
