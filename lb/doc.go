// Package lb holds gale's load balancers: the algorithms that choose which
// server of an upstream group takes a request (package proxy) or a connection
// (package l4). A balancer is a small interface, one implementation per file:
//
//	round_robin           each server in turn, weights ignored
//	weighted_round_robin  smooth weighted round robin (the nginx algorithm)
//	least_conn            fewest in-flight requests relative to weight
//	ip_hash               the client address hashed over the weights
//	hash                  consistent hash ring, 150 virtual nodes per unit of weight, multi-probe lookup
//	maglev                Maglev lookup table (prime size, 65537 by default)
//	p2c_ewma              power of two choices on peak-EWMA latency × in-flight
//	random                weighted random
//	first                 the first eligible server in configuration order
//
// hash and maglev take a bounded-load option (Options.BoundedLoad = ε): no
// server is given a request while its in-flight count is at or above
// ceil((1+ε) × mean). Servers marked Backup are chosen only when no primary
// server is eligible (New wraps the primaries' balancer and the backups' one).
//
// The seam. A caller fills a Request per attempt: its loop ID (balancers keep
// per-loop state, so Pick never contends), the hashed key when UsesKey says
// the balancer reads one, the servers already tried for this request and a
// Skip predicate for servers that may not take traffic at all (down,
// ejected, breaker open). Skip is supplied by whoever owns that knowledge
// (package health); lb never imports it. Balancers that count load or
// latency implement Tracker; the caller reports the start and end of every
// request it sent to the server Pick chose.
//
// Shared state. What every loop must see — in-flight counts (Loads) and the
// EWMA latencies — is kept in atomics, lock-free. Loads may live in a
// shared-memory segment (LoadsOn) so that least_conn counts the requests of
// every worker process of an instance; everything else (cursors, current
// weights, random state) is per loop, indexed by Request.Loop.
//
// lb does no I/O: it is algorithms over indexes. See docs/proxy.md
// ("Choosing a server").
package lb
