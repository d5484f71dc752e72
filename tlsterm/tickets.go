package tlsterm

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"
)

// MinTicketSecret is the shortest secret TicketKeys accepts.
const MinTicketSecret = 32

// ErrTicketSecret is returned for a ticket secret shorter than MinTicketSecret.
var ErrTicketSecret = errors.New("tlsterm: a session ticket secret needs at least 32 bytes")

// TicketKeys derives the session ticket keys in force at now from secret: the key
// of the current period of length period (counted from the Unix epoch), which
// encrypts new tickets, then the previous period's, still accepted. Every process
// with the same secret, label and period derives the same keys, so a ticket issued
// by one resumes on another; label separates listeners sharing a secret. Each key
// is HMAC-SHA256(secret, label, period number).
func TicketKeys(secret []byte, label string, period time.Duration, now time.Time) ([][32]byte, error) {
	if len(secret) < MinTicketSecret {
		return nil, ErrTicketSecret
	}
	if period <= 0 {
		return nil, errors.New("tlsterm: the session ticket rotation period must be positive")
	}
	n := uint64(now.UnixNano() / int64(period))
	return [][32]byte{ticketKey(secret, label, n), ticketKey(secret, label, n-1)}, nil
}

func ticketKey(secret []byte, label string, n uint64) [32]byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("gale session ticket key\x00"))
	m.Write([]byte(label))
	m.Write(binary.BigEndian.AppendUint64([]byte{0}, n))
	var k [32]byte
	m.Sum(k[:0])
	return k
}

// NextRotation returns when the period that contains now ends: the time to call
// TicketKeys and SetTicketKeys again.
func NextRotation(period time.Duration, now time.Time) time.Time {
	n := now.UnixNano() / int64(period)
	return time.Unix(0, (n+1)*int64(period))
}

// SetTicketKeys replaces the session ticket keys of every handshake from now on:
// the first encrypts new tickets, all of them decrypt. Without a call crypto/tls
// manages keys of its own, per process. Safe from any goroutine.
func (t *Terminator) SetTicketKeys(keys [][32]byte) {
	t.base.SetSessionTicketKeys(keys)
}
