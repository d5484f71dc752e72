package static

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/http1"
)

// Symlink policies accepted by Options.FollowSymlinks.
const (
	// SymlinksInsideRoot follows a symbolic link only when the file it finally names
	// lies beneath the root directory. It is the default.
	SymlinksInsideRoot = "inside_root"
	// SymlinksAlways follows every symbolic link, wherever it points. Only ".."
	// segments in the request path are still refused.
	SymlinksAlways = "always"
	// SymlinksNever refuses any path with a symbolic link in any component.
	SymlinksNever = "never"
)

// Dotfile policies accepted by Options.Dotfiles.
const (
	// DotfilesDeny answers 403 for any path with a segment that starts with a dot,
	// except ".well-known" (RFC 8615). It is the default.
	DotfilesDeny = "deny"
	// DotfilesIgnore treats such paths as missing: 404, or the fallback file.
	DotfilesIgnore = "ignore"
	// DotfilesAllow serves dotfiles like any other file.
	DotfilesAllow = "allow"
)

// dotfilePolicy is the parsed Options.Dotfiles.
type dotfilePolicy uint8

const (
	dotDeny dotfilePolicy = iota
	dotIgnore
	dotAllow
)

// Defaults applied by New to zero-valued options.
const (
	DefaultCacheMax        = 10000
	DefaultCacheRevalidate = time.Second
)

// Options configures a Handler. The zero value of every field except Root selects
// the documented default.
type Options struct {
	// Root is the directory served. It must exist and be a directory; symbolic
	// links in Root itself are resolved once by New.
	Root string
	// Prefix is the URL path the handler is mounted at (a route's match.path, such as
	// "/assets/"). It is removed from the start of the raw request path before the
	// lookup below Root ("/assets/app.js" → Root/app.js; a remainder that does not
	// start with '/' gets one, so prefix "/files" serves "/filesa.txt" as Root/a.txt),
	// and it is put back in front of redirect targets and listing titles. A request
	// path without the prefix is answered 404, and so is one whose remainder starts
	// with a "." or ".." segment ("/files../x", which would name Root/../x). Empty
	// means "/": the whole path is looked up.
	Prefix string
	// Index lists the file names tried, in order, for a request path that ends in
	// '/'. nil means {"index.html"}; an empty non-nil slice disables index files.
	Index []string
	// Browse enables directory listings for directories without an index file:
	// HTML by default, JSON when the request's Accept prefers application/json.
	Browse bool
	// Fallback is a request path (for example "/index.html") served with status 200
	// when the requested file does not exist, like nginx's try_files $uri /index.html.
	// Empty disables it.
	Fallback string
	// CacheControl, when not empty, is sent as the Cache-Control field of file
	// responses (200, 206 and 304).
	CacheControl string
	// FollowSymlinks is one of SymlinksInsideRoot (default), SymlinksAlways or
	// SymlinksNever.
	FollowSymlinks string
	// Dotfiles is DotfilesDeny (default), DotfilesIgnore or DotfilesAllow.
	Dotfiles string
	// OpenFileCache sizes the open-file cache.
	OpenFileCache CacheOptions
	// Logger receives a line for each request answered 500 because of an unexpected
	// system error, with the path and the error. nil means slog.Default().
	Logger *slog.Logger
}

// CacheOptions sizes the open-file cache of a Handler.
type CacheOptions struct {
	// Max is the number of cached entries (files and precompressed variants) for
	// the whole Handler, shared by all loops. 0 means DefaultCacheMax; a negative
	// value disables the cache, so every request opens and closes its file.
	// (config's "max: 0 disables" therefore maps to a negative Max here.)
	Max int
	// Revalidate is how long a cached entry is trusted before its file is opened
	// and compared again. 0 means DefaultCacheRevalidate; a negative value checks
	// on every request (config's "revalidate: 0").
	Revalidate time.Duration
}

// Handler serves files beneath one root directory. It is safe for concurrent use by
// every event loop: its only mutable state is the open-file cache, which is guarded
// by sharded mutexes, and the multipart boundary counter, which is atomic.
type Handler struct {
	res          resolver      // immutable after New
	cache        *fileCache    // internally synchronised
	index        []string      // immutable after New
	browse       bool          // immutable after New
	fallback     string        // cleaned relative path; immutable after New
	hasFallback  bool          // immutable after New
	dotfiles     dotfilePolicy // immutable after New
	prefix       string        // Options.Prefix; immutable after New
	urlBase      string        // prefix without its trailing '/'; immutable after New
	cacheControl string        // immutable after New
	log          *slog.Logger  // immutable after New

	boundaryPrefix string        // random per Handler; immutable after New
	boundarySeq    atomic.Uint64 // shared by all loops; atomic
}

// New validates opts, opens the root directory and returns a Handler. It fails when
// the root does not exist or is not a directory, or when an option has an invalid
// value.
func New(opts Options) (*Handler, error) {
	h := &Handler{browse: opts.Browse, log: opts.Logger}
	if h.log == nil {
		h.log = slog.Default()
	}
	if opts.Root == "" {
		return nil, errors.New("static: Root is required")
	}
	abs, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("static: root %q: %w", opts.Root, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("static: root %q: %w", opts.Root, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("static: root %q: %w", opts.Root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("static: root %q is not a directory", opts.Root)
	}
	policy, err := parseSymlinkPolicy(opts.FollowSymlinks)
	if err != nil {
		return nil, err
	}
	switch opts.Dotfiles {
	case "", DotfilesDeny:
		h.dotfiles = dotDeny
	case DotfilesIgnore:
		h.dotfiles = dotIgnore
	case DotfilesAllow:
		h.dotfiles = dotAllow
	default:
		return nil, fmt.Errorf("static: Dotfiles %q: want %q, %q or %q", opts.Dotfiles, DotfilesDeny, DotfilesIgnore, DotfilesAllow)
	}
	if opts.Prefix != "" {
		if !validPrefix(opts.Prefix) {
			return nil, fmt.Errorf("static: Prefix %q must start with '/' and hold no space, control byte, '?', '#' or backslash", opts.Prefix)
		}
		norm, perr := http1.NormalizePath(nil, []byte(opts.Prefix))
		if perr != nil {
			return nil, fmt.Errorf("static: Prefix %q: %s", opts.Prefix, perr.Reason)
		}
		h.prefix = string(norm)
		h.urlBase = strings.TrimSuffix(string(http1.AppendEscapedPath(nil, norm)), "/")
	}
	if h.index, err = validIndex(opts.Index); err != nil {
		return nil, err
	}
	if opts.Fallback != "" {
		if !ValidFallback(opts.Fallback) {
			return nil, fmt.Errorf("static: Fallback %q is not a file path such as /index.html", opts.Fallback)
		}
		p, _ := cleanPath([]byte(opts.Fallback))
		h.fallback, h.hasFallback = p.rel, true
	}
	if !http1.ValidFieldValue(opts.CacheControl) {
		return nil, fmt.Errorf("static: CacheControl %q contains characters not allowed in a header field", opts.CacheControl)
	}
	h.cacheControl = opts.CacheControl
	max, reval := opts.OpenFileCache.Max, opts.OpenFileCache.Revalidate
	if max == 0 {
		max = DefaultCacheMax
	}
	switch {
	case reval < 0:
		reval = 0
	case reval == 0:
		reval = DefaultCacheRevalidate
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("static: boundary: %w", err)
	}
	h.boundaryPrefix = "gale" + hex.EncodeToString(rnd[:])
	// The mime package loads the system tables on first use; pay that here, not on a loop.
	mime.TypeByExtension(".html")
	if h.res, err = openResolver(real, policy); err != nil {
		return nil, err
	}
	// Descriptors held by the cache are capped at a quarter of the process's limit,
	// whatever max says, so cached files never leave connections (or the next file)
	// without one.
	h.cache = newFileCache(max, descriptorLimit()/4, reval, h.loadCandidate)
	return h, nil
}

// Close empties the open-file cache and closes the root directory. Files still being
// sent stay open until their sends finish. Call it only once no more requests are
// routed to the Handler. A Handler dropped without Close (as a configuration reload
// drops the ones it replaces) gives its descriptors back when it is garbage-collected.
func (h *Handler) Close() error {
	h.cache.close()
	return h.res.close()
}

func parseSymlinkPolicy(s string) (symlinkPolicy, error) {
	switch s {
	case "", SymlinksInsideRoot:
		return followInsideRoot, nil
	case SymlinksAlways:
		return followAlways, nil
	case SymlinksNever:
		return followNever, nil
	}
	return 0, fmt.Errorf("static: FollowSymlinks %q: want %q, %q or %q", s, SymlinksInsideRoot, SymlinksAlways, SymlinksNever)
}

// ValidFallback reports whether New accepts p as Options.Fallback: a request path that
// normalizes (http1.NormalizePath) to a file below the root, not to a directory. The
// configuration's validation uses it, so "gale check" refuses what New would.
func ValidFallback(p string) bool {
	c, status := cleanPath([]byte(p))
	return status == 0 && !c.dir && c.rel != ""
}

// ValidIndexName reports whether New accepts name in Options.Index: a plain file
// name, not "." or "..", without '/', backslash or NUL.
func ValidIndexName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00")
}

func validIndex(names []string) ([]string, error) {
	if names == nil {
		return []string{"index.html"}, nil
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !ValidIndexName(n) {
			return nil, fmt.Errorf("static: Index name %q must be a plain file name", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// validPrefix reports whether p can be a mount prefix: it starts with '/' and holds
// only visible ASCII other than '?', '#' and backslash. Repeated slashes are allowed
// ("//assets/" is "/assets/", as routing normalizes it): redirects and listing
// titles are built from the normalized prefix, so they are never protocol-relative.
func validPrefix(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '\\' {
			return false
		}
	}
	return true
}
