package supervisor

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second, stable: 5 * time.Second}
	quick := time.Millisecond
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.next(quick); got != w*time.Millisecond {
			t.Fatalf("crash %d: delay %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := b.next(5 * time.Second); got != 100*time.Millisecond {
		t.Fatalf("after a stable run: delay %v, want the minimum", got)
	}
	if got := b.next(quick); got != 200*time.Millisecond {
		t.Fatalf("crash after the reset: delay %v, want 200ms", got)
	}
	d := defaultBackoff()
	if d.min <= 0 || d.max < d.min || d.stable <= 0 {
		t.Fatalf("defaultBackoff = %+v", d)
	}
}
