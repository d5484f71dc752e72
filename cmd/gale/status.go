package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/daemon/shm"
	"github.com/gale-server/gale/internal/daemon/supervisor"
)

// statusCmd runs gale status: it finds the stats segment of a running
// instance and prints its totals and one row per worker slot.
func (c *cli) statusCmd(args []string) int {
	fs := flag.NewFlagSet("gale status", flag.ContinueOnError)
	var file, path string
	var watchOn bool
	var interval time.Duration
	var count int
	fs.StringVar(&file, "c", "", "the configuration `FILE` the instance was started with")
	fs.StringVar(&file, "config", "", "the same as -c `FILE`")
	fs.StringVar(&path, "stats", "", "read the stats segment at `PATH` instead of finding it")
	fs.BoolVar(&watchOn, "watch", false, "refresh like top: totals with rates, connections by state, routes, workers")
	fs.DurationVar(&interval, "interval", time.Second, "with --watch, the time between refreshes")
	fs.IntVar(&count, "count", 0, "with --watch, stop after `N` refreshes (0: until interrupted)")
	if status, done := c.flags(fs, args, "gale status [-c FILE | --stats PATH] [--watch [--interval D] [--count N]]",
		"Print the counters of a running gale: the totals over every worker process and one\n"+
			"row per worker. The instance is found by its configuration file (-c), or by the\n"+
			"listen address of `gale` without a file when -c is not given; --stats names the\n"+
			"shared-memory segment directly (see docs/operations.md). --watch refreshes every\n"+
			"--interval with rates and per-route numbers (docs/observability.md)."); done {
		return status
	}
	if interval <= 0 || count < 0 {
		fmt.Fprintln(c.stderr, "gale status: --interval must be positive and --count not negative")
		return exitUsage
	}
	if file != "" && path != "" {
		fmt.Fprintln(c.stderr, "gale status: -c FILE and --stats PATH both name an instance; give one of them")
		return exitUsage
	}
	switch {
	case path != "":
	case file != "":
		path = supervisor.StatsPathForFile(file)
	default:
		path = supervisor.StatsPath(config.Default())
	}
	seg, err := shm.OpenReadOnly(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(c.stderr, "gale status: no running instance found (%s does not exist)\n", path)
		} else {
			fmt.Fprintf(c.stderr, "gale status: %v\n", err)
		}
		return exitError
	}
	defer seg.Close()
	if watchOn {
		ctx, stop := watchContext()
		defer stop()
		clear := false
		if f, ok := c.stdout.(*os.File); ok {
			clear = isTerminal(f)
		}
		watch(ctx, c.stdout, seg, interval, count, clear)
		return exitOK
	}
	writeStatus(c.stdout, seg, time.Now())
	if holder := seg.Holder(); holder > 0 && !shm.ProcessAlive(holder) {
		// A killed instance (SIGKILL, the OOM killer) cannot remove its
		// segment; its counts are still worth printing, but nothing runs.
		fmt.Fprintf(c.stderr, "gale status: supervisor pid %d is not running: the instance was killed and left %s behind (its next start replaces it)\n", holder, seg.Path())
		return exitError
	}
	return exitOK
}

// writeStatus prints a segment: a header line, the per-slot rows and the
// totals. Active connections of workers that are gone are not counted.
func writeStatus(w io.Writer, seg *shm.Segment, now time.Time) {
	holder := seg.Holder()
	fmt.Fprintf(w, "stats %s\nsupervisor pid %d, segment created %s ago\n\n", seg.Path(), holder,
		now.Sub(seg.Created()).Round(time.Second))
	writeRows(w, seg.Rows(), now)
}

// writeRows prints the per-slot rows and their totals.
func writeRows(w io.Writer, rows []shm.Row, now time.Time) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "worker\tpid\tstate\taccepted\tactive\trequests\tbytes in\tbytes out\terrors\tupdated\t")
	for _, r := range rows {
		worker, pid, state := "-", "-", "history"
		if r.PID != 0 {
			worker, pid, state = strconv.Itoa(r.Worker), strconv.Itoa(r.PID), "gone"
			if r.Live {
				state = "running"
			}
		}
		updated := "never"
		if !r.Updated.IsZero() {
			updated = now.Sub(r.Updated).Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", worker, pid, state,
			r.Accepted, r.Active, r.Requests, r.BytesIn, r.BytesOut, r.Errors, updated)
	}
	t := shm.Sum(rows)
	fmt.Fprintf(tw, "total\t\t\t%d\t%d\t%d\t%d\t%d\t%d\t\t\n", t.Accepted, t.Active, t.Requests, t.BytesIn, t.BytesOut, t.Errors)
	tw.Flush()
}
