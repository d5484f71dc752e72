package config

import (
	"fmt"

	"github.com/gale-server/gale/lb"
)

// balancing checks the load-balancing keys of an upstream (balance,
// hash_key, bounded_load, vnodes, table_size and the servers' backup flags);
// path is the upstream's (or the inline proxy's) schema path.
func (v *validator) balancing(u *Upstream, path, serversKey string) {
	keyed := u.Balance == lb.Hash || u.Balance == lb.Maglev
	spec, err := lb.ParseKey(u.HashKey)
	switch {
	case err != nil:
		v.errorf(joinPath(path, "hash_key"), "%v", err)
	case u.Balance == lb.IPHash && spec.Kind != lb.KeyIP:
		v.errorf(joinPath(path, "hash_key"), "ip_hash always hashes the client address; for hash_key %s use balance: hash (or maglev)", u.HashKey)
	case !keyed && u.Balance != lb.IPHash && spec.Kind != lb.KeyIP:
		v.errorf(joinPath(path, "hash_key"), "hash_key is read only by balance: hash and maglev, not by %s", u.Balance)
	}
	if u.BoundedLoad > 0 && !keyed {
		v.errorf(joinPath(path, "bounded_load"), "bounded_load applies to balance: hash and maglev, not to %s", u.Balance)
	}
	if u.VNodes < 1 || u.VNodes > lb.MaxVNodes {
		v.errorf(joinPath(path, "vnodes"), "%d is out of range 1-%d", u.VNodes, lb.MaxVNodes)
	}
	switch {
	case u.TableSize < 2 || u.TableSize > lb.MaxTableSize || !lb.IsPrime(u.TableSize):
		v.errorf(joinPath(path, "table_size"), "%d is not a prime from 2 to %d (the default is 65537)", u.TableSize, lb.MaxTableSize)
	case u.Balance == lb.Maglev && u.TableSize < 100*len(u.Servers):
		v.errorf(joinPath(path, "table_size"), "%d is under 100 entries per server (%d servers): the table would spread keys unevenly; use a prime of at least %d",
			u.TableSize, len(u.Servers), 100*len(u.Servers))
	}
	backups := 0
	for i, s := range u.Servers {
		sp := fmt.Sprintf("%s[%d]", joinPath(path, serversKey), i)
		if s.Backup {
			backups++
		}
		if u.Balance == lb.RoundRobin && s.Weight != 1 {
			v.errorf(joinPath(sp, "weight"), "round_robin ignores weights; use balance: weighted_round_robin to weigh servers")
		}
	}
	if backups > 0 && backups == len(u.Servers) {
		v.errorf(joinPath(path, serversKey), "every server is a backup; at least one must not be")
	}
}
