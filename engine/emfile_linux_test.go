//go:build linux && !galenet

package engine

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAcceptEMFILE runs an engine in a child process whose descriptor limit is far
// below the number of clients. The engine must count the accept pauses, keep serving
// the connections it has, and not spin: it may use at most a fraction of a CPU while
// the accept queue holds connections it cannot take.
func TestAcceptEMFILE(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperEMFILE$")
	cmd.Env = append(os.Environ(), "GALE_HELPER_EMFILE=1")
	stdout, _ := cmd.StdoutPipe()
	stdin, _ := cmd.StdinPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "ADDR ") {
		t.Fatalf("child did not report its address: %q", sc.Text())
	}
	addr := strings.TrimPrefix(sc.Text(), "ADDR ")
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	var others []net.Conn
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break
		}
		others = append(others, c)
	}
	defer func() {
		for _, c := range others {
			c.Close()
		}
	}()
	// The first connection still works while accepting is starved.
	first.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := first.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(first, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("existing connection not served: %q %v", buf, err)
	}
	// Measure the child's CPU over one second of starvation.
	cpu0 := childCPU(t, cmd.Process.Pid)
	time.Sleep(time.Second)
	cpu1 := childCPU(t, cmd.Process.Pid)
	fmt.Fprintln(stdin, "report")
	if !sc.Scan() {
		t.Fatal("no report from child")
	}
	var pauses uint64
	fmt.Sscanf(sc.Text(), "PAUSES %d", &pauses)
	if pauses == 0 {
		t.Fatalf("no accept pause counted (%q)", sc.Text())
	}
	if used := cpu1 - cpu0; used > 300*time.Millisecond {
		t.Fatalf("engine used %v of CPU in 1s while out of descriptors: spinning", used)
	}
	t.Logf("accept pauses %d, CPU during 1 s of starvation %v", pauses, cpu1-cpu0)
}

func childCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

// TestHelperEMFILE is the child of TestAcceptEMFILE.
func TestHelperEMFILE(t *testing.T) {
	if os.Getenv("GALE_HELPER_EMFILE") != "1" {
		t.Skip("helper process only")
	}
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := e.Listen("127.0.0.1:0", &echo{})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	fmt.Println("ADDR " + addr)
	bufio.NewReader(os.Stdin).ReadString('\n')
	fmt.Printf("PAUSES %d\n", e.Stats().AcceptPauses)
	os.Exit(0)
}
