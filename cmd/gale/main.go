// Command gale is the gale server: gale (serve the current directory),
// gale serve -c FILE, gale check -c FILE, gale file-server and gale version.
// The command-line logic lives in cli.go; this file only wires it to the
// process and to internal/supervisor.
package main

import (
	"os"
	"runtime/debug"

	"github.com/gale-server/gale/internal/daemon/supervisor"
	"github.com/gale-server/gale/metrics"
)

// main wires the command line to the process and to supervisor.Run, which
// runs internal/app in one process or in several (processes: N).
func main() {
	c := &cli{
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		terminal:  isTerminal(os.Stderr),
		run:       supervisor.Run,
		exit:      os.Exit,
		abort:     supervisor.Abort,
		buildInfo: debug.ReadBuildInfo,
		// Read before supervisor.Run, which removes the variable.
		workerAttrs:  supervisor.WorkerLogAttrs,
		workerConfig: supervisor.WorkerConfig,
	}
	metrics.Version = releaseName(c.buildInfo())
	os.Exit(c.main(os.Args[1:]))
}
