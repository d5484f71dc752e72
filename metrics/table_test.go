//go:build unix

package metrics

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gale-server/gale/server"
	"github.com/prometheus/client_golang/prometheus"
)

func TestRouteObserveBuckets(t *testing.T) {
	reg := NewRegistry(2, []time.Duration{time.Millisecond, 10 * time.Millisecond})
	rt := reg.Route("s", "r")
	if reg.Route("s", "r") != rt {
		t.Fatal("the same name gave another route")
	}
	rt.Observe(0, 200, 500*time.Microsecond)
	rt.Observe(1, 404, 5*time.Millisecond)
	rt.Observe(1, 503, time.Second)
	rt.Observe(0, 200, time.Millisecond) // on the bound: le is inclusive
	tot := rt.Totals()
	if tot.Codes[2] != 2 || tot.Codes[4] != 1 || tot.Codes[5] != 1 || tot.Requests() != 4 {
		t.Fatalf("codes %v", tot.Codes)
	}
	if want := []uint64{2, 1, 1}; tot.Buckets[0] != want[0] || tot.Buckets[1] != want[1] || tot.Buckets[2] != want[2] {
		t.Fatalf("buckets %v, want %v", tot.Buckets, want)
	}
	if tot.SumNs != uint64(500*time.Microsecond+5*time.Millisecond+time.Second+time.Millisecond) {
		t.Fatalf("sum %d", tot.SumNs)
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	rt := NewRegistry(1, []time.Duration{time.Millisecond}).Route("s", "r")
	if n := testing.AllocsPerRun(100, func() { rt.Observe(0, 200, time.Microsecond) }); n != 0 {
		t.Fatalf("Observe allocates %v times", n)
	}
}

func TestTablePublishReadAndHistory(t *testing.T) {
	stats := filepath.Join(t.TempDir(), "gale.stats")
	a := OpenTable(TablePath(stats, 0), os.Getpid())
	defer a.Close()
	if err := a.Publish([]Sample{{"c_total", 5}, {key(famConnections, "state", "waiting"), 3}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish([]Sample{{"c_total", 7}, {key(famConnections, "state", "waiting"), 2}}); err != nil {
		t.Fatal(err)
	}
	// A second table whose process is gone: its counters count, its gauges do not.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	b := OpenTable(TablePath(stats, 1), cmd.Process.Pid)
	if err := b.Publish([]Sample{{"c_total", 10}, {key(famConnections, "state", "waiting"), 9}}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	tot := Totals{}
	if live := ReadOthers(stats, "", tot); live != 1 {
		t.Fatalf("live = %d, want 1", live)
	}
	if tot["c_total"] != 17 || tot[key(famConnections, "state", "waiting")] != 2 {
		t.Fatalf("totals %v", tot)
	}
	// A new layout (a reload added a series) keeps the values readable.
	if err := a.Publish([]Sample{{"c_total", 8}, {"d_total", 1}}); err != nil {
		t.Fatal(err)
	}
	tot = Totals{}
	ReadOthers(stats, TablePath(stats, 1), tot)
	if tot["c_total"] != 8 || tot["d_total"] != 1 {
		t.Fatalf("after relayout %v", tot)
	}
	// A restarted worker continues from what its slot's table holds.
	c := OpenTable(TablePath(stats, 1), os.Getpid())
	defer c.Close()
	if err := c.Publish([]Sample{{"c_total", 1}}); err != nil {
		t.Fatal(err)
	}
	tot = Totals{}
	ReadOthers(stats, TablePath(stats, 0), tot)
	if tot["c_total"] != 11 {
		t.Fatalf("restarted table c_total = %d, want 10 of history + 1", tot["c_total"])
	}
	RemoveTables(stats)
	if files, _ := filepath.Glob(stats + ".m*"); len(files) != 0 {
		t.Fatalf("left %v", files)
	}
}

func TestReadTableRejectsOtherFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.m0")
	os.WriteFile(p, make([]byte, 100), 0o644)
	if _, err := readTable(p); err == nil {
		t.Fatal("a file of zeros was read as a table")
	}
}

// TestInstanceNeverGoesBack: with two worker processes, a counter summed by one
// process and then by the other never goes back, though each adds its own live
// numbers to the other's published table (which Prometheus would read as a counter
// reset). The answering process stores its live numbers first.
func TestInstanceNeverGoesBack(t *testing.T) {
	stats := filepath.Join(t.TempDir(), "gale.stats")
	accepted := [2]uint64{5, 5}
	procs := make([]*Process, 2)
	for i := range procs {
		procs[i] = NewProcess(NewRegistry(1, nil), func() server.Stats {
			var st server.Stats
			st.Accepted = accepted[i]
			return st
		}, stats, i, os.Getpid())
		defer procs[i].table.Close()
		if err := procs[i].Publish(); err != nil {
			t.Fatal(err)
		}
	}
	var last uint64
	for step, s := range []struct{ event, scrape int }{{0, 0}, {-1, 1}, {1, 1}, {-1, 0}, {0, 1}, {1, 0}, {-1, 1}} {
		if s.event >= 0 {
			accepted[s.event]++ // counted live, not published yet
		}
		tot, n := procs[s.scrape].Instance()
		got := tot[famAccepted]
		if n != 2 || got < last {
			t.Fatalf("step %d: process %d answers %d from %d processes after %d", step, s.scrape, got, n, last)
		}
		last = got
	}
	if want := accepted[0] + accepted[1]; last != want {
		t.Fatalf("last answer %d, want %d", last, want)
	}
}

// TestLabelValuesEscaped: a label value that is not a plain name (a pub/sub hub is
// named by its route's path by default, which may hold ',', '=' or '"') survives the
// series key and reaches /metrics; its series used to vanish.
func TestLabelValuesEscaped(t *testing.T) {
	odd := []string{"/h,x=1/", `we"ird}\hub`, "new\nline", `a\nb`, `trailing\`, "/plain/"}
	for _, v := range odd {
		k := key(famPubSubTopics, "hub", v)
		if ls := labels(k); len(ls) != 1 || ls[0] != [2]string{"hub", v} {
			t.Errorf("labels(key(%q)) = %q (key %s)", v, ls, k)
		}
		if ls := labels(key(famPubSubMsgs, "hub", v, "event", "published")); len(ls) != 2 || ls[0][1] != v || ls[1] != [2]string{"event", "published"} {
			t.Errorf("two labels, hub %q: %q", v, ls)
		}
	}
	p := NewProcess(NewRegistry(1, nil), func() server.Stats { return server.Stats{} }, "", 0, 0)
	p.SetExtras(func(add func(Sample)) {
		for i, v := range odd {
			PubSubSamples(v, uint64(i+1), 0, 0, 0, 0, 0, add)
		}
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(p))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != famPubSubTopics {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	for i, v := range odd {
		if got[v] != float64(i+1) {
			t.Errorf("gale_pubsub_topics{hub=%q} = %v, want %d (all: %v)", v, got[v], i+1, got)
		}
	}
}
