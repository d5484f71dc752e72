//go:build !linux

package app

// autoCPUs returns nil: loops are not pinned outside Linux.
func autoCPUs() []int { return nil }
