//go:build !unix

package static

// descriptorLimit returns 0: no descriptor limit is known on this system, so the
// open-file cache holds as many descriptors as open_file_cache.max allows.
func descriptorLimit() int { return 0 }
