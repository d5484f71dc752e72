package supervisor

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/gale-server/gale/tlsterm"
)

// envTicketFD is the descriptor of a pipe from which a worker reads the session
// ticket secret its parent generated (tlsterm.MinTicketSecret bytes), so that
// every worker derives the same ticket keys. A pipe, not a variable: the secret
// never appears in /proc/PID/environ.
const envTicketFD = "GALE_TICKET_FD"

// newTicketSecret returns a random session ticket secret for the workers.
func newTicketSecret() ([]byte, error) {
	b := make([]byte, tlsterm.MinTicketSecret)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

// ticketPipe returns the read end of a pipe that holds secret, to pass to a
// worker as descriptor fd, and the variable that names it.
func ticketPipe(secret []byte, fd int) (*os.File, string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, "", err
	}
	_, err = w.Write(secret) // far below the pipe's capacity: does not block
	w.Close()
	if err != nil {
		r.Close()
		return nil, "", err
	}
	return r, envTicketFD + "=" + strconv.Itoa(fd), nil
}

// readTicketSecret reads the secret from the descriptor envTicketFD names (v) and
// closes it.
func readTicketSecret(v string) ([]byte, error) {
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: not a descriptor", envTicketFD, v)
	}
	f := os.NewFile(uintptr(fd), "tickets")
	defer f.Close()
	b := make([]byte, tlsterm.MinTicketSecret)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%s: reading the ticket secret: %w", envTicketFD, err)
	}
	return b, nil
}
