package proxy

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/lb"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
)

// healthProxy starts gale proxying to origins with a health group built from ho
// (servers filled in) and returns the proxy's address and the group.
func healthProxy(t *testing.T, origins []*testkit.Origin, ho health.Options, mod func(*UpstreamOptions)) (string, *health.Group) {
	t.Helper()
	var addrs []netip.AddrPort
	for _, o := range origins {
		addrs = append(addrs, o.Addr)
	}
	ho.Name = "test"
	ho.Servers = addrs
	if ho.Logger == nil {
		ho.Logger = slog.New(slog.DiscardHandler)
	}
	g, err := health.New(ho)
	if err != nil {
		t.Fatal(err)
	}
	u := testUpstream(t, addrs, func(o *UpstreamOptions) {
		o.Health = g
		if mod != nil {
			mod(o)
		}
	})
	s := servertest.Start(t, New(u, Route{}), func(o *server.Options) { o.Workers = 2 })
	g.Start(s.Engine().Loops()[0])
	t.Cleanup(g.Stop)
	return "http://" + s.Addr(), g
}

func hget(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// hgetRetryAfter GETs url and returns the status and the Retry-After field.
func hgetRetryAfter(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// An origin answering 500 to everything is ejected after consecutive_5xx
// requests and gets no more while ejected.
func TestHealthAlways500Ejected(t *testing.T) {
	o := []*testkit.Origin{testkit.NewOrigin(t), testkit.NewOrigin(t), testkit.NewOrigin(t)}
	o[1].Status.Store(500)
	url, g := healthProxy(t, o, health.Options{Outlier: &health.OutlierOptions{Consecutive5xx: 3, BaseEjectionTime: time.Minute,
		MaxEjectionTime: time.Minute, MaxEjectionPercent: 50}}, nil)
	c := client()
	fives := 0
	for range 90 {
		if st, _ := hget(t, c, url+"/"); st == 500 {
			fives++
		}
	}
	if n := o[1].Hits.Load(); n != 3 || fives != 3 {
		t.Fatalf("the 500 origin got %d requests (%d 500s reached clients), want exactly consecutive_5xx = 3", n, fives)
	}
	if st := g.Status().Servers[1]; !st.Ejected || st.Healthy {
		t.Fatalf("status %+v, want ejected", st)
	}
}

// A retry never goes to an ejected server: with one server ejected and one
// refusing connections, every retry lands on the healthy one.
func TestHealthRetryAvoidsEjected(t *testing.T) {
	o := []*testkit.Origin{testkit.NewOrigin(t), testkit.NewOrigin(t), testkit.NewOrigin(t)}
	o[0].Status.Store(500)
	url, g := healthProxy(t, o, health.Options{Outlier: &health.OutlierOptions{Consecutive5xx: 2, BaseEjectionTime: time.Minute,
		MaxEjectionTime: time.Minute, MaxEjectionPercent: 50}}, func(u *UpstreamOptions) {
		u.Retries = Retries{Tries: 3, ConnectFailure: true, ResetBeforeReply: true, Budget: 1}
	})
	c := client()
	for i := 0; !g.Status().Servers[0].Ejected; i++ {
		if i > 20 {
			t.Fatal("server 0 never ejected")
		}
		hget(t, c, url+"/")
	}
	o[0].Status.Store(200) // healthy again, but still ejected
	o[2].Stop()            // connections refused: every attempt on it is retried
	before0, before1 := o[0].Hits.Load(), o[1].Hits.Load()
	for range 60 {
		if st, body := hget(t, c, url+"/"); st != 200 || !strings.Contains(body, o[1].Addr.String()) {
			t.Fatalf("status %d body %q, want 200 from server 1", st, body)
		}
	}
	if n := o[0].Hits.Load() - before0; n != 0 {
		t.Fatalf("the ejected server got %d requests", n)
	}
	if n := o[1].Hits.Load() - before1; n != 60 {
		t.Fatalf("server 1 got %d of 60", n)
	}
}

// With every server's breaker open (or every server ejected or down), the
// client gets 503 with Retry-After at once.
func TestHealthBreakerOpensAndRecovers(t *testing.T) {
	o := []*testkit.Origin{testkit.NewOrigin(t)}
	o[0].Status.Store(500)
	var logs testkit.SyncBuffer
	url, g := healthProxy(t, o, health.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Breaker: &health.BreakerOptions{Window: 10 * time.Second, MinRequests: 5, FailureRatio: 1, OpenFor: 300 * time.Millisecond, HalfOpenProbes: 2}}, nil)
	c := client()
	for range 5 {
		if st, _ := hget(t, c, url+"/"); st != 500 {
			t.Fatalf("status %d before the breaker opened", st)
		}
	}
	if st, ra := hgetRetryAfter(t, c, url+"/"); st != 503 || ra != "1" {
		t.Fatalf("open breaker: status %d Retry-After %q, want 503 and 1", st, ra)
	}
	if n := o[0].Hits.Load(); n != 5 {
		t.Fatalf("the origin got %d requests with its breaker open", n)
	}
	o[0].Status.Store(200)
	waitFor(t, "half-open", func() bool { return g.Status().Servers[0].Breaker == "half-open" })
	for range 2 {
		if st, _ := hget(t, c, url+"/"); st != 200 {
			t.Fatalf("probe status %d", st)
		}
	}
	if b := g.Status().Servers[0].Breaker; b != "closed" {
		t.Fatalf("breaker %s after 2 good probes", b)
	}
	for _, want := range []string{"from=closed to=open requests=5 failures=5", "from=open to=half-open", "from=half-open to=closed requests=2"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// A burst above max_connections gets 503 at once for the excess; the admitted
// requests finish and nothing hangs.
func TestHealthMaxConnectionsBurst(t *testing.T) {
	o := []*testkit.Origin{testkit.NewOrigin(t)}
	o[0].Delay.Store(int64(500 * time.Millisecond))
	url, g := healthProxy(t, o, health.Options{Limits: health.Limits{MaxConnections: 2}}, nil)
	const burst = 10
	type res struct {
		status int
		took   time.Duration
		retry  string
	}
	out := make(chan res, burst)
	for range burst {
		go func() {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			start := time.Now()
			resp, err := c.Get(url + "/")
			if err != nil {
				out <- res{status: -1}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			out <- res{resp.StatusCode, time.Since(start), resp.Header.Get("Retry-After")}
		}()
	}
	var ok, shed int
	for range burst {
		r := <-out
		switch {
		case r.status == 200:
			ok++
		case r.status == 503 && r.retry == "1" && r.took < 400*time.Millisecond:
			shed++
		default:
			t.Errorf("result %+v: want 200, or 503 with Retry-After before the origin's 500ms", r)
		}
	}
	if ok < 2 || ok+shed != burst {
		t.Fatalf("%d answered, %d shed, want 2 answered and the rest shed", ok, shed)
	}
	if ok > 2+1 { // two loops may each pass the limit by one at the same instant
		t.Fatalf("%d requests passed max_connections 2", ok)
	}
	if n := g.Status().Servers[0].Overflows; n < uint64(shed) {
		t.Fatalf("overflows %d, want at least %d", n, shed)
	}
}

// Killing one of three origins under concurrent load loses no request (retries
// and the active checks), and once it listens again it gets traffic within
// about rise × interval.
func TestHealthKillOriginUnderLoad(t *testing.T) {
	o := []*testkit.Origin{testkit.NewOrigin(t), testkit.NewOrigin(t), testkit.NewOrigin(t)}
	interval := 100 * time.Millisecond
	url, g := healthProxy(t, o, health.Options{Check: &health.CheckOptions{Type: health.CheckHTTP, Interval: interval, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2}},
		func(u *UpstreamOptions) {
			u.Retries = Retries{Tries: 3, ConnectFailure: true, ResetBeforeReply: true, Budget: 1}
		})
	ld := testkit.StartLoad(url+"/", 4)
	waitFor(t, "some traffic", func() bool { return ld.Done.Load() > 50 })
	o[1].Stop()
	waitFor(t, "server 1 down", func() bool { return g.Status().Servers[1].Down })
	time.Sleep(200 * time.Millisecond)
	before := o[1].Hits.Load()
	o[1].Restart()
	restarted := time.Now()
	waitFor(t, "traffic back on server 1", func() bool { return o[1].Hits.Load() > before+5 })
	back := time.Since(restarted)
	ld.Stop()
	if n := ld.Failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed", n, ld.Done.Load())
	}
	// rise × interval, plus one interval for the check in progress and slack for
	// a loaded machine.
	if limit := 2*interval + interval + time.Second; back > limit {
		t.Fatalf("traffic returned %v after the restart, want within %v", back, limit)
	}
	t.Logf("%d requests, traffic back %v after restart", ld.Done.Load(), back)
}

// Drain through the group during load: in-flight requests finish, the drained
// server gets no new ones, nothing fails; enable brings it back.
func TestHealthDrainUnderLoad(t *testing.T) {
	o := []*testkit.Origin{testkit.NewOrigin(t), testkit.NewOrigin(t)}
	o[0].Delay.Store(int64(20 * time.Millisecond))
	o[1].Delay.Store(int64(20 * time.Millisecond))
	url, g := healthProxy(t, o, health.Options{Limits: health.Limits{MaxInFlight: 1000}}, nil)
	ld := testkit.StartLoad(url+"/", 6)
	waitFor(t, "traffic on both", func() bool { return o[0].Hits.Load() > 10 && o[1].Hits.Load() > 10 })
	g.Drain(0)
	waitFor(t, "drained server idle", func() bool { return g.Status().Servers[0].InFlight == 0 })
	h0 := o[0].Hits.Load()
	d := ld.Done.Load()
	waitFor(t, "more traffic", func() bool { return ld.Done.Load() > d+50 })
	if n := o[0].Hits.Load() - h0; n != 0 {
		t.Fatalf("the drained server got %d new requests", n)
	}
	g.Enable(0)
	waitFor(t, "traffic back after enable", func() bool { return o[0].Hits.Load() > h0+10 })
	ld.Stop()
	if n := ld.Failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed", n, ld.Done.Load())
	}
}

// With one of three servers drained (or down, ejected, open), round_robin
// shares the requests between the other two in turn. The unavailable server
// was passed to the balancer as one already tried, which round_robin takes
// for a retry and does not move its cursor for: every request went to the
// same server.
func TestHealthRoundRobinAroundUnavailable(t *testing.T) {
	for _, m := range []string{lb.RoundRobin, lb.WeightedRoundRobin} {
		t.Run(m, func(t *testing.T) {
			o := []*testkit.Origin{testkit.NewOrigin(t), testkit.NewOrigin(t), testkit.NewOrigin(t)}
			url, g := healthProxy(t, o, health.Options{Limits: health.Limits{MaxInFlight: 1000}}, func(u *UpstreamOptions) { u.Balance = m })
			g.Drain(2)
			c := client()
			for range 60 {
				if st, body := hget(t, c, url+"/"); st != 200 {
					t.Fatalf("status %d: %s", st, body)
				}
			}
			a, b := o[0].Hits.Load(), o[1].Hits.Load()
			if o[2].Hits.Load() != 0 || a < 25 || b < 25 {
				t.Errorf("60 requests went %d, %d and %d (the third drained), want about 30, 30 and 0", a, b, o[2].Hits.Load())
			}
		})
	}
}

// A server returning with slow_start while no other server is available takes
// every request: its gradual return leaves it out only on picks another server
// can take. It was left out on most picks at first, and the client got 503
// though the server was up.
func TestHealthSlowStartOnlyServerServes(t *testing.T) {
	o := []*testkit.Origin{testkit.NewOrigin(t), testkit.NewOrigin(t)}
	url, g := healthProxy(t, o, health.Options{
		Check:   &health.CheckOptions{Type: health.CheckTCP, Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond, Rise: 1, Fall: 1},
		Outlier: &health.OutlierOptions{BaseEjectionTime: time.Second, MaxEjectionTime: time.Second, SlowStart: time.Minute},
	}, nil)
	o[1].Stop()
	o[0].Stop()
	waitFor(t, "both down", func() bool { return g.Unavailable()&3 == 3 })
	o[0].Restart()
	waitFor(t, "the first back", func() bool { return g.Status().Servers[0].Healthy })
	c := client()
	for i := range 50 {
		if st, body := hget(t, c, url+"/"); st != 200 {
			t.Fatalf("request %d with the only available server ramping up: status %d: %s", i, st, body)
		}
	}
}

// A weight set through the health group (the admin API) reaches the balancer
// of every method that accepts one, with or without backup servers: 9:1
// sends about nine in ten requests to the first server. The hash and maglev
// balancers, and every balancer with backups, count in-flight requests (for
// bounded loads and for the backup's own balancer), and the proxy kept the
// configured weights of every balancer that counts, while SetWeight took the
// new weight and the API showed it.
func TestHealthSetWeightReachesBalancer(t *testing.T) {
	for _, tc := range []struct {
		method string
		backup bool
	}{{lb.WeightedRoundRobin, false}, {lb.WeightedRoundRobin, true}, {lb.Hash, false}, {lb.Maglev, false}, {lb.Random, true}} {
		t.Run(fmt.Sprintf("%s/backup=%v", tc.method, tc.backup), func(t *testing.T) {
			o := []*testkit.Origin{testkit.NewOrigin(t), testkit.NewOrigin(t)}
			if tc.backup {
				o = append(o, testkit.NewOrigin(t))
			}
			url, g := healthProxy(t, o, health.Options{Limits: health.Limits{MaxInFlight: 1000}}, func(u *UpstreamOptions) {
				u.Balance = tc.method
				u.HashKey, _ = lb.ParseKey("header:X-K")
				if tc.backup {
					u.Servers[2].Backup = true
				}
			})
			if err := g.SetWeight(0, 9); err != nil {
				t.Fatal(err)
			}
			c := client()
			const total = 400
			for k := range total {
				req, _ := http.NewRequest("GET", url+"/", nil)
				req.Header.Set("X-K", fmt.Sprint("key-", k))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if share := float64(o[0].Hits.Load()) / total; share < 0.8 {
				t.Errorf("the server of weight 9 against 1 got %.0f%% of %d requests, want about 90%%", 100*share, total)
			}
		})
	}
}

// Requests within max_connections are served whatever loop they land on: the
// connections pooled idle on one loop do not count against the limit when
// another loop, without one, needs a connection (nginx's max_conns counts the
// active ones too). They counted, and a server that sat idle answered 503 to
// the requests of the loop that had no pooled connection.
func TestHealthMaxConnectionsIdleOnOtherLoop(t *testing.T) {
	o := []*testkit.Origin{testkit.NewOrigin(t)}
	url, _ := healthProxy(t, o, health.Options{Limits: health.Limits{MaxConnections: 2}}, nil)
	get := func(path string) int {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
		resp, err := c.Get(url + path)
		if err != nil {
			t.Error(err)
			return -1
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for round := range 10 {
		// Two at once (each new client connection lands on either loop), then
		// one at a time: never more than two requests in flight.
		o[0].Delay.Store(int64(30 * time.Millisecond))
		st := make(chan int, 2)
		for range 2 {
			go func() { st <- get("/") }()
		}
		for range 2 {
			if s := <-st; s != 200 {
				t.Fatalf("round %d: one of two concurrent requests got %d", round, s)
			}
		}
		o[0].Delay.Store(0)
		for i := range 10 {
			if s := get("/"); s != 200 {
				t.Fatalf("round %d: sequential request %d got %d with no other request in flight", round, i, s)
			}
		}
	}
}

// A retry that finds no server left answers with the failure of the attempt it
// follows, as nginx does, and logs that attempt's server and cause: the failed
// connect here opens the only server's breaker, and the client got 503 with
// Retry-After, logged as "every server is down" against a server that was
// refusing connections. A request that finds no server at all gets the 503,
// logged with no server (it named server 0, which nobody had picked).
func TestHealthRetryWithoutServerAnswersTheFailure(t *testing.T) {
	o := []*testkit.Origin{testkit.NewOrigin(t), testkit.NewOrigin(t)}
	o[1].Stop() // connections refused
	var logs testkit.SyncBuffer
	url, g := healthProxy(t, o, health.Options{Logger: slog.New(slog.DiscardHandler),
		Breaker: &health.BreakerOptions{Window: 10 * time.Second, MinRequests: 1, FailureRatio: 1, OpenFor: time.Minute, HalfOpenProbes: 1}},
		func(u *UpstreamOptions) {
			u.Balance = lb.First
			u.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			u.Retries = Retries{Tries: 2, ConnectFailure: true, ResetBeforeReply: true, Budget: 1}
		})
	if !g.Drain(0) {
		t.Fatal("server 0 not drained")
	}
	c := client()
	if st, ra := hgetRetryAfter(t, c, url+"/"); st != 502 || ra != "" {
		t.Fatalf("status %d Retry-After %q after a refused connect that opened the only breaker, want 502", st, ra)
	}
	if b := g.Status().Servers[1].Breaker; b != "open" {
		t.Fatalf("breaker %s, want open", b)
	}
	want := fmt.Sprintf("server=%s status=502 cause=", o[1].Addr)
	if l := logs.String(); !strings.Contains(l, want) || !strings.Contains(l, "connection refused") {
		t.Fatalf("log lacks %q with the refused connect:\n%s", want, l)
	}
	if st, _ := hget(t, c, url+"/"); st != 503 {
		t.Fatalf("status %d with no server available, want 503", st)
	}
	if l := logs.String(); !strings.Contains(l, "server=none status=503") {
		t.Fatalf("the 503 log line names a server:\n%s", l)
	}
}

// The keep-alive race's fresh attempt on the same server is admitted by the
// health group like any attempt: its refused connect is a failure for outlier
// detection (the server is ejected here) and the request goes on to the next
// server. It was never admitted, so its outcome reached nobody and it passed
// every limit.
func TestHealthKeepAliveRaceRetryAdmitted(t *testing.T) {
	a := racingOrigin(t)
	b := testkit.NewOrigin(t)
	g, err := health.New(health.Options{Name: "race", Servers: []netip.AddrPort{a.addr(), b.Addr}, Logger: slog.New(slog.DiscardHandler),
		Outlier: &health.OutlierOptions{ConsecutiveGatewayFailure: 1, BaseEjectionTime: time.Minute, MaxEjectionTime: time.Minute, MaxEjectionPercent: 50}})
	if err != nil {
		t.Fatal(err)
	}
	u := testUpstream(t, []netip.AddrPort{a.addr(), b.Addr}, func(o *UpstreamOptions) {
		o.Health = g
		o.Balance = lb.First
		o.Retries = Retries{Tries: 2, ConnectFailure: true, ResetBeforeReply: true, Budget: 1}
	})
	s := servertest.Start(t, New(u, Route{}), func(o *server.Options) { o.Workers = 2 })
	g.Start(s.Engine().Loops()[0])
	t.Cleanup(g.Stop)
	c := client()
	for i, want := range []string{"a", b.Addr.String()} {
		if st, body := hget(t, c, "http://"+s.Addr()+"/"); st != 200 || !strings.Contains(body, want) {
			t.Fatalf("request %d: status %d body %q, want 200 from %s", i, st, body, want)
		}
	}
	st := g.Status().Servers[0]
	if !st.Ejected || st.Failures != 1 || st.InFlight != 0 {
		t.Fatalf("server 0 after its refused fresh connect: %+v, want ejected with 1 failure and none in flight", st)
	}
}

// A WebSocket upgrade the origin accepts (101) is a success for the health
// group: it closes a half-open breaker. It ended as cancelled, so a server
// behind a breaker that serves WebSockets stayed half-open for good, however
// many upgrades it answered.
func TestHealthUpgradeIsSuccess(t *testing.T) {
	o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		head, err := readRequestHead(br, log)
		if err != nil {
			return
		}
		if !strings.Contains(strings.ToLower(head), "upgrade: websocket") {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(io.Discard, c)
	})
	g, err := health.New(health.Options{Name: "ws", Servers: []netip.AddrPort{o.addr()}, Logger: slog.New(slog.DiscardHandler),
		Breaker: &health.BreakerOptions{Window: 10 * time.Second, MinRequests: 1, FailureRatio: 1, OpenFor: 50 * time.Millisecond, HalfOpenProbes: 1}})
	if err != nil {
		t.Fatal(err)
	}
	u := testUpstream(t, []netip.AddrPort{o.addr()}, func(o *UpstreamOptions) { o.Health = g })
	s := servertest.Start(t, New(u, Route{}), func(o *server.Options) { o.Workers = 2 })
	g.Start(s.Engine().Loops()[0])
	t.Cleanup(g.Stop)
	if st, _ := hget(t, client(), "http://"+s.Addr()+"/"); st != 502 {
		t.Fatalf("status %d, want the origin's 502", st)
	}
	waitFor(t, "half-open", func() bool { return g.Status().Servers[0].Breaker == "half-open" })
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 101") {
		t.Fatalf("upgrade answered %q, %v", line, err)
	}
	waitFor(t, "the breaker to close after the upgrade", func() bool { return g.Status().Servers[0].Breaker == "closed" })
}
