package health

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// A tcp check with send and expect passes on a server that answers the
// expected bytes and fails on one that answers others, or closes, or stays
// silent past the timeout.
func TestCheckTCPSendExpect(t *testing.T) {
	answer := func(reply string) netip.AddrPort {
		return netip.MustParseAddrPort(testkit.Serve(t, func(c *net.TCPConn) {
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || line != "PING\r\n" {
				return // not the check's bytes: close
			}
			if reply != "" {
				c.Write([]byte(reply))
			}
			if reply == "silent" {
				c.Read(make([]byte, 1)) // until the check gives up
			}
		}))
	}
	good, wrong, closing, silent := answer("+PO"+"NG\r\n"), answer("-ERR unknown\r\n"), answer(""), answer("silent")
	var lb logBuf
	g := checkGroup(t, &lb, CheckOptions{Type: CheckTCP, Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond, Rise: 1, Fall: 1,
		TCP: TCPCheck{Send: []byte("PING\r\n"), Expect: []byte("+PONG")}}, good, wrong, closing, silent)
	testkit.WaitFor(t, "the failing servers down", func() bool { return down(g, 1) && down(g, 2) && down(g, 3) })
	testkit.WaitFor(t, "a passed check of the good server", func() bool { return g.srv[0].checksOK.Load() >= 3 })
	if down(g, 0) || g.srv[0].checksFailed.Load() != 0 {
		t.Fatalf("the server answering +PONG failed %d checks", g.srv[0].checksFailed.Load())
	}
	for i, want := range map[int]string{2: "closed before the expected bytes", 3: "timeout"} {
		if got := *g.srv[i].lastCheck.Load(); !strings.Contains(got, want) {
			t.Errorf("server %d: last check %q, want %q", i, got, want)
		}
	}
}
