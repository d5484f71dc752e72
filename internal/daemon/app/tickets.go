package app

import (
	"time"

	"github.com/gale-server/gale/tlsterm"
)

// rotateTickets sets term's session ticket keys derived from secret (labelled
// with the configured address, the same in every process) and replaces them at
// each period boundary, on a goroutine of its own, until the App shuts down.
func (a *App) rotateTickets(term *tlsterm.Terminator, secret []byte, addr string, period time.Duration) error {
	keys, err := tlsterm.TicketKeys(secret, addr, period, time.Now())
	if err != nil {
		return err
	}
	term.SetTicketKeys(keys)
	go func() {
		t := time.NewTimer(time.Until(tlsterm.NextRotation(period, time.Now())))
		defer t.Stop()
		for {
			select {
			case <-a.stop:
				return
			case now := <-t.C:
				keys, _ := tlsterm.TicketKeys(secret, addr, period, now)
				term.SetTicketKeys(keys)
				t.Reset(time.Until(tlsterm.NextRotation(period, now)))
			}
		}
	}()
	return nil
}
