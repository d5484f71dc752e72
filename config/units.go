package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/gale-server/gale/http1"
)

// sizeUnits are the accepted size suffixes. Decimal units are powers of 1000
// and binary units powers of 1024, as in IEC 80000-13.
var sizeUnits = []struct {
	name string
	mult int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"KB", 1e3},
	{"B", 1},
}

const sizeHint = "expected a byte count like 512, 64KiB, 10MiB or 1GB (units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)"

// parseSize parses a non-negative byte count: decimal digits, then optional
// spaces and one unit from sizeUnits. Digits alone are bytes.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size %q: %s", s, sizeHint)
	}
	n, ok := http1.ParseDecimal(s[:i])
	if !ok {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	unit := strings.TrimLeft(s[i:], " ")
	if unit == "" {
		return n, nil
	}
	for _, u := range sizeUnits {
		if u.name == unit {
			if n > math.MaxInt64/u.mult {
				return 0, fmt.Errorf("size %q is too large", s)
			}
			return n * u.mult, nil
		}
	}
	names := make([]string, len(sizeUnits))
	for i, u := range sizeUnits {
		names[i] = u.name
	}
	return 0, fmt.Errorf("invalid size %q: unknown unit %q%s; %s", s, unit, didYouMean(unit, names), sizeHint)
}

// formatSize writes n with the largest unit that divides it exactly,
// preferring binary units, or as plain bytes.
func formatSize(n int64) string {
	if n > 0 {
		for _, u := range sizeUnits {
			if u.mult > 1 && n%u.mult == 0 {
				return fmt.Sprintf("%d%s", n/u.mult, u.name)
			}
		}
	}
	return fmt.Sprintf("%d", n)
}

const durationHint = "expected a duration like 250ms, 5s, 1m30s or 2h (units ns, us, ms, s, m, h)"

// durationSyntax matches what time.ParseDuration accepts when the value fits:
// an optional sign, then one or more decimal numbers, each with a unit.
var durationSyntax = regexp.MustCompile(`^[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+$`)

// parseDuration parses a non-negative Go duration such as "5s" or "1m30s".
// A bare number is accepted only when it is 0.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil && durationSyntax.MatchString(s) {
		// Well formed, so the sum overflowed: time.ParseDuration says
		// "invalid" for both.
		return 0, fmt.Errorf("duration %q is too large (at most %s)", s, formatDuration(math.MaxInt64/time.Hour*time.Hour))
	}
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %s", s, durationHint)
	}
	if d < 0 {
		return 0, errors.New("duration must not be negative")
	}
	return d, nil
}

// formatDuration writes d in the unit an operator would: whole hours as
// "2h", whole minutes as "5m", whole seconds below an hour as "75s", and
// anything else the way time.Duration does ("250ms", "1h0m30s").
func formatDuration(d time.Duration) string {
	if d > 0 && d%time.Second == 0 {
		switch s := int64(d / time.Second); {
		case s%3600 == 0:
			return fmt.Sprintf("%dh", s/3600)
		case s%60 == 0:
			return fmt.Sprintf("%dm", s/60)
		case s < 3600:
			return fmt.Sprintf("%ds", s)
		}
	}
	return d.String()
}

// suggest returns the candidate nearest to word by edit distance, ignoring
// case, when it is near enough to be a plausible misspelling; otherwise "".
func suggest(word string, candidates []string) string {
	w := strings.ToLower(word)
	best, bestDist := "", math.MaxInt
	for _, c := range candidates {
		if d := editDistance(w, strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := max(1, min(3, len([]rune(best))/3))
	if best == "" || bestDist > limit {
		return ""
	}
	return best
}

// Suggest returns the candidate that word is most likely a misspelling of,
// or "" when none is close; the command line uses it for unknown commands.
func Suggest(word string, candidates []string) string { return suggest(word, candidates) }

// didYouMean formats suggest's answer as a message suffix, or "".
func didYouMean(word string, candidates []string) string {
	if s := suggest(word, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and swaps of adjacent characters each
// cost one.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	prev2 := make([]int, len(y)+1)
	prev := make([]int, len(y)+1)
	cur := make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(y)]
}
