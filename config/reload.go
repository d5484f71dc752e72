package config

import "context"

type (
	reloadsKey        struct{}
	refusedReloadsKey struct{}
)

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

// WithRefusedReloads returns a context that carries ch, the channel on which the
// caller delivers the errors of configurations it refused to hand over (a file
// that does not validate, on SIGHUP), so that the server running under the
// context can show them with the reloads it applied (/status.json).
func WithRefusedReloads(ctx context.Context, ch <-chan error) context.Context {
	return context.WithValue(ctx, refusedReloadsKey{}, ch)
}

// RefusedReloads returns the channel stored by WithRefusedReloads, or nil when
// ctx has none.
func RefusedReloads(ctx context.Context) <-chan error {
	ch, _ := ctx.Value(refusedReloadsKey{}).(<-chan error)
	return ch
}
