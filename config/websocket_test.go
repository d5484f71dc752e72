package config

import (
	"slices"
	"strings"
	"testing"
)

// TestWebSocketErrors: every option of the websocket action is checked by gale check with
// the position of the offending value.
func TestWebSocketErrors(t *testing.T) {
	src := `servers:
  - listen: :80
    routes:
      - websocket:
          echo: false
          max_message_bytes: 0
          high_water: 2GiB
          allowed_origins: ["https://ok.example", "ftp://", "https://a.example/path"]
          subprotocols: [chat, "not a token", chat]
          ping_interval: -1s
          idle_timeout: -5s
          close_timeout: 0s
          overflow_code: 1000
`
	got := errorLines(t, src)
	want := []string{
		`gale.yaml:5:17: servers[0].routes[0].websocket.echo: echo must be true: it is the only WebSocket application served from the configuration`,
		`gale.yaml:6:30: servers[0].routes[0].websocket.max_message_bytes: 0 is out of range 1-1GiB`,
		`gale.yaml:7:23: servers[0].routes[0].websocket.high_water: 2GiB is out of range 1-1GiB`,
		`gale.yaml:8:51: servers[0].routes[0].websocket.allowed_origins[1]: invalid origin "ftp://": expected *, scheme://host[:port] or host[:port]`,
		`gale.yaml:8:61: servers[0].routes[0].websocket.allowed_origins[2]: invalid origin "https://a.example/path": expected *, scheme://host[:port] or host[:port]`,
		`gale.yaml:9:32: servers[0].routes[0].websocket.subprotocols[1]: invalid subprotocol "not a token": expected a token`,
		`gale.yaml:9:47: servers[0].routes[0].websocket.subprotocols[2]: subprotocol chat is listed twice`,
		`gale.yaml:10:26: servers[0].routes[0].websocket.ping_interval: duration must not be negative`,
		`gale.yaml:11:25: servers[0].routes[0].websocket.idle_timeout: duration must not be negative`,
		`gale.yaml:12:26: servers[0].routes[0].websocket.close_timeout: must be greater than zero`,
		`gale.yaml:13:26: servers[0].routes[0].websocket.overflow_code: invalid close code 1000: expected 1008 (policy violation) or 1013 (try again later)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
