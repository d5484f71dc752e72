package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gale-server/gale/http1"
)

// Bounds of the websocket action enforced by Validate.
const (
	maxWSMessage   = 1 << 30 // largest websocket.max_message_bytes
	maxWSHighWater = 1 << 30 // largest websocket.high_water
)

// websocket checks a WebSocket action.
func (v *validator) websocket(w *WebSocket, path string) {
	if !w.Echo {
		v.errorf(joinPath(path, "echo"), "echo must be true: it is the only WebSocket application served from the configuration")
	}
	v.between(joinPath(path, "max_message_bytes"), w.MaxMessageBytes, 1, maxWSMessage, formatSize)
	v.between(joinPath(path, "high_water"), w.HighWater, 1, maxWSHighWater, formatSize)
	for i, o := range w.AllowedOrigins {
		if !validOrigin(o) {
			v.errorf(fmt.Sprintf("%s.allowed_origins[%d]", path, i), "invalid origin %q: expected *, scheme://host[:port] or host[:port]", o)
		}
	}
	for i, p := range w.Subprotocols {
		sp := fmt.Sprintf("%s.subprotocols[%d]", path, i)
		if !http1.IsToken(p) {
			v.errorf(sp, "invalid subprotocol %q: expected a token", p)
		} else if slices.Contains(w.Subprotocols[:i], p) {
			v.errorf(sp, "subprotocol %s is listed twice", p)
		}
	}
	for _, d := range []struct {
		key      string
		value    int64
		positive bool
	}{
		{"ping_interval", int64(w.PingInterval), false},
		{"idle_timeout", int64(w.IdleTimeout), false},
		{"close_timeout", int64(w.CloseTimeout), true},
	} {
		switch {
		case d.value < 0:
			v.errorf(joinPath(path, d.key), "must not be negative")
		case d.value == 0 && d.positive:
			v.errorf(joinPath(path, d.key), "must be greater than zero")
		}
	}
	if w.OverflowCode != 1008 && w.OverflowCode != 1013 {
		v.errorf(joinPath(path, "overflow_code"), "invalid close code %d: expected 1008 (policy violation) or 1013 (try again later)", w.OverflowCode)
	}
}

// validOrigin reports whether o can be an allowed_origins entry: "*", or an origin or
// bare host[:port] of visible ASCII without a path.
func validOrigin(o string) bool {
	if o == "*" {
		return true
	}
	if _, rest, ok := strings.Cut(o, "://"); ok {
		o = rest
	}
	if o == "" {
		return false
	}
	for _, c := range []byte(o) {
		if c <= ' ' || c >= 0x7f || c == '/' || c == '?' || c == '#' {
			return false
		}
	}
	return true
}

// WebSocket serves WebSocket connections (RFC 6455) on the route's path.
type WebSocket struct {
	// Echo sends every message back; it is the one application served from the
	// configuration and must be true.
	Echo bool `yaml:"echo"`
	// MaxMessageBytes bounds one received message (decompressed); a larger one is
	// closed with 1009.
	MaxMessageBytes int64 `yaml:"max_message_bytes" conf:"size"`
	// AllowedOrigins lists the accepted Origin values; empty accepts only the
	// request's own host.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// Subprotocols lists the subprotocols offered, most preferred first.
	Subprotocols []string `yaml:"subprotocols"`
	// Compression enables permessage-deflate without context takeover.
	Compression bool `yaml:"compression"`
	// PingInterval is how long a client may stay silent before a ping; 0 disables.
	PingInterval time.Duration `yaml:"ping_interval"`
	// IdleTimeout is how long a client may send no frame before it is closed with
	// 1001; 0 disables.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// CloseTimeout bounds the close handshake.
	CloseTimeout time.Duration `yaml:"close_timeout"`
	// HighWater is the most output queued for a client when a message is sent.
	HighWater int64 `yaml:"high_water" conf:"size"`
	// OverflowCode is the close code of the high-water policy, 1008 or 1013.
	OverflowCode int `yaml:"overflow_code"`
}

// SetDefaults sets every field of w to its default.
func (w *WebSocket) SetDefaults() {
	*w = WebSocket{
		MaxMessageBytes: 1 << 20,
		AllowedOrigins:  []string{},
		Subprotocols:    []string{},
		PingInterval:    30 * time.Second,
		IdleTimeout:     60 * time.Second,
		CloseTimeout:    5 * time.Second,
		HighWater:       1 << 20,
		OverflowCode:    1008,
	}
}
