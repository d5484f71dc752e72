package config

import (
	"fmt"
	"strconv"
	"time"

	"github.com/gale-server/gale/internal/os/listenaddr"
)

// Admin configures the admin listener, which serves /metrics, /status,
// /status.json, /healthz and /readyz. It is off while Listen is empty.
type Admin struct {
	// Listen is the admin listener's host:port; "" turns it off. An address
	// that is not loopback requires Token.
	Listen string `yaml:"listen"`
	// Token is the bearer token every admin request must carry in an
	// "Authorization: Bearer TOKEN" header; "" asks for none (loopback only).
	Token string `yaml:"token"`
	// Metrics configures /metrics.
	Metrics Metrics `yaml:"metrics"`
}

// Metrics configures the Prometheus metrics.
type Metrics struct {
	// Buckets are the upper bounds of the request duration histograms, in
	// increasing order.
	Buckets []time.Duration `yaml:"buckets"`
}

// MaxBuckets is the most histogram buckets Metrics.Buckets may list.
const MaxBuckets = 32

// MinTokenLength is the shortest admin token accepted.
const MinTokenLength = 16

// DefaultBuckets returns the default request duration buckets: 1ms to 10s.
func DefaultBuckets() []time.Duration {
	ms := time.Millisecond
	return []time.Duration{ms, 5 * ms, 10 * ms, 25 * ms, 50 * ms, 100 * ms, 250 * ms, 500 * ms,
		time.Second, 2500 * ms, 5 * time.Second, 10 * time.Second}
}

// AccessLog configures a server's access log.
type AccessLog struct {
	// Path is the file lines are appended to, LogStdout or LogStderr; ""
	// turns the log off. A relative path is resolved against the config
	// file's directory.
	Path string `yaml:"path" conf:"logpath"`
	// Format is AccessCombined or AccessJSON; "" means AccessCombined.
	Format string `yaml:"format"`
}

// Special values of AccessLog.Path.
const (
	LogStdout = "stdout"
	LogStderr = "stderr"
)

// Values of AccessLog.Format.
const (
	AccessCombined = "combined" // the nginx/Apache combined log format
	AccessJSON     = "json"     // one JSON object per line (docs/observability.md)
)

// ServerName returns the name of servers[i] used in metrics: its Name, or
// "server<i>".
func (c *Config) ServerName(i int) string {
	if n := c.Servers[i].Name; n != "" {
		return n
	}
	return "server" + strconv.Itoa(i)
}

// RouteName returns the name of routes[i] used in metrics: its Name, or
// "route<i>".
func (s *Server) RouteName(i int) string {
	if n := s.Routes[i].Name; n != "" {
		return n
	}
	return "route" + strconv.Itoa(i)
}

// admin checks the admin listener: a valid address that does not clash with
// a server's, a token when the address is not loopback, increasing buckets.
func (v *validator) admin(a *Admin) {
	if a.Listen != "" {
		ap, err := listenaddr.Resolve(a.Listen)
		switch {
		case err != nil:
			v.errorf("admin.listen", "%v", err)
		case !ap.Addr().IsLoopback() && a.Token == "":
			v.errorf("admin.listen", "%s is not a loopback address: set admin.token (at least %d characters) so that only its holders reach /metrics and /status, or listen on 127.0.0.1", a.Listen, MinTokenLength)
		default:
			for i, s := range v.c.Servers {
				for j, addr := range s.Listen {
					if sp, err := listenaddr.Resolve(addr); err == nil && listenaddr.Overlap(ap, sp) {
						v.errorf("admin.listen", "address %s overlaps servers[%d].listen[%d] (%s)", a.Listen, i, j, addr)
					}
				}
				if s.TLS == nil {
					continue
				}
				for j, addr := range s.TLS.RedirectHTTP {
					if sp, err := listenaddr.Resolve(addr); err == nil && listenaddr.Overlap(ap, sp) {
						v.errorf("admin.listen", "address %s overlaps servers[%d].tls.redirect_http[%d] (%s)", a.Listen, i, j, addr)
					}
				}
			}
		}
	}
	if a.Token != "" {
		if len(a.Token) < MinTokenLength {
			v.errorf("admin.token", "the token has %d characters; use at least %d", len(a.Token), MinTokenLength)
		}
		for _, c := range []byte(a.Token) {
			if c <= ' ' || c >= 0x7f {
				v.errorf("admin.token", "the token may hold only visible ASCII characters")
				break
			}
		}
	}
	if len(a.Metrics.Buckets) > MaxBuckets {
		v.errorf("admin.metrics.buckets", "%d buckets; at most %d", len(a.Metrics.Buckets), MaxBuckets)
	}
	for i, b := range a.Metrics.Buckets {
		p := fmt.Sprintf("admin.metrics.buckets[%d]", i)
		if b <= 0 {
			v.errorf(p, "must be greater than zero")
		} else if i > 0 && b <= a.Metrics.Buckets[i-1] {
			v.errorf(p, "%s is not greater than the bucket before it (%s): list buckets in increasing order", b, a.Metrics.Buckets[i-1])
		}
	}
}

// accessLog checks a server's access log: its format, and that its file can
// be opened as gale serve will, like nginx -t.
func (v *validator) accessLog(l *AccessLog, path string) {
	switch l.Format {
	case "", AccessCombined, AccessJSON:
	default:
		v.errorf(joinPath(path, "format"), "invalid value %q: expected one of %s, %s", l.Format, AccessCombined, AccessJSON)
	}
	switch l.Path {
	case "", LogStdout, LogStderr:
		return
	}
	v.fileToWrite(joinPath(path, "path"), l.Path)
}

// names checks server and route names: label-safe, and unique (server names
// across the config, route names within their server).
func (v *validator) names(servers []Server) {
	seen := map[string]string{}
	check := func(name, path string, seen map[string]string) {
		if name == "" {
			return
		}
		if !validName(name) {
			v.errorf(path, "invalid name %q: expected 1-64 letters, digits, '_', '-' or '.'", name)
		} else if prev, ok := seen[name]; ok {
			v.errorf(path, "name %q is already used by %s", name, prev)
		}
		seen[name] = parentPath(path)
	}
	for i := range servers {
		s := &servers[i]
		sp := fmt.Sprintf("servers[%d]", i)
		check(s.Name, joinPath(sp, "name"), seen)
		routes := map[string]string{}
		for j := range s.Routes {
			check(s.Routes[j].Name, fmt.Sprintf("%s.routes[%d].name", sp, j), routes)
		}
	}
}

// validName reports whether n can be a server or route name.
func validName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, c := range []byte(n) {
		if !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}
