package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"github.com/gale-server/gale/internal/daemon/shm"
	"github.com/gale-server/gale/metrics"
)

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

// frame is what one refresh of gale status --watch read.
type frame struct {
	at     time.Time
	rows   []shm.Row
	status metrics.Status
}

// readFrame reads the segment and the metrics tables beside it.
func readFrame(seg *shm.Segment, now time.Time) frame {
	t := metrics.Totals{}
	metrics.ReadOthers(seg.Path(), "", t)
	return frame{at: now, rows: seg.Rows(), status: metrics.NewStatus(t)}
}

// watch prints a frame every interval, count times (0: until ctx ends):
// rates are taken between consecutive frames. On a terminal each frame
// replaces the last; otherwise frames follow each other.
func watch(ctx context.Context, w io.Writer, seg *shm.Segment, interval time.Duration, count int, clear bool) {
	prev := readFrame(seg, time.Now())
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; count == 0 || n < count; n++ {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			cur := readFrame(seg, now)
			if clear {
				fmt.Fprint(w, clearScreen)
			} else if n > 0 {
				fmt.Fprintln(w)
			}
			writeFrame(w, seg, prev, cur)
			prev = cur
		}
	}
}

// rate returns the per-second change from a to b over d.
func rate(a, b uint64, d time.Duration) float64 {
	if b < a || d <= 0 {
		return 0
	}
	return float64(b-a) / d.Seconds()
}

// writeFrame prints one frame: totals with rates, connections by state,
// the routes and the worker processes.
func writeFrame(w io.Writer, seg *shm.Segment, prev, cur frame) {
	d := cur.at.Sub(prev.at)
	ps, cs := prev.status, cur.status
	tot, ptot := shm.Sum(cur.rows), shm.Sum(prev.rows)
	fmt.Fprintf(w, "gale %s   supervisor pid %d   %s\n", seg.Path(), seg.Holder(), cur.at.Format("15:04:05"))
	fmt.Fprintf(w, "requests %d (%.0f/s)   accepted %d (%.0f/s)   in %s/s   out %s/s   bad %d\n",
		tot.Requests, rate(ptot.Requests, tot.Requests, d), tot.Accepted, rate(ptot.Accepted, tot.Accepted, d),
		human(rate(ptot.BytesIn, tot.BytesIn, d)), human(rate(ptot.BytesOut, tot.BytesOut, d)), tot.Errors)
	c := cs.Connections
	fmt.Fprintf(w, "connections %d   reading %d   writing %d   waiting %d   accept pauses %d   log drops %d\n\n",
		tot.Active, c["reading"], c["writing"], c["waiting"], cs.Pauses, cs.LogDropped)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\troute\trequests\treq/s\t2xx\t3xx\t4xx\t5xx\tmean ms\t")
	before := map[[2]string]uint64{}
	for _, r := range ps.Routes {
		before[[2]string{r.Server, r.Route}] = r.Requests
	}
	for _, r := range cs.Routes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%d\t%d\t%d\t%d\t%.3f\t\n", r.Server, r.Route, r.Requests,
			rate(before[[2]string{r.Server, r.Route}], r.Requests, d),
			r.Classes["2xx"], r.Classes["3xx"], r.Classes["4xx"], r.Classes["5xx"], r.MeanMs)
	}
	if len(cs.Routes) == 0 {
		fmt.Fprintln(tw, "(no route metrics: the admin listener is off)\t\t\t\t\t\t\t\t\t")
	}
	tw.Flush()
	fmt.Fprintln(w)
	writeRows(w, cur.rows, cur.at)
}

// human renders a byte rate.
func human(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}

// watchContext ends on SIGINT, so that Ctrl-C stops --watch cleanly.
func watchContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt)
}
