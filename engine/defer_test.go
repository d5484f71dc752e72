package engine

import (
	"context"
	"testing"
	"time"
)

// TestDeferRunsAtIterationEnd posts a task that defers a function and posts a second
// task: the deferred function, and one it defers in turn, run before the second task
// (which needs another iteration), in the order deferred, on the loop.
func TestDeferRunsAtIterationEnd(t *testing.T) {
	e, err := New(Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	defer e.Shutdown(context.Background())
	l := e.Loops()[0]
	got := make(chan []string, 1)
	var order []string // owned by the loop
	l.Post(func() {
		order = append(order, "task")
		l.Defer(func() {
			order = append(order, "deferred")
			l.Defer(func() { order = append(order, "nested") })
		})
		l.Post(func() {
			order = append(order, "next task")
			got <- order
		})
		order = append(order, "task end")
	})
	select {
	case o := <-got:
		want := []string{"task", "task end", "deferred", "nested", "next task"}
		if len(o) != len(want) {
			t.Fatalf("order %q, want %q", o, want)
		}
		for i := range want {
			if o[i] != want[i] {
				t.Fatalf("order %q, want %q", o, want)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tasks did not run")
	}
}
