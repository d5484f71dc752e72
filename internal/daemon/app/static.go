package app

import (
	"log/slog"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/static"
)

// buildStatic turns a `static` action into the file server handler.
// The route's path prefix is stripped before the file is looked up below root.
func buildStatic(s *config.Static, prefix string, log *slog.Logger) (server.Handler, error) {
	dot := static.DotfilesIgnore
	switch s.Dotfiles {
	case config.DotfilesAllow:
		dot = static.DotfilesAllow
	case config.DotfilesDeny:
		dot = static.DotfilesDeny
	}
	if prefix == "/" {
		prefix = ""
	}
	return static.New(static.Options{
		Root:           s.Root,
		Prefix:         prefix,
		Index:          s.Index,
		Browse:         s.Browse,
		Fallback:       s.Fallback,
		CacheControl:   s.CacheControl,
		FollowSymlinks: s.FollowSymlinks,
		Dotfiles:       dot,
		Logger:         log,
		OpenFileCache: static.CacheOptions{
			Max:        cacheMax(s.OpenFileCache.Max),
			Revalidate: cacheRevalidate(s.OpenFileCache.Revalidate),
		},
	})
}

// cacheMax maps the config's "0 disables" onto the static package's "negative disables".
func cacheMax(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// cacheRevalidate maps the config's "0 checks every request" onto the static
// package's negative value.
func cacheRevalidate(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
