package config

import "context"

type reloadsKey struct{}

// WithReloads returns a context that carries ch, the channel on which the
// caller delivers new, already validated configurations (for example on
// SIGHUP). The server that runs under the context applies each one it
// receives; it never closes or sends on ch.
func WithReloads(ctx context.Context, ch <-chan *Config) context.Context {
	return context.WithValue(ctx, reloadsKey{}, ch)
}

// Reloads returns the channel stored by WithReloads, or nil when ctx has
// none; receiving from a nil channel blocks forever, so a select on it is
// simply never chosen.
func Reloads(ctx context.Context) <-chan *Config {
	ch, _ := ctx.Value(reloadsKey{}).(<-chan *Config)
	return ch
}
