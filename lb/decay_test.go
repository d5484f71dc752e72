package lb

import (
	"math"
	"testing"
)

// TestDecay: the cheap form of e^-x stays within 1e-8 of math.Exp on both
// sides of its switch-over.
func TestDecay(t *testing.T) {
	for x := 0.0; x < 0.1; x += 1.0 / 4096 {
		if d := math.Abs(decay(x) - math.Exp(-x)); d > 1e-8 {
			t.Fatalf("decay(%v) = %v, e^-x = %v", x, decay(x), math.Exp(-x))
		}
	}
}
