//go:build unix

package static

import "golang.org/x/sys/unix"

// descriptorLimit returns the process's soft limit on open descriptors
// (RLIMIT_NOFILE), or 0 when it cannot be read or is unlimited, which above 2^30 it
// is as far as the cache is concerned (that also keeps the number an int on 32-bit
// systems). Go raises the soft limit to the hard one at start, so this is the number
// a server can really open.
func descriptorLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
