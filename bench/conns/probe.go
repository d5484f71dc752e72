package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// probeAddr is the probe's source address, outside the 127.1.0.0 and up range of the held
// connections, so that the probe never competes with them for ports.
var probeAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}

// probeResult is what one kind of probe request measured.
type probeResult struct {
	n      int            // requests answered
	errs   map[string]int // requests failed, by kind
	sorted []time.Duration
}

// quantile returns the q-quantile (0 < q ≤ 1) of the latencies, 0 with none.
func (r *probeResult) quantile(q float64) time.Duration {
	if len(r.sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(r.sorted))+0.5) - 1
	return r.sorted[max(0, min(i, len(r.sorted)-1))]
}

func (r *probeResult) errors() int {
	n := 0
	for _, v := range r.errs {
		n += v
	}
	return n
}

// String is the report line: count, errors and p50/p99/p99.9/max in milliseconds.
func (r *probeResult) String() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }
	return fmt.Sprintf("%d requests, errors %s, p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms",
		r.n, formatErrors(r.errs), ms(r.quantile(0.5)), ms(r.quantile(0.99)), ms(r.quantile(0.999)), ms(r.quantile(1)))
}

// probe is a legit client measuring the service the server gives while it holds the idle
// connections: o.probeConns keep-alive connections together sending o.probeRate GETs a
// second, and (when o.probeNewRate > 0) o.probeNewRate GETs a second each on a new
// connection (connect, request, response, close). Requests are sent on a fixed schedule
// and each latency is measured from the moment its request was due, not from when it was
// sent, so a server that stalls is charged for every request it delayed (no coordinated
// omission).
func probe(ctx context.Context, o options, d time.Duration) (keep, fresh probeResult) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu sync.Mutex // owns keep and fresh
		wg sync.WaitGroup
	)
	keep.errs, fresh.errs = map[string]int{}, map[string]int{}
	record := func(r *probeResult, lat time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			r.errs[err.Error()]++
			return
		}
		r.n++
		r.sorted = append(r.sorted, lat)
	}
	start := time.Now()
	if o.probeRate > 0 {
		interval := time.Duration(float64(time.Second) * float64(o.probeConns) / o.probeRate)
		for w := range o.probeConns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Workers are offset by a fraction of the interval, so requests are spread evenly.
				due := start.Add(interval * time.Duration(w) / time.Duration(o.probeConns))
				var c net.Conn
				var br *bufio.Reader
				for ; waitUntil(ctx, due); due = due.Add(interval) {
					var err error
					if c == nil {
						if c, err = probeDial(o); err != nil {
							record(&keep, 0, err)
							c = nil
							continue
						}
						br = bufio.NewReader(c)
					}
					c.SetDeadline(time.Now().Add(o.timeout))
					if err = get(c, br, o.addr, o.probePath); err != nil {
						c.Close()
						c = nil
					}
					record(&keep, time.Since(due), err)
				}
				if c != nil {
					c.Close()
				}
			}()
		}
	}
	if o.probeNewRate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			interval := time.Duration(float64(time.Second) / o.probeNewRate)
			var inner sync.WaitGroup
			for due := start; waitUntil(ctx, due); due = due.Add(interval) {
				inner.Add(1)
				go func(due time.Time) { // a slow answer does not hold back the next request
					defer inner.Done()
					c, err := probeDial(o)
					if err == nil {
						c.SetDeadline(time.Now().Add(o.timeout))
						err = get(c, bufio.NewReader(c), o.addr, o.probePath)
						c.Close()
					}
					record(&fresh, time.Since(due), err)
				}(due)
			}
			inner.Wait()
		}()
	}
	wg.Wait()
	slices.Sort(keep.sorted)
	slices.Sort(fresh.sorted)
	return keep, fresh
}

// waitUntil sleeps until t and reports whether the probe is still running then.
func waitUntil(ctx context.Context, t time.Time) bool {
	if d := time.Until(t); d > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
		}
	}
	return ctx.Err() == nil
}

func probeDial(o options) (net.Conn, error) {
	d := net.Dialer{Timeout: o.timeout, LocalAddr: probeAddr, Control: bindNoPort}
	c, err := d.Dial("tcp4", o.addr)
	if err != nil {
		return nil, classify("connect", err)
	}
	return c, nil
}

// get sends one keep-alive GET on c and reads the whole answer, which must be a 200 that
// keeps the connection open and is followed by nothing.
func get(c net.Conn, br *bufio.Reader, host, path string) error {
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: gale-bench-conns\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return classify("request", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return classify("response", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return classify("body", err)
	case resp.StatusCode != http.StatusOK:
		return kindError(fmt.Sprintf("response:status-%d", resp.StatusCode))
	case resp.Close:
		return kindError("response:not-keep-alive")
	case br.Buffered() > 0:
		return kindError("response:extra-bytes")
	}
	return nil
}
