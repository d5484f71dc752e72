// Package numa reads the machine's NUMA topology from sysfs
// (/sys/devices/system/node), plans where each event loop runs so that loops
// are grouped by node, and allocates memory bound to one node (mbind on Linux).
//
// Reading the topology is plain file parsing with an injectable root, so that
// tests run against a fake tree; binding memory needs Linux and falls back to
// unbound memory elsewhere.
package numa

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DefaultRoot is where Linux describes NUMA nodes: one directory nodeN per
// node, each with a cpulist file.
const DefaultRoot = "/sys/devices/system/node"

// Node is one NUMA node and the CPUs that belong to it.
type Node struct {
	ID   int   // the N of nodeN
	CPUs []int // ascending CPU ids
}

// Topology is the set of NUMA nodes that have CPUs, ordered by node id.
// Memory-only nodes (no CPUs) are left out: no loop can run on them.
type Topology struct {
	Nodes []Node
}

// Read parses the node directories below root (DefaultRoot on a real
// machine). A system without the directory (a kernel built without NUMA) is
// an error; callers treat it as one node.
func Read(root string) (Topology, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return Topology{}, err
	}
	var t Topology
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "node") {
			continue
		}
		id, err := strconv.Atoi(name[len("node"):])
		if err != nil || id < 0 {
			continue // "node" prefix of an unrelated entry, such as a file named nodefoo
		}
		raw, err := os.ReadFile(filepath.Join(root, name, "cpulist"))
		if err != nil {
			return Topology{}, err
		}
		cpus, err := ParseCPUList(string(raw))
		if err != nil {
			return Topology{}, fmt.Errorf("%s: %w", filepath.Join(root, name, "cpulist"), err)
		}
		if len(cpus) > 0 {
			t.Nodes = append(t.Nodes, Node{ID: id, CPUs: cpus})
		}
	}
	if len(t.Nodes) == 0 {
		return Topology{}, fmt.Errorf("numa: no node with CPUs below %s", root)
	}
	sort.Slice(t.Nodes, func(i, j int) bool { return t.Nodes[i].ID < t.Nodes[j].ID })
	return t, nil
}

// NodeOf returns the node that cpu belongs to, or -1 when no node lists it.
func (t Topology) NodeOf(cpu int) int {
	for _, n := range t.Nodes {
		i := sort.SearchInts(n.CPUs, cpu)
		if i < len(n.CPUs) && n.CPUs[i] == cpu {
			return n.ID
		}
	}
	return -1
}

// String describes the topology as "node0=0-7 node1=8-15".
func (t Topology) String() string {
	parts := make([]string, len(t.Nodes))
	for i, n := range t.Nodes {
		parts[i] = fmt.Sprintf("node%d=%s", n.ID, FormatCPUList(n.CPUs))
	}
	return strings.Join(parts, " ")
}

// maxCPU bounds the ids ParseCPUList accepts, as a Linux cpu_set_t does.
const maxCPU = 1 << 16

// ParseCPUList parses the kernel's CPU list format ("0-3,8,10-11", possibly
// empty, with a trailing newline) into ascending, distinct CPU ids.
func ParseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	seen := map[int]bool{}
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 || a >= maxCPU {
			return nil, fmt.Errorf("invalid CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b >= maxCPU {
				return nil, fmt.Errorf("invalid CPU list %q", s)
			}
		}
		for c := a; c <= b; c++ {
			if !seen[c] {
				seen[c] = true
				cpus = append(cpus, c)
			}
		}
	}
	sort.Ints(cpus)
	return cpus, nil
}

// FormatCPUList writes CPU ids in the kernel's list format, collapsing runs
// of consecutive ids into ranges; ids must be ascending.
func FormatCPUList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}
