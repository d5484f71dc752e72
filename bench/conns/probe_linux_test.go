package main

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestProbe runs the legit client against a real HTTP server for 300 ms: both kinds answer
// on schedule, without errors, and against a port that refuses every request is an error.
func TestProbe(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })}
	go srv.Serve(ln)
	defer srv.Close()
	o := options{addr: ln.Addr().String(), timeout: 2 * time.Second, probeRate: 100, probeNewRate: 20, probeConns: 2, probePath: "/"}
	keep, fresh := probe(context.Background(), o, 300*time.Millisecond)
	// 100/s for 0.3 s is 30 requests due, 20/s is 6; a loaded machine may run a few late.
	if keep.n < 15 || keep.errors() != 0 || fresh.n < 3 || fresh.errors() != 0 {
		t.Fatalf("keep %s; new %s", &keep, &fresh)
	}
	if keep.quantile(0.99) <= 0 || keep.quantile(0.5) > keep.quantile(1) {
		t.Fatalf("quantiles out of order: %s", &keep)
	}

	srv.Close()
	keep, fresh = probe(context.Background(), o, 100*time.Millisecond)
	if keep.n != 0 || keep.errors() == 0 || fresh.n != 0 || fresh.errors() == 0 {
		t.Fatalf("against a closed port: keep %s; new %s", &keep, &fresh)
	}
}

// TestQuantile checks the nearest-rank quantile on a known list.
func TestQuantile(t *testing.T) {
	r := probeResult{}
	if r.quantile(0.99) != 0 {
		t.Fatal("quantile of nothing is not 0")
	}
	for i := 1; i <= 100; i++ {
		r.sorted = append(r.sorted, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 50, 0.99: 99, 1: 100, 0.001: 1} {
		if got := r.quantile(q); got != want {
			t.Errorf("quantile(%v) = %d, want %d", q, got, want)
		}
	}
}
