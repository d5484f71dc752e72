package supervisor

import "github.com/gale-server/gale/internal/os/sys"

// allowedCPUs lists the CPUs this process may run on, for cpu_affinity: auto;
// nil (no pinning) if the kernel does not say.
func allowedCPUs() []int {
	cpus, err := sys.AllowedCPUs()
	if err != nil {
		return nil
	}
	return cpus
}
