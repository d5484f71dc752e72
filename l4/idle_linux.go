package l4

import (
	"golang.org/x/sys/unix"

	"github.com/gale-server/gale/engine"
)

// delivery reports how many bytes c's peer has acknowledged (TCP_INFO's
// tcpi_bytes_acked) and whether bytes for it are still on their way: queued in
// the engine, or in the socket not yet sent or not yet acknowledged.
func delivery(c *engine.Conn) (acked uint64, inFlight bool) {
	info, err := unix.GetsockoptTCPInfo(c.Fd(), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, c.Pending()
	}
	return info.Bytes_acked, c.Pending() || info.Notsent_bytes > 0 || info.Unacked > 0
}
