package shm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain turns the test binary into a writer process when GALE_SHM_WRITER
// is set (see runWriter).
func TestMain(m *testing.M) {
	if spec := os.Getenv("GALE_SHM_WRITER"); spec != "" {
		if err := runWriter(spec); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const writerRounds = 20000

// runWriter is the body of a writer process: spec is "path,slot,worker". It
// takes the slot, publishes writerRounds increasing values (as a worker's
// stats goroutine does), says "ready" on stdout, keeps the slot until its
// stdin closes, then releases it.
func runWriter(spec string) error {
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		return fmt.Errorf("bad spec %q", spec)
	}
	slot, _ := strconv.Atoi(parts[1])
	worker, _ := strconv.Atoi(parts[2])
	seg, err := Open(parts[0])
	if err != nil {
		return err
	}
	defer seg.Close()
	sl := seg.Slot(slot)
	sl.SetOwner(os.Getpid(), worker)
	var local Counters
	pub := NewPublisher(sl, func() Counters { return local })
	for i := 1; i <= writerRounds; i++ {
		local = Counters{Accepted: uint64(i / 2), Active: 5, Requests: uint64(i), BytesIn: uint64(100 * i), BytesOut: uint64(200 * i), Errors: uint64(i / 1000)}
		pub.Publish(time.Now())
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	sl.Release()
	return nil
}

func TestTwoProcessesWriteOneReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stats")
	seg, err := Create(path, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	seg.SetHolder(os.Getpid())
	type writer struct {
		cmd   *exec.Cmd
		stdin io.Closer
		ready chan error
		slot  int
	}
	var ws []*writer
	for w := 0; w < 2; w++ {
		slot, err := seg.Reserve(os.Getpid(), w)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("GALE_SHM_WRITER=%s,%d,%d", path, slot, w))
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wr := &writer{cmd: cmd, stdin: stdin, ready: make(chan error, 1), slot: slot}
		go func() {
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err == nil && line != "ready\n" {
				err = fmt.Errorf("writer said %q", line)
			}
			wr.ready <- err
		}()
		ws = append(ws, wr)
		defer func() { stdin.Close(); cmd.Wait() }()
	}

	// Read while both write: every slot's cumulative counters only grow.
	last := map[int]Counters{}
	readyN := 0
	deadline := time.After(30 * time.Second)
	for readyN < len(ws) {
		for _, r := range seg.Rows() {
			prev := last[r.Slot]
			if r.Requests < prev.Requests || r.BytesIn < prev.BytesIn || r.Accepted < prev.Accepted {
				t.Fatalf("slot %d went backwards: %+v after %+v", r.Slot, r.Counters, prev)
			}
			last[r.Slot] = r.Counters
		}
		select {
		case err := <-ws[readyN].ready:
			if err != nil {
				t.Fatal(err)
			}
			readyN++
		case <-deadline:
			t.Fatal("writers did not finish")
		default:
		}
	}

	rows := seg.Rows()
	if len(rows) != 2 {
		t.Fatalf("Rows = %+v, want 2 rows", rows)
	}
	for i, r := range rows {
		if r.Slot != ws[i].slot || r.PID != ws[i].cmd.Process.Pid || r.Worker != i || !r.Live {
			t.Errorf("row %d = %+v, want slot %d pid %d worker %d live", i, r, ws[i].slot, ws[i].cmd.Process.Pid, i)
		}
		if r.Updated.IsZero() {
			t.Errorf("row %d has no update time", i)
		}
	}
	want := Counters{Accepted: writerRounds, Active: 10, Requests: 2 * writerRounds, BytesIn: 200 * writerRounds,
		BytesOut: 400 * writerRounds, Errors: 2 * (writerRounds / 1000)}
	if got := Sum(rows); got != want {
		t.Fatalf("Sum = %+v, want %+v", got, want)
	}

	// After the writers release their slots the history still counts; the
	// connections they held do not.
	for _, w := range ws {
		w.stdin.Close()
		if err := w.cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	want.Active = 0
	if got := Sum(seg.Rows()); got != want {
		t.Fatalf("Sum after exit = %+v, want %+v", got, want)
	}
	for _, r := range seg.Rows() {
		if r.PID != 0 || r.Live {
			t.Errorf("released row %+v still has an owner", r)
		}
	}
}

func TestConcurrentWritersAndReader(t *testing.T) {
	seg, err := Create(filepath.Join(t.TempDir(), "stats"), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		slot, err := seg.Reserve(os.Getpid(), w)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sl := seg.Slot(slot)
			for i := 1; i <= 1000; i++ {
				sl.Store(Counters{Requests: uint64(i), Active: 1}, time.Now())
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	var max uint64
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		s := Sum(seg.Rows())
		if s.Requests < max {
			t.Fatalf("total went backwards: %d after %d", s.Requests, max)
		}
		max = s.Requests
	}
	if got := Sum(seg.Rows()); got.Requests != 2000 || got.Active != 2 {
		t.Fatalf("Sum = %+v, want 2000 requests and 2 active", got)
	}
}

func TestReserveAndOwner(t *testing.T) {
	seg, err := Create(filepath.Join(t.TempDir(), "stats"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	if seg.Len() != 2 {
		t.Fatalf("Len = %d", seg.Len())
	}
	a, err := seg.Reserve(10, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := seg.Reserve(10, 7)
	if err != nil || a == b {
		t.Fatalf("Reserve = %d, %v after %d", b, err, a)
	}
	if _, err := seg.Reserve(10, 8); !errors.Is(err, ErrFull) {
		t.Fatalf("Reserve on a full segment: %v, want ErrFull", err)
	}
	if pid, w, ok := seg.Slot(b).Owner(); !ok || pid != 10 || w != 7 {
		t.Fatalf("Owner = %d, %d, %v", pid, w, ok)
	}
	seg.Slot(a).Store(Counters{Active: 3, Requests: 9}, time.Now())
	seg.Slot(a).SetOwner(11, 0)
	if c := seg.Slot(a).Load(); c.Active != 0 || c.Requests != 9 {
		t.Fatalf("after SetOwner: %+v, want the gauge reset and the history kept", c)
	}
	seg.Slot(a).Release()
	if _, _, ok := seg.Slot(a).Owner(); ok {
		t.Fatal("released slot still owned")
	}
	if got, err := seg.Reserve(12, 1); err != nil || got != a {
		t.Fatalf("Reserve after Release = %d, %v; want %d", got, err, a)
	}
	defer func() {
		if recover() == nil {
			t.Error("Slot out of range did not panic")
		}
	}()
	seg.Slot(2)
}

func TestPublisherContinuesHistory(t *testing.T) {
	seg, err := Create(filepath.Join(t.TempDir(), "stats"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	sl := seg.Slot(0)
	sl.Store(Counters{Accepted: 5, Active: 4, Requests: 50, BytesIn: 500, BytesOut: 600, Errors: 1}, time.Now())
	own := Counters{Accepted: 1, Active: 1, Requests: 2}
	p := NewPublisher(sl, func() Counters { return own })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.Run(ctx, time.Millisecond)
		close(done)
	}()
	cancel()
	<-done
	want := Counters{Accepted: 6, Active: 1, Requests: 52, BytesIn: 500, BytesOut: 600, Errors: 1}
	if got := sl.Load(); got != want {
		t.Fatalf("slot = %+v, want %+v", got, want)
	}
}

func TestDeadOwnerHasNoActive(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid // reaped: no process has this pid now (barring reuse)
	seg, err := Create(filepath.Join(t.TempDir(), "stats"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	seg.Slot(0).SetOwner(dead, 0)
	seg.Slot(0).Store(Counters{Active: 7, Requests: 3}, time.Now())
	rows := seg.Rows()
	if len(rows) != 1 || rows[0].Live || rows[0].Active != 0 || rows[0].Requests != 3 || rows[0].PID != dead {
		t.Fatalf("Rows = %+v, want one dead row with history and no active connections", rows)
	}
}

func TestReplaceKeepsOldMappings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stats")
	old, err := Create(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	old.Slot(0).Store(Counters{Requests: 1}, time.Now())
	reader, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if reader.Len() != 2 || Sum(reader.Rows()).Requests != 1 {
		t.Fatalf("reader sees %d slots, %+v", reader.Len(), Sum(reader.Rows()))
	}
	fresh, err := Create(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	old.Slot(0).Store(Counters{Requests: 2}, time.Now()) // the old mapping is still valid
	if got := Sum(reader.Rows()).Requests; got != 2 {
		t.Fatalf("old reader sees %d requests, want 2", got)
	}
	again, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Len() != 3 || len(again.Rows()) != 0 {
		t.Fatalf("reopened segment has %d slots and rows %+v, want the fresh one", again.Len(), again.Rows())
	}
	if err := old.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("removing the replaced segment deleted the new file: %v", err)
	}
	if err := fresh.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Remove left the file: %v", err)
	}
	if err := fresh.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestOpenRejectsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":   "",
		"short":   "galestat",
		"text":    strings.Repeat("x", headerSize+SlotSize),
		"badsize": strings.Repeat("\x00", headerSize+SlotSize+1),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(p); !errors.Is(err, ErrFormat) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(%s) = %v, want ErrFormat", name, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("Open of a missing file: %v", err)
	}
	if Dir() == "" {
		t.Error("Dir is empty")
	}
}
