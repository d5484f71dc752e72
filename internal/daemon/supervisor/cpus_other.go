//go:build !linux

package supervisor

// allowedCPUs returns nil: loops are not pinned outside Linux.
func allowedCPUs() []int { return nil }
