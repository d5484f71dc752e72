package supervisor

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/daemon/app"
	"github.com/gale-server/gale/internal/os/sys"
	"github.com/gale-server/gale/internal/testcert"
	"golang.org/x/sys/unix"
)

// testConfig is a valid configuration serving a fixed body on addrs.
func testConfig(t *testing.T, addrs ...string) *config.Config {
	t.Helper()
	cfg := config.New()
	r := &config.Respond{}
	r.SetDefaults()
	r.Body = "ok"
	cfg.Servers = []config.Server{{Listen: addrs, Routes: []config.Route{{Match: config.Match{Path: "/"}, Respond: r}}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

func TestOpenSockets(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:0", "127.0.0.2:0")
	socks, err := openSockets(cfg, nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(socks) != 2 {
		t.Fatalf("openSockets = %v", socks)
	}
	for addr, in := range socks {
		if len(in.FDs) != 3 {
			t.Fatalf("%s: %d sockets, want 3", addr, len(in.FDs))
		}
		for _, fd := range in.FDs {
			sa, err := unix.Getsockname(fd)
			if err != nil {
				t.Fatal(err)
			}
			// Every socket of an address shares the port the first one got.
			if got := sa.(*unix.SockaddrInet4).Port; net.JoinHostPort(addr[:9], strconv.Itoa(got)) != in.Addr {
				t.Fatalf("%s: socket on port %d, want %s", addr, got, in.Addr)
			}
		}
	}
	// Shares: socket j of each address goes to worker j%2.
	s0, s1 := socks.share(0, 2), socks.share(1, 2)
	for addr, in := range socks {
		if got := s0[addr].FDs; len(got) != 2 || got[0] != in.FDs[0] || got[1] != in.FDs[2] {
			t.Errorf("worker 0 share of %s = %v", addr, got)
		}
		if got := s1[addr]; len(got.FDs) != 1 || got.FDs[0] != in.FDs[1] || got.Addr != in.Addr {
			t.Errorf("worker 1 share of %s = %v", addr, got)
		}
	}
	fs, err := files(s1)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || int(fs[0].Fd()) == s1["127.0.0.1:0"].FDs[0] {
		t.Fatalf("files = %v: want 2 duplicates", fs)
	}
	closeFiles(fs)

	// A successor keeps every inherited socket of a configured address, binds
	// what is missing and closes those of addresses no longer configured.
	inherited := map[string]app.Inherited(socks)
	dropped := socks["127.0.0.2:0"].FDs
	next, err := openSockets(testConfig(t, "127.0.0.1:0"), inherited, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer next.close()
	got := next["127.0.0.1:0"]
	if len(got.FDs) != 5 || got.Addr != socks["127.0.0.1:0"].Addr {
		t.Fatalf("successor sockets = %+v", got)
	}
	for i, fd := range socks["127.0.0.1:0"].FDs {
		if got.FDs[i] != fd {
			t.Fatalf("inherited socket %d replaced", i)
		}
	}
	reused := map[int]bool{}
	for _, fd := range got.FDs {
		reused[fd] = true
	}
	for _, fd := range dropped {
		if isOpen(fd) && !reused[fd] {
			t.Errorf("socket %d of a removed address is still open", fd)
		}
	}
	if flags, _ := unix.FcntlInt(uintptr(got.FDs[0]), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC == 0 {
		t.Error("inherited socket not marked close-on-exec")
	}
}

func TestOpenSocketsFailure(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0") // no SO_REUSEPORT: nobody can join it
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s, err := openSockets(testConfig(t, "127.0.0.1:0", taken.Addr().String()), nil, 2)
	if err == nil {
		s.close()
		t.Fatal("openSockets on a taken address succeeded")
	}
	// The error names the address: "bind: address already in use" alone
	// leaves an operator with several listen addresses guessing.
	if want := "listen " + taken.Addr().String() + ": bind: address already in use"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestOpenSocketsRefusesReusePortHolder: an address another gale already
// serves (its sockets have SO_REUSEPORT, so a plain SO_REUSEPORT bind would
// join them and split their connections) is refused with ErrAddrInUse, and
// nothing stays bound.
func TestOpenSocketsRefusesReusePortHolder(t *testing.T) {
	fd, err := sys.Listen("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	addr, _ := sys.LocalAddr(fd)
	s, err := openSockets(testConfig(t, "127.0.0.1:0", addr), nil, 2)
	if err == nil {
		s.close()
		t.Fatalf("openSockets joined the SO_REUSEPORT sockets on %s", addr)
	}
	if !errors.Is(err, sys.ErrAddrInUse) || !strings.Contains(err.Error(), "listen "+addr+": ") {
		t.Fatalf("error %q, want listen %s: ... %v", err, addr, sys.ErrAddrInUse)
	}
	// The holder still gets every connection: nothing of ours was left bound.
	for range 8 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(pfd, 5000); n != 1 {
			t.Fatal("the holder did not get the connection")
		}
		nfd, _, err := unix.Accept(fd)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(nfd)
	}
}

// TestOpenSocketsOverlappingAddressesOfOneServer: one server may listen on a
// wildcard and on a specific address of the same port (gale check accepts it);
// the check that nothing else listens there must not take the sockets of the
// first address for another process's when it comes to the second, in either
// order.
func TestOpenSocketsOverlappingAddressesOfOneServer(t *testing.T) {
	six := false
	if l, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		l.Close()
		six = true
	}
	for _, form := range [][]string{{"127.0.0.1:", ":"}, {":", "localhost:"}, {"0.0.0.0:", "[::]:"}} {
		if form[1] == "[::]:" && !six {
			continue
		}
		// A free port from the kernel is an ephemeral one, which another test's
		// outgoing connection may take before openSockets binds it: such a
		// collision is retried with another port, the bug this test is about
		// (its own first socket taken for another process's) fails every time.
		var errs []error
		for range 3 {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
			l.Close()
			addrs := []string{form[0] + port, form[1] + port}
			s, err := openSockets(testConfig(t, addrs...), nil, 2)
			if err != nil {
				errs = append(errs, fmt.Errorf("openSockets(%v): %w", addrs, err))
				continue
			}
			if len(s) != 2 {
				t.Errorf("openSockets(%v) = %v, want sockets for both addresses", addrs, s)
			}
			s.close()
			errs = nil
			break
		}
		if errs != nil {
			t.Errorf("%v", errs)
		}
	}
}

// TestOpenSocketsTCPAndRedirectAddresses: a tcp entry's and a redirect_http
// address's sockets are opened with the servers' (so that workers share them
// and an upgrade hands them over), and an address of either that another
// process already holds with SO_REUSEPORT is refused, not joined.
func TestOpenSocketsTCPAndRedirectAddresses(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("srv", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(tcp, redirect string) *config.Config {
		t.Helper()
		cfg, err := config.Parse("gale.yaml", []byte(fmt.Sprintf(`
tcp: [{ listen: [%q], upstreams: ["127.0.0.1:9"] }]
servers:
  - listen: ["127.0.0.1:0"]
    tls: { certificates: [{ cert: %q, key: %q }], redirect_http: [%q] }
    routes: [{ match: { path: / }, respond: { status: 200 } }]
`, tcp, cert.Cert, cert.Key, redirect)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	s, err := openSockets(parse("127.0.0.3:0", "127.0.0.2:0"), nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"127.0.0.1:0", app.TCPSocketKey("127.0.0.3:0"), app.RedirectSocketKey("127.0.0.2:0")} {
		if in := s[key]; len(in.FDs) != 2 || in.Addr == "" {
			t.Errorf("sockets of %s = %+v, want 2 bound ones", key, in)
		}
	}
	s.close()

	fd, err := sys.Listen("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	held, _ := sys.LocalAddr(fd)
	for _, cfg := range []*config.Config{parse(held, "127.0.0.2:0"), parse("127.0.0.3:0", held)} {
		s, err := openSockets(cfg, nil, 2)
		if err == nil {
			s.close()
			t.Fatalf("openSockets joined the SO_REUSEPORT sockets on %s", held)
		}
		if !errors.Is(err, sys.ErrAddrInUse) || !strings.Contains(err.Error(), held) {
			t.Errorf("error %q, want %v naming %s", err, sys.ErrAddrInUse, held)
		}
	}
}

// TestOpenSocketsSuccessorOfOlderRelease: a release before the tcp and
// redirect_http sockets were handed over bound them in its serving processes;
// its successor inherits the servers' sockets only, and must bind the tcp
// entry's address beside the predecessor's socket instead of refusing it as
// another program's (a fresh start still refuses it).
func TestOpenSocketsSuccessorOfOlderRelease(t *testing.T) {
	fd, err := sys.Listen("127.0.0.1:0", true) // the old release's relay socket
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	held, _ := sys.LocalAddr(fd)
	cfg, err := config.Parse("gale.yaml", []byte(fmt.Sprintf(`
tcp: [{ listen: [%q], upstreams: ["127.0.0.1:9"] }]
servers: [{ listen: ["127.0.0.1:0"], routes: [{ match: { path: / }, respond: { status: 200 } }] }]
`, held)))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := openSockets(cfg, nil, 1); err == nil || !errors.Is(err, sys.ErrAddrInUse) {
		s.close()
		t.Fatalf("fresh start on a held tcp address: %v, want %v", err, sys.ErrAddrInUse)
	}
	old, err := openSockets(testConfig(t, "127.0.0.1:0"), nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := openSockets(cfg, map[string]app.Inherited(old), 1)
	if err != nil {
		t.Fatalf("successor of an older release: %v", err)
	}
	defer s.close()
	if in := s[app.TCPSocketKey(held)]; len(in.FDs) != 1 || in.Addr != held {
		t.Fatalf("tcp sockets %+v, want one on %s", in, held)
	}
}
