package lb

import (
	"errors"
	"fmt"
	"time"
)

// Balancer chooses a server for one attempt. Pick runs on the loop whose ID is
// r.Loop, must not block or allocate, and returns the index (into the servers
// the balancer was built with) of an eligible server, or -1 when none is.
// Implementations are safe for concurrent use by distinct loops; two callers
// must not share a loop ID at once.
type Balancer interface {
	Pick(r *Request) int
}

// Tracker is implemented by balancers that weigh load or latency. The caller
// calls Start(i) when it sends a request (or opens a connection) to server i,
// and Done(i, rtt, failed) exactly once for each Start, with the time from
// Start to the end of the response (or the failure). Both are safe from any
// loop at once and never block.
type Tracker interface {
	Start(i int)
	Done(i int, rtt time.Duration, failed bool)
}

// Tracks reports whether b needs to hear of every attempt's start and end: it
// implements Tracker and reads what Start and Done count. hash and maglev do
// only with a bounded load, a balancer with backups only when the primaries'
// or the backups' balancer does. A caller that rebuilds a balancer (new
// weights) must keep the one that tracks, whose counts it shares.
func Tracks(b Balancer) bool {
	if _, ok := b.(Tracker); !ok {
		return false
	}
	if c, ok := b.(interface{ tracks() bool }); ok {
		return c.tracks()
	}
	return true
}

// Keyed is implemented by balancers that read Request.Key; UsesKey reports it.
type Keyed interface {
	UsesKey() bool
}

// UsesKey reports whether b reads Request.Key, so that a caller computes the
// key only when it is needed.
func UsesKey(b Balancer) bool {
	k, ok := b.(Keyed)
	return ok && k.UsesKey()
}

// Request is what a balancer knows about one attempt. A caller may reuse one
// Request for every attempt of a request.
type Request struct {
	// Loop is the calling loop's ID: the index of the per-loop state used.
	Loop int
	// Key is the request's hashed key (HashBytes of the key's bytes), for
	// ip_hash, hash and maglev; the others ignore it.
	Key uint64
	// Tried has bit i set for each server i < 64 already tried for this
	// request: such a server is not eligible, and a Pick with any bit set is a
	// retry (round_robin then does not move its cursor).
	Tried uint64
	// Exclude has bit i set for each server i < 64 that may take no traffic
	// now (down, ejected, drained, at a limit): not eligible either, but not a
	// retry. The caller's health state goes here, not in Tried, or round_robin
	// would take every pick for a retry and send everything to one server.
	Exclude uint64
	// Now, when not 0, is the caller's current time in Unix nanoseconds (a
	// loop's cached time), which p2c_ewma then uses instead of reading the
	// clock on every pick.
	Now int64
	// Skip, when not nil, reports servers that may not take traffic (down,
	// ejected, circuit open). It must be safe to call from any loop, must not
	// block, and is called at most a few times per server per Pick.
	Skip func(i int) bool
}

// Eligible reports whether server i may be chosen for r.
func (r *Request) Eligible(i int) bool {
	// Written to stay under the inlining budget: a shift of 64 or more gives 0.
	return (r.Tried|r.Exclude)>>uint(i)&1 == 0 && (r.Skip == nil || !r.Skip(i))
}

// Server is one server as a balancer sees it.
type Server struct {
	// ID identifies the server for hashing (its address): the ring and the
	// Maglev table place a server by ID, so that a server keeps its keys when
	// others are added or removed.
	ID string
	// Weight is its share relative to the others; values below 1 count as 1.
	Weight int
	// Backup servers are chosen only when no primary server is eligible.
	Backup bool
}

// Balancing methods, as written in configuration (balance:).
const (
	RoundRobin         = "round_robin"
	WeightedRoundRobin = "weighted_round_robin"
	LeastConn          = "least_conn"
	IPHash             = "ip_hash"
	Hash               = "hash"
	Maglev             = "maglev"
	P2CEWMA            = "p2c_ewma"
	Random             = "random"
	First              = "first"
)

// Methods lists every balancing method in documentation order.
var Methods = []string{RoundRobin, WeightedRoundRobin, LeastConn, IPHash, Hash, Maglev, P2CEWMA, Random, First}

// Defaults and limits of Options.
const (
	DefaultVNodes    = 150   // ring points per unit of weight
	DefaultTableSize = 65537 // Maglev table entries (prime)
	MaxTableSize     = 1<<24 - 3
	MaxVNodes        = 10000
	DefaultDecay     = 10 * time.Second // p2c_ewma's EWMA time constant
)

// Options configure New. The zero value is the defaults.
type Options struct {
	// Loops is the number of loops that call Pick (loop IDs 0..Loops-1); at
	// least 1.
	Loops int
	// VNodes is the number of ring points per unit of weight for hash
	// (DefaultVNodes when 0).
	VNodes int
	// TableSize is the Maglev table size, a prime (DefaultTableSize when 0).
	TableSize int
	// BoundedLoad, when above 0, is ε of consistent hashing with bounded
	// loads, for hash and maglev: a server whose in-flight count is at or
	// above ceil((1+ε) × (total in-flight + 1) / eligible servers) is passed
	// over for the next one the key would go to.
	BoundedLoad float64
	// Loads holds the in-flight counts. nil gets a private table; pass one
	// from LoadsOn to count the requests of every process of an instance.
	Loads *Loads
	// Decay is p2c_ewma's EWMA time constant (DefaultDecay when 0).
	Decay time.Duration
	// Seed varies random choices (random, p2c_ewma) between instances.
	Seed uint64
}

// ErrMethod is returned by New for a method it does not know.
var ErrMethod = errors.New("lb: unknown balancing method")

// New returns the balancer named method over servers. When some servers are
// backups, the result picks among the primaries and, when none is eligible,
// among the backups with the same method.
func New(method string, servers []Server, o Options) (Balancer, error) {
	if len(servers) == 0 {
		return nil, errors.New("lb: no servers")
	}
	if o.Loops < 1 {
		o.Loops = 1
	}
	if o.VNodes == 0 {
		o.VNodes = DefaultVNodes
	}
	if o.VNodes < 1 || o.VNodes > MaxVNodes {
		return nil, fmt.Errorf("lb: vnodes %d is out of range 1-%d", o.VNodes, MaxVNodes)
	}
	if o.TableSize == 0 {
		o.TableSize = DefaultTableSize
	}
	if o.TableSize < 2 || o.TableSize > MaxTableSize || !IsPrime(o.TableSize) {
		return nil, fmt.Errorf("lb: maglev table size %d must be a prime from 2 to %d", o.TableSize, MaxTableSize)
	}
	if o.TableSize < len(servers) {
		return nil, fmt.Errorf("lb: maglev table size %d is smaller than the %d servers", o.TableSize, len(servers))
	}
	if o.BoundedLoad < 0 {
		return nil, fmt.Errorf("lb: bounded load ε %v must not be negative", o.BoundedLoad)
	}
	if o.Decay <= 0 {
		o.Decay = DefaultDecay
	}
	if o.Loads == nil {
		o.Loads = NewLoads(len(servers))
	}
	if o.Loads.Len() < len(servers) {
		return nil, fmt.Errorf("lb: the load table has %d servers, not %d", o.Loads.Len(), len(servers))
	}
	var prim, back []int
	for i, s := range servers {
		if s.Backup {
			back = append(back, i)
		} else {
			prim = append(prim, i)
		}
	}
	if len(prim) == 0 {
		return nil, errors.New("lb: every server is a backup; at least one must not be")
	}
	p, err := build(method, newSet(servers, prim), &o)
	if err != nil || len(back) == 0 {
		return p, err
	}
	b, err := build(method, newSet(servers, back), &o)
	if err != nil {
		return nil, err
	}
	wb := &withBackup{primary: p, backup: b, isBackup: make([]bool, len(servers))}
	for _, i := range back {
		wb.isBackup[i] = true
	}
	return wb, nil
}

// build makes the balancer of method over the members of s.
func build(method string, s set, o *Options) (Balancer, error) {
	switch method {
	case RoundRobin:
		return newRoundRobin(s, o), nil
	case WeightedRoundRobin:
		return newSWRR(s, o), nil
	case LeastConn:
		return newLeastConn(s, o), nil
	case IPHash:
		return newIPHash(s, o), nil
	case Hash:
		return newRing(s, o), nil
	case Maglev:
		return newMaglev(s, o), nil
	case P2CEWMA:
		return newP2C(s, o), nil
	case Random:
		return newRandom(s, o), nil
	case First:
		return newFirst(s), nil
	}
	return nil, fmt.Errorf("%w %q", ErrMethod, method)
}

// IsPrime reports whether n is prime (trial division; meant for n up to MaxTableSize).
func IsPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
