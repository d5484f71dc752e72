package config

import (
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a configuration, with the position of the YAML
// node it concerns. Line and Column are 1-based; both are 0 for a Config
// built in Go, which has no source text.
type Error struct {
	File   string // name given to Parse or Load; "" for a Config built in Go
	Line   int    // 1-based line, or 0 when unknown
	Column int    // 1-based column, or 0 when unknown
	Path   string // the value's place in the schema, like servers[0].listen[1]; "" for the top level
	Msg    string // what is wrong, without position or path
}

// Error formats the problem as FILE:LINE:COL: PATH: MSG, leaving out the
// parts that are unknown or empty.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one configuration, in source order.
// Parse, Load and Validate return a non-empty ErrorList as their error;
// callers that want to print each problem on its own line use errors.As.
type ErrorList []*Error

// Error joins the problems with newlines.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as a slice of errors, so that errors.As and
// errors.Is see each of them.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// sort orders the list by position; errors without a position keep their
// relative order and come last.
func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// errOrNil returns l as an error, or nil when it is empty, so that a nil
// ErrorList never becomes a non-nil error interface.
func (l ErrorList) errOrNil() error {
	if len(l) == 0 {
		return nil
	}
	l.sort()
	return l
}
