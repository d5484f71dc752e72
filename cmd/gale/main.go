// Command gale is the gale server: gale (serve the current directory),
// gale serve -c FILE, gale check -c FILE, gale file-server and gale version.
// The command-line logic lives in cli.go; this file only wires it to the
// process and to internal/app.
package main

import (
	"os"
	"runtime/debug"

	"github.com/gale-server/gale/internal/app"
)

// main wires the command line to the process and to app.Run.
func main() {
	c := &cli{
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		terminal:  isTerminal(os.Stderr),
		run:       app.Run,
		exit:      os.Exit,
		buildInfo: debug.ReadBuildInfo,
	}
	os.Exit(c.main(os.Args[1:]))
}
