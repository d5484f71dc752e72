package app

import (
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/wsserver"
)

// buildWebSocket turns a websocket action into a WebSocket server (echo, the one
// application the configuration offers).
func buildWebSocket(w *config.WebSocket) (server.Handler, error) {
	return wsserver.New(wsserver.Echo{}, wsserver.Options{
		AllowedOrigins:  w.AllowedOrigins,
		Subprotocols:    w.Subprotocols,
		Compression:     w.Compression,
		MaxMessageBytes: w.MaxMessageBytes,
		PingInterval:    offIfZero(w.PingInterval),
		IdleTimeout:     offIfZero(w.IdleTimeout),
		CloseTimeout:    w.CloseTimeout,
		HighWater:       int(w.HighWater),
		OverflowCode:    uint16(w.OverflowCode),
	})
}

// offIfZero maps the configuration's 0 (off) to wsserver's negative (off).
func offIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
