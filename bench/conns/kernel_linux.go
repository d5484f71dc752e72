package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// softnetCounters adds to m the packets dropped because a CPU's input backlog was full
// (column 2 of /proc/net/softnet_stat, as "Softnet.Dropped") and the times its receive
// processing ran out of budget with work left (column 3, "Softnet.TimeSqueeze"), summed
// over the CPUs. The columns are hexadecimal, one line per CPU.
func softnetCounters(m map[string]int64) error {
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return err
	}
	var dropped, squeezed int64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			return fmt.Errorf("/proc/net/softnet_stat: short line %q", line)
		}
		d, err1 := strconv.ParseInt(f[1], 16, 64)
		s, err2 := strconv.ParseInt(f[2], 16, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("/proc/net/softnet_stat: bad line %q", line)
		}
		dropped += d
		squeezed += s
	}
	m["Softnet.Dropped"], m["Softnet.TimeSqueeze"] = dropped, squeezed
	return nil
}

// slabCaches returns the bytes in use by each of the kernel's object caches (active objects
// times object size, from /proc/slabinfo, which only root may read), keyed by cache name.
func slabCaches() (map[string]int64, error) {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// name active_objs num_objs objsize ...; the version line and the "#" header do
		// not parse as numbers.
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		active, err1 := strconv.ParseInt(f[1], 10, 64)
		size, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		m[f[0]] += active * size
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("/proc/slabinfo: no caches")
	}
	return m, nil
}
