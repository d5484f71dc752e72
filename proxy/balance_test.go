package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/lb"
)

// namedOrigins starts n origins that answer with their index and count their
// requests; delay(i) is how long origin i waits before answering.
func namedOrigins(t *testing.T, n int, delay func(i int) time.Duration) ([]netip.AddrPort, []*atomic.Int64) {
	var addrs []netip.AddrPort
	var hits []*atomic.Int64
	for i := range n {
		c := new(atomic.Int64)
		o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.Add(1)
			if delay != nil {
				time.Sleep(delay(i))
			}
			fmt.Fprint(w, i)
		}))
		addrs, hits = append(addrs, o.addr()), append(hits, c)
	}
	return addrs, hits
}

// getBody sends one request through the proxy and returns the body (the origin's
// index).
func getBody(t *testing.T, c *http.Client, url string, hdr map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

// TestBalanceHashHeaderSticks: with balance hash and hash_key header:X-User,
// every request of a user reaches the same origin over the wire, whatever
// connection it comes on, and the users spread over the origins.
func TestBalanceHashHeaderSticks(t *testing.T) {
	for _, m := range []string{lb.Hash, lb.Maglev} {
		t.Run(m, func(t *testing.T) {
			addrs, _ := namedOrigins(t, 3, nil)
			key, _ := lb.ParseKey("header:X-User")
			u := testUpstream(t, addrs, func(o *UpstreamOptions) { o.Balance, o.HashKey = m, key })
			url := "http://" + startProxy(t, u, Route{}, nil) + "/"
			c := client()
			first := map[string]string{}
			used := map[string]bool{}
			for round := range 4 {
				if round == 2 {
					c.CloseIdleConnections() // new client connections, possibly on other loops
				}
				for user := range 30 {
					id := fmt.Sprintf("user-%d", user)
					got := getBody(t, c, url, map[string]string{"X-User": id})
					if want, ok := first[id]; ok && got != want {
						t.Fatalf("round %d: %s went to origin %s, before to %s", round, id, got, want)
					}
					first[id] = got
					used[got] = true
				}
			}
			if len(used) < 3 {
				t.Errorf("30 users reached only origins %v", used)
			}
		})
	}
}

// TestBalanceSlowOriginAvoided: under concurrent load, least_conn and p2c_ewma
// send an origin that takes 10× longer than the others (200 ms) far less than
// its third of the requests; round robin, the control, does not.
func TestBalanceSlowOriginAvoided(t *testing.T) {
	for _, m := range []string{lb.LeastConn, lb.P2CEWMA, lb.RoundRobin} {
		t.Run(m, func(t *testing.T) {
			t.Parallel() // each method has its own origins, upstream and proxy; the wait is the slow origin's sleeps
			addrs, hits := namedOrigins(t, 3, func(i int) time.Duration {
				if i == 0 {
					return 200 * time.Millisecond
				}
				return 20 * time.Millisecond
			})
			u := testUpstream(t, addrs, func(o *UpstreamOptions) { o.Balance = m })
			url := "http://" + startProxy(t, u, Route{}, nil) + "/"
			c := client()
			const workers, each = 12, 25
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range each {
						getBody(t, c, url, nil)
					}
				})
			}
			wg.Wait()
			total := workers * each
			share := float64(hits[0].Load()) / float64(total)
			t.Logf("slow origin got %d of %d requests (%.1f%%); the others %d and %d",
				hits[0].Load(), total, 100*share, hits[1].Load(), hits[2].Load())
			if m == lb.RoundRobin {
				if share < 0.25 {
					t.Errorf("round robin gave the slow origin %.1f%%, expected about a third", 100*share)
				}
				return
			}
			if share > 0.15 {
				t.Errorf("the slow origin got %.1f%% of the requests, want at most 15%% (even: 33%%)", 100*share)
			}
		})
	}
}

// TestBalanceBackupAndSkip: a backup origin takes no request while the primary
// answers; when the primary refuses connections, the retry goes to the backup
// and the client sees no failure. A server the Skip predicate (health's seam)
// marks is never sent a request.
func TestBalanceBackupAndSkip(t *testing.T) {
	addrs, hits := namedOrigins(t, 2, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close() // connections to it are refused from now on
	var skip atomic.Bool
	u := testUpstream(t, []netip.AddrPort{addrs[0], addrs[1], dead}, func(o *UpstreamOptions) {
		o.Servers[1].Backup = true
		o.Retries.Budget = 1 // half the requests first try the dead server
		o.Skip = func(i int) bool { return i == 0 && skip.Load() }
	})
	url := "http://" + startProxy(t, u, Route{}, nil) + "/"
	c := client()
	for range 20 {
		if got := getBody(t, c, url, nil); got != "0" && got != "1" {
			t.Fatalf("got %q", got)
		}
	}
	// Origins 0 and the dead one are primaries: the dead one fails, its retry goes
	// to 0 (not yet tried); the backup took nothing.
	if hits[1].Load() != 0 {
		t.Errorf("the backup got %d requests while a primary answered", hits[1].Load())
	}
	skip.Store(true) // origin 0 is now "down": only the dead primary, then the backup, remain
	before := hits[0].Load()
	for range 20 {
		if got := getBody(t, c, url, nil); got != "1" {
			t.Fatalf("with the primary skipped got origin %q, want the backup", got)
		}
	}
	if hits[0].Load() != before {
		t.Errorf("the skipped origin got %d requests", hits[0].Load()-before)
	}
}

// TestBalanceP2CHangingOriginFromStart: with p2c_ewma, an origin that hangs
// from the first request it gets takes at most that request while another
// origin answers. The balancer knew no latency of it, and its cost of 0 made
// it look free however many requests waited on it, so it took every request
// until the first one ended.
func TestBalanceP2CHangingOriginFromStart(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 64)
	var hung atomic.Int64
	hang := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		arrived <- struct{}{}
		<-release
		fmt.Fprint(w, "hung")
	}))
	fast := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "fast") }))
	defer close(release) // before the origins close (cleanups run after defers)
	u := testUpstream(t, []netip.AddrPort{hang.addr(), fast.addr()}, func(o *UpstreamOptions) { o.Balance = lb.P2CEWMA })
	url := "http://" + startProxy(t, u, Route{}, nil) + "/"
	c := client()
	answered := make(chan error, 64)
	const total = 20
	for range total {
		// One request at a time: the next starts once this one reached the
		// hanging origin or was answered.
		go func() {
			resp, err := c.Get(url)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			answered <- err
		}()
		select {
		case <-arrived:
		case err := <-answered:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a request neither reached the hanging origin nor was answered within 10s")
		}
	}
	if n := hung.Load(); n > 1 {
		t.Errorf("the hanging origin got %d of %d requests, want at most 1", n, total)
	}
}

// TestBalanceBackupsShareAfterDeadPrimary: with round_robin, a primary that
// refuses connections and two backup origins, the retries share the backups.
// The backups' round robin took each retry for one of its own (the primary was
// in Tried) and did not move its cursor: the first backup got every request.
func TestBalanceBackupsShareAfterDeadPrimary(t *testing.T) {
	addrs, hits := namedOrigins(t, 2, nil)
	u := testUpstream(t, []netip.AddrPort{refusedAddr(t), addrs[0], addrs[1]}, func(o *UpstreamOptions) {
		o.Balance = lb.RoundRobin
		o.Servers[1].Backup, o.Servers[2].Backup = true, true
	})
	url := "http://" + startProxy(t, u, Route{}, nil) + "/"
	c := client()
	for range 40 {
		getBody(t, c, url, nil)
	}
	if a, b := hits[0].Load(), hits[1].Load(); a < 15 || b < 15 {
		t.Errorf("40 requests past a dead primary went %d and %d to the two backups, want about 20 each", a, b)
	}
}

// TestBalanceHashURIAbsoluteForm: with hash_key uri, a request in absolute
// form ("GET http://host/path?q") goes where the same request in origin form
// goes, as it is forwarded in origin form and an HTTP/2 request's :path is
// one. The whole target was hashed, scheme and authority included, so the
// two forms of one resource went to different servers.
func TestBalanceHashURIAbsoluteForm(t *testing.T) {
	for _, m := range []string{lb.Hash, lb.Maglev} {
		t.Run(m, func(t *testing.T) {
			addrs, _ := namedOrigins(t, 3, nil)
			key, _ := lb.ParseKey("uri")
			u := testUpstream(t, addrs, func(o *UpstreamOptions) { o.Balance, o.HashKey = m, key })
			addr := startProxy(t, u, Route{}, nil)
			for k := range 20 {
				target := fmt.Sprintf("/item/%d?v=%d", k, k%3)
				if k%4 == 0 {
					target = fmt.Sprintf("/item/%d", k) // no query
				}
				origin := roundTrip(t, addr, "GET "+target+" HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
				absolute := roundTrip(t, addr, "GET http://example.com"+target+" HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
				if origin == "" || origin != absolute {
					t.Fatalf("%s: origin form answered %q, absolute form %q", target, origin, absolute)
				}
			}
		})
	}
}

// BenchmarkProxyBalance is BenchmarkProxyTiny over three origins with each
// balancing method (keyed ones hash the client address): what choosing a
// server adds to a proxied request, allocations included.
func BenchmarkProxyBalance(b *testing.B) {
	for _, m := range lb.Methods {
		b.Run(m, func(b *testing.B) {
			benchProxyTiny(b, 3, func(o *UpstreamOptions) { o.Balance = m })
		})
	}
}

// TestBalanceHashKeyMissingSpreads: requests without a value for the hash key
// (no such cookie, header or query parameter, or an empty one) spread over the
// servers, as HAProxy, nginx's hash and Caddy fall back to round robin or
// random; those with it still stick. They all hashed the empty value, so every
// new visitor of a cookie:session upstream (no cookie yet) went to one server.
func TestBalanceHashKeyMissingSpreads(t *testing.T) {
	for _, tc := range []struct{ key, name string }{{"cookie:session", "Cookie"}, {"header:X-User", "X-User"}, {"query:u", ""}} {
		for _, m := range []string{lb.Hash, lb.Maglev} {
			t.Run(tc.key+"/"+m, func(t *testing.T) {
				addrs, hits := namedOrigins(t, 3, nil)
				key, _ := lb.ParseKey(tc.key)
				u := testUpstream(t, addrs, func(o *UpstreamOptions) { o.Balance, o.HashKey = m, key })
				url := "http://" + startProxy(t, u, Route{}, nil) + "/"
				c := client()
				for i := range 60 {
					var hdr map[string]string
					if i%2 == 1 && tc.name != "" { // present but empty
						hdr = map[string]string{tc.name: map[bool]string{true: "session=", false: ""}[tc.name == "Cookie"]}
					}
					getBody(t, c, url+map[bool]string{true: "?u=", false: ""}[i%2 == 1 && tc.name == ""], hdr)
				}
				for i, h := range hits {
					if n := h.Load(); n < 5 {
						t.Errorf("origin %d got %d of 60 requests without a key, want a share", i, n)
					}
				}
			})
		}
	}
}
