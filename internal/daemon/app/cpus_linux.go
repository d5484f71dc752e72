package app

import "github.com/gale-server/gale/internal/os/sys"

// autoCPUs lists the CPUs this process may use, for `cpu_affinity: auto`.
func autoCPUs() []int {
	cpus, err := sys.AllowedCPUs()
	if err != nil {
		return nil
	}
	return cpus
}
