package main

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryExitStatus builds the gale binary and checks the exit status and
// output of gale check, as a shell script or CI job would see them.
func TestBinaryExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "gale")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	good := writeFile(t, dir, "good.yaml", goodConfig)
	bad := writeFile(t, dir, "bad.yaml", badConfig)
	tests := []struct {
		args   []string
		status int
		stdout string // prefix of standard output
		stderr string // prefix of standard error
	}{
		{[]string{"check", "-c", good}, 0, "# " + good + " is valid; effective configuration:\nworkers: auto\n", ""},
		{[]string{"check", "-q", "-c", good}, 0, "", ""},
		{[]string{"check", "-c", bad}, 1, "", bad + ":1:1: unknown key \"wokers\" (did you mean \"workers\"?)\n" + bad + ":3:14: "},
		{[]string{"check", "-c", filepath.Join(dir, "missing.yaml")}, 1, "", "gale: open "},
		{[]string{"check"}, 2, "", "gale check: the -c FILE flag is required\n"},
		{[]string{"check", "--help"}, 0, "usage: gale check", ""},
		{[]string{"frobnicate"}, 2, "", "gale: unknown command \"frobnicate\""},
		{[]string{"version"}, 0, "gale ", ""},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, tt.args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		status := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			status = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("gale %v: %v", tt.args, err)
		}
		if status != tt.status || !strings.HasPrefix(stdout.String(), tt.stdout) || !strings.HasPrefix(stderr.String(), tt.stderr) ||
			tt.stdout == "" && stdout.Len() != 0 || tt.stderr == "" && stderr.Len() != 0 {
			t.Errorf("gale %s: status %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(tt.args, " "), status, tt.status, stdout.String(), stderr.String())
		}
	}
}
