package supervisor

import (
	"fmt"
	"os"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/daemon/app"
	"github.com/gale-server/gale/internal/os/sys"
	"golang.org/x/sys/unix"
)

// sockets are the listening sockets a top-level gale process (a supervising
// parent, or a single process) opens at startup, by configured address. They
// are what a binary upgrade hands to the successor, and what a parent hands
// to its workers, so that a socket outlives the process serving it and no
// queued connection is reset when that process goes away.
type sockets map[string]app.Inherited

// openSockets returns at least per SO_REUSEPORT sockets for every listen
// address of cfg: the inherited ones first (all of them, even beyond per, so
// that no socket with queued connections is closed), then new ones bound to
// the same address (after the first, to the port the first got, so that port
// 0 works). Inherited sockets of addresses cfg no longer lists are closed.
// On error every socket is closed.
func openSockets(cfg *config.Config, inherited map[string]app.Inherited, per int) (sockets, error) {
	return openSocketsHeld(cfg, inherited, nil, per)
}

// openSocketsHeld is openSockets for the successor of an upgrade: the keys in
// held are addresses its predecessor listens on without handing them over
// (reloads added them), so they are bound without the check that nothing
// listens there, which would find the predecessor's own sockets.
func openSocketsHeld(cfg *config.Config, inherited map[string]app.Inherited, held map[string]bool, per int) (sockets, error) {
	out := sockets{}
	addrs := socketAddrs(cfg)
	wanted := map[string]bool{}
	for _, a := range addrs {
		wanted[a] = true
	}
	for addr, in := range inherited {
		for _, fd := range in.FDs {
			unix.CloseOnExec(fd) // ours now: not for anything we start without saying so
		}
		if !wanted[addr] {
			for _, fd := range in.FDs {
				unix.Close(fd)
			}
		}
	}
	// A new address must be free: see sys.CheckFree. Every one is checked
	// before any is bound, because one server may listen on a wildcard and on
	// a specific address of the same port (":80" and "127.0.0.1:80"), and the
	// check of the second would find the first one's sockets, ours, and take
	// them for another process's. (Addresses a reload adds are bound by each
	// worker with SO_REUSEPORT and not checked.)
	for _, addr := range addrs {
		if len(inherited[addr].FDs) > 0 || held[addr] || len(inherited) > 0 && boundByOlderRelease(addr) {
			continue
		}
		if err := sys.CheckFree(app.BindAddr(addr)); err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
	}
	for _, addr := range addrs {
		in := inherited[addr]
		in.FDs = append([]int(nil), in.FDs...)
		for len(in.FDs) < per {
			target := app.BindAddr(addr)
			if in.Addr != "" {
				target = in.Addr
			}
			fd, err := sys.Listen(target, true)
			if err != nil {
				out[addr] = in
				out.close()
				return nil, fmt.Errorf("listen %s: %w", addr, err)
			}
			if in.Addr == "" {
				if in.Addr, err = sys.LocalAddr(fd); err != nil {
					unix.Close(fd)
					out[addr] = in
					out.close()
					return nil, err
				}
			}
			in.FDs = append(in.FDs, fd)
		}
		out[addr] = in
	}
	return out, nil
}

// boundByOlderRelease reports whether key is a tcp entry's or a redirect_http
// address, whose sockets releases before this one bound in each serving process
// and neither handed over in an upgrade nor named in envHeld. The successor of
// such a release (it inherited sockets, but not these) finds them held by its
// predecessor, so it binds them without the check, as those releases did.
func boundByOlderRelease(key string) bool {
	a := app.BindAddr(key)
	return key == app.TCPSocketKey(a) || key == app.RedirectSocketKey(a)
}

// share returns worker i's part of the sockets of n workers: socket j of
// each address goes to worker j%n.
func (s sockets) share(i, n int) map[string]app.Inherited {
	out := map[string]app.Inherited{}
	for addr, in := range s {
		part := app.Inherited{Addr: in.Addr}
		for j, fd := range in.FDs {
			if j%n == i {
				part.FDs = append(part.FDs, fd)
			}
		}
		if len(part.FDs) > 0 {
			out[addr] = part
		}
	}
	return out
}

// files duplicates the descriptors of part, in the order formatListen numbers
// them, for os/exec ExtraFiles. Duplicates, because an *os.File closes its
// descriptor when it is closed or collected and ours must stay open; the
// caller closes the files once the process has started.
func files(part map[string]app.Inherited) ([]*os.File, error) {
	var out []*os.File
	for _, addr := range sortedAddrs(part) {
		for _, fd := range part[addr].FDs {
			d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
			if err != nil {
				closeFiles(out)
				return nil, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
			}
			out = append(out, os.NewFile(uintptr(d), addr))
		}
	}
	return out, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// close closes every socket.
func (s sockets) close() {
	for _, in := range s {
		for _, fd := range in.FDs {
			unix.Close(fd)
		}
	}
}

// closeOnExec keeps an inherited descriptor out of processes this one starts
// unless they are handed it explicitly.
func closeOnExec(fd int) { unix.CloseOnExec(fd) }
