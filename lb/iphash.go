package lb

// ipHashLB maps the client's address (Request.Key, from HashAddr) onto the
// servers in proportion to their weights: the same client goes to the same
// server while the set of servers and their weights stay the same. When that
// server is not eligible the key is re-hashed, up to ipHashTries times, and
// then the next eligible server is taken (nginx's ip_hash behaves alike). It
// is not consistent: changing the servers moves most clients; hash with
// hash_key: ip is.
type ipHashLB struct {
	s   set
	cum []int
}

var (
	_ Balancer = (*ipHashLB)(nil)
	_ Keyed    = (*ipHashLB)(nil)
)

const ipHashTries = 20

func newIPHash(s set, _ *Options) *ipHashLB { return &ipHashLB{s: s, cum: cumulative(s)} }

// UsesKey reports that ip_hash reads Request.Key.
func (b *ipHashLB) UsesKey() bool { return true }

// Pick returns the server the key maps to, or a re-hash's when that one is not
// eligible.
func (b *ipHashLB) Pick(r *Request) int {
	h := r.Key
	k := 0
	for range ipHashTries {
		k = searchCum(b.cum, int(h%uint64(b.s.total)))
		if i := b.s.idx[k]; r.Eligible(i) {
			return i
		}
		h = Mix(h + golden)
	}
	return scanFrom(b.s, r, k)
}
