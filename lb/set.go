package lb

import "time"

// set is the servers one balancer chooses among: a subset (the primaries or the
// backups) of the servers New was given. Immutable.
type set struct {
	idx    []int    // member k is server idx[k] of the caller's list
	weight []int    // member k's weight, at least 1
	ids    []string // member k's ID
	total  int      // sum of weight
}

func newSet(servers []Server, members []int) set {
	s := set{idx: members, weight: make([]int, len(members)), ids: make([]string, len(members))}
	for k, i := range members {
		s.weight[k] = max(servers[i].Weight, 1)
		s.ids[k] = servers[i].ID
		s.total += s.weight[k]
	}
	return s
}

// withBackup picks among the primaries and, when none is eligible, among the
// backups. Both balancers return indexes into the caller's list.
type withBackup struct {
	primary, backup Balancer
	isBackup        []bool // by index in the caller's list
}

var (
	_ Balancer = (*withBackup)(nil)
	_ Tracker  = (*withBackup)(nil)
	_ Keyed    = (*withBackup)(nil)
)

// Pick returns a primary server, or a backup when no primary is eligible.
func (b *withBackup) Pick(r *Request) int {
	if i := b.primary.Pick(r); i >= 0 {
		return i
	}
	return b.backup.Pick(r)
}

// Start passes the report to the balancer server i belongs to, when it
// tracks load.
func (b *withBackup) Start(i int) {
	if t, ok := b.owner(i).(Tracker); ok {
		t.Start(i)
	}
}

// Done ends what Start began.
func (b *withBackup) Done(i int, rtt time.Duration, failed bool) {
	if t, ok := b.owner(i).(Tracker); ok {
		t.Done(i, rtt, failed)
	}
}

// tracks reports whether either balancer needs Start and Done.
func (b *withBackup) tracks() bool { return Tracks(b.primary) || Tracks(b.backup) }

// owner returns the balancer that chooses server i.
func (b *withBackup) owner(i int) Balancer {
	if i >= 0 && i < len(b.isBackup) && b.isBackup[i] {
		return b.backup
	}
	return b.primary
}

// UsesKey reports whether the method reads the key.
func (b *withBackup) UsesKey() bool { return UsesKey(b.primary) }

// loopCursor is one loop's position, padded to a cache line so that loops do
// not share one.
type loopCursor struct {
	n uint64
	_ [56]byte
}

// loopIndex maps a loop ID onto a per-loop slice of length n.
func loopIndex(loop, n int) int {
	if loop >= 0 && loop < n {
		return loop
	}
	if loop < 0 {
		loop = -loop
	}
	return loop % n
}
