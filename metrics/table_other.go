//go:build !unix

package metrics

import "fmt"

// Table is where a process would publish its samples for the others; on
// systems without mmap, each process reports only its own numbers.
type Table struct {
	path string
	base map[string]uint64
}

// TablePath returns the table path of stats slot slot of the segment at
// statsPath.
func TablePath(statsPath string, slot int) string { return fmt.Sprintf("%s.m%d", statsPath, slot) }

// RemoveTables does nothing: no table files are written here.
func RemoveTables(string) {}

// OpenTable returns a table that publishes nothing.
func OpenTable(path string, pid int) *Table { return &Table{path: path} }

// Publish does nothing.
func (t *Table) Publish([]Sample) error { return nil }

// Path returns the table's path.
func (t *Table) Path() string { return t.path }

// Close does nothing.
func (t *Table) Close() {}

// ReadOthers reads nothing and reports no other process.
func ReadOthers(statsPath, own string, t Totals) int { return 0 }
