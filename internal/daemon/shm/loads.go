package shm

import (
	"os"
	"path/filepath"
)

// Load tables (package lb's in-flight counts per upstream server, shared by
// the worker processes of an instance so that least_conn sees every worker's
// requests) live next to the stats segment: STATS.lb-KEY, KEY naming the
// upstream and its servers. A table is created zero-filled by the first worker
// that needs it and mapped MAP_SHARED by every worker (MapShared); lb.LoadsOn
// lays the counters out in it. The supervisor removes the tables with the
// segment (RemoveLoadTables), and before a new segment is created, so that an
// instance never starts from counts a killed one left.

// LoadTablePath returns the path of load table key of the segment at statsPath.
func LoadTablePath(statsPath, key string) string { return statsPath + ".lb-" + key }

// RemoveLoadTables deletes every load table of the segment at statsPath.
func RemoveLoadTables(statsPath string) {
	files, _ := filepath.Glob(statsPath + ".lb-*")
	for _, f := range files {
		os.Remove(f)
	}
}
