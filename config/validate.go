package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/internal/os/listenaddr"
	"github.com/gale-server/gale/static"
)

// Bounds enforced by Validate.
const (
	// maxHead bounds limits.request_line plus limits.header_bytes: the engine keeps at
	// most engine.MaxUnconsumed bytes of a request head that has not arrived whole, and
	// the rest of a head (CRLFs, leading empty lines) fits in the 1KiB left over.
	maxHead         = engine.MaxUnconsumed - 1<<10
	maxRequestLine  = maxHead - 1<<10 // largest limits.request_line
	maxHeaderBytes  = maxHead - 1<<10 // largest limits.header_bytes
	maxHeaderFields = 10000           // largest limits.header_fields
	// minZeroCopy and maxZeroCopy bound a zerocopy size that is not 0 (off).
	minZeroCopy = 4 << 10
	maxZeroCopy = 1 << 30
)

// Validate checks the whole configuration and returns every problem as an
// ErrorList, or nil. Problems in a parsed Config carry the position of the
// value they concern (or of the mapping that lacks a required key); those in
// a Config built in Go carry only their schema path. Validate also checks
// that every static root is an existing directory.
func (c *Config) Validate() error {
	return c.validate().errOrNil()
}

// validator collects the problems of one Config.
type validator struct {
	c    *Config
	errs ErrorList
	// hubs holds, by hub name, the first pubsub route of each hub (pubsubHub).
	hubs map[string]hubSeen
}

// errorf records a problem at schema path, positioned at the value there or
// at its nearest ancestor that has a position.
func (v *validator) errorf(path, format string, args ...any) {
	p := v.c.src.at(path)
	v.errs = append(v.errs, &Error{
		File: v.c.Name(), Line: p.line, Column: p.col,
		Path: path, Msg: fmt.Sprintf(format, args...),
	})
}

// maxLoops and maxProcesses bound workers and processes: beyond them a typo
// (processes: 100000) would fork or start threads until the machine gives out,
// and no machine gale runs on has more CPUs to spread them over (CPU ids in
// cpu_affinity run to 1023 too).
const (
	maxLoops     = 1024
	maxProcesses = 1024
)

// validate returns every problem of c, unsorted.
func (c *Config) validate() ErrorList {
	v := &validator{c: c}
	v.enums(reflect.ValueOf(c).Elem(), "")
	if c.Workers < 0 {
		v.errorf("workers", "must be a positive integer or auto, got %d", c.Workers)
	} else if c.Workers > maxLoops {
		v.errorf("workers", "%d is out of range 1-%d (or auto: one per CPU)", c.Workers, maxLoops)
	}
	if c.ZeroCopy != 0 && (c.ZeroCopy < minZeroCopy || c.ZeroCopy > maxZeroCopy) {
		v.errorf("zerocopy", "%s is out of range %s-%s (0 turns zero-copy off)", formatSize(c.ZeroCopy), formatSize(minZeroCopy), formatSize(maxZeroCopy))
	}
	if c.Processes < 1 {
		v.errorf("processes", "must be at least 1, got %d", c.Processes)
	} else if c.Processes > maxProcesses {
		v.errorf("processes", "%d is out of range 1-%d", c.Processes, maxProcesses)
	}
	v.affinity(c.CPUAffinity)
	v.timeouts(c.Timeouts)
	v.limits(c.Limits)
	v.admin(&c.Admin)
	v.upstreams(c.Upstreams)
	v.servers(c.Servers, len(c.TCP) > 0)
	v.tcp(c.TCP, c.serverAddrs())
	v.names(c.Servers)
	return v.errs
}

// enums checks every conf:"enum=..." field below val against its values.
func (v *validator) enums(val reflect.Value, path string) {
	switch val.Kind() {
	case reflect.Pointer:
		if !val.IsNil() {
			v.enums(val.Elem(), path)
		}
	case reflect.Slice:
		if val.Type().Elem().Kind() == reflect.Struct {
			for i := 0; i < val.Len(); i++ {
				v.enums(val.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case reflect.Map:
		if val.Type().Key().Kind() == reflect.String {
			for _, k := range val.MapKeys() {
				v.enums(val.MapIndex(k), joinPath(path, k.String()))
			}
		}
	case reflect.Struct:
		for _, f := range fieldsOf(val.Type()) {
			fv, fp := val.Field(f.index), joinPath(path, f.name)
			if f.opts.enum != nil && !slices.Contains(f.opts.enum, fv.String()) {
				v.errorf(fp, "invalid value %q: expected one of %s%s",
					fv.String(), strings.Join(f.opts.enum, ", "), didYouMean(fv.String(), f.opts.enum))
			}
			v.enums(fv, fp)
		}
	}
}

// affinity checks the CPU list: not empty, ids in range, none repeated.
func (v *validator) affinity(a CPUAffinity) {
	switch a.Mode {
	case AffinityAuto, AffinityOff:
	case AffinityList:
		if len(a.CPUs) == 0 {
			v.errorf("cpu_affinity", "the list of CPU ids is empty; write off to disable pinning")
		}
		for i, id := range a.CPUs {
			p := fmt.Sprintf("cpu_affinity[%d]", i)
			if id < 0 || id >= maxCPU {
				v.errorf(p, "CPU id %d is out of range 0-%d", id, maxCPU-1)
			} else if j := slices.Index(a.CPUs[:i], id); j >= 0 {
				v.errorf(p, "CPU %d is listed twice", id)
			}
		}
	default:
		v.errorf("cpu_affinity", "invalid mode %q: expected auto, off or list", a.Mode)
	}
}

// timeouts checks that no timeout is negative and that the connection
// timeouts are positive.
func (v *validator) timeouts(t Timeouts) {
	for _, d := range []struct {
		name     string
		value    int64
		positive bool
	}{
		{"header", int64(t.Header), true},
		{"idle", int64(t.Idle), true},
		{"body", int64(t.Body), true},
		{"write", int64(t.Write), true},
		{"response", int64(t.Response), true},
		{"shutdown_grace", int64(t.ShutdownGrace), false},
		{"upgrade_grace", int64(t.UpgradeGrace), false},
		{"defer_accept", int64(t.DeferAccept), false},
	} {
		switch {
		case d.value < 0:
			v.errorf("timeouts."+d.name, "must not be negative")
		case d.value == 0 && d.positive:
			v.errorf("timeouts."+d.name, "must be greater than zero")
		}
	}
	if t.DeferAccept > MaxDeferAccept {
		v.errorf("timeouts.defer_accept", "%s is longer than the %s maximum", t.DeferAccept, MaxDeferAccept)
	}
}

// limits checks each request limit against its bounds.
func (v *validator) limits(l Limits) {
	v.between("limits.request_line", l.RequestLine, 1, maxRequestLine, formatSize)
	v.between("limits.header_bytes", l.HeaderBytes, 1, maxHeaderBytes, formatSize)
	inRange := func(n, hi int64) bool { return n >= 1 && n <= hi }
	if inRange(l.RequestLine, maxRequestLine) && inRange(l.HeaderBytes, maxHeaderBytes) && l.RequestLine+l.HeaderBytes > maxHead {
		// Point at the one the file sets, header_bytes when it sets both.
		path := "limits.header_bytes"
		if v.c.src != nil {
			if _, set := v.c.src.pos[path]; !set {
				path = "limits.request_line"
			}
		}
		v.errorf(path, "request_line (%s) plus header_bytes (%s) is more than %s, the largest request head gale holds",
			formatSize(l.RequestLine), formatSize(l.HeaderBytes), formatSize(maxHead))
	}
	v.between("limits.header_fields", int64(l.HeaderFields), 1, maxHeaderFields, func(n int64) string { return strconv.FormatInt(n, 10) })
	if l.BodyBytes < 1 {
		v.errorf("limits.body_bytes", "must be at least 1 byte, got %s", formatSize(l.BodyBytes))
	}
}

// between checks lo <= n <= hi, writing numbers with format.
func (v *validator) between(path string, n, lo, hi int64, format func(int64) string) {
	if n < lo || n > hi {
		v.errorf(path, "%s is out of range %s-%s", format(n), format(lo), format(hi))
	}
}

// servers checks every server, its listen addresses (also across servers)
// and its routes.
func (v *validator) servers(servers []Server, haveTCP bool) {
	if len(servers) == 0 && !haveTCP {
		v.errorf("servers", "at least one server is required")
	}
	type use struct {
		addr   netip.AddrPort
		spell  string
		path   string
		server int
	}
	var uses []use
	for i, s := range servers {
		sp := fmt.Sprintf("servers[%d]", i)
		if len(s.Listen) == 0 {
			v.errorf(joinPath(sp, "listen"), "at least one listen address is required")
		}
		addrs, paths := s.Listen, make([]string, 0, len(s.Listen))
		for j := range s.Listen {
			paths = append(paths, fmt.Sprintf("%s.listen[%d]", sp, j))
		}
		if _, err := ParseCIDRs(s.AcceptProxy); err != nil {
			v.errorf(joinPath(sp, "accept_proxy"), "%v", err)
		}
		if s.TLS != nil {
			v.tls(sp, s.TLS)
			addrs = append(slices.Clip(addrs), s.TLS.RedirectHTTP...)
			for j := range s.TLS.RedirectHTTP {
				paths = append(paths, fmt.Sprintf("%s.tls.redirect_http[%d]", sp, j))
			}
		}
	listens:
		for j, addr := range addrs {
			lp := paths[j]
			ap, err := listenaddr.Resolve(addr)
			if err != nil {
				v.errorf(lp, "%v", err)
				continue
			}
			for _, u := range uses {
				switch {
				case !listenaddr.Overlap(ap, u.addr):
				case ap == u.addr:
					v.errorf(lp, "address %s is already used by %s (%s); serve several hosts from one server with match.host", addr, u.path, u.spell)
					continue listens
				case u.server != i:
					v.errorf(lp, "address %s overlaps %s of %s: connections would be split between the two servers; serve several hosts from one server with match.host", addr, u.spell, u.path)
					continue listens
				}
			}
			uses = append(uses, use{ap, addr, lp, i})
		}
		v.protocols(s.Protocols, s.TLS != nil, joinPath(sp, "protocols"))
		v.tlsProtocols(&s, joinPath(sp, "protocols"))
		if len(s.Routes) == 0 {
			v.errorf(joinPath(sp, "routes"), "at least one route is required")
		}
		for j := range s.Routes {
			v.route(&s.Routes[j], fmt.Sprintf("%s.routes[%d]", sp, j))
		}
		v.accessLog(&s.AccessLog, joinPath(sp, "access_log"))
	}
}

// validHostname reports whether h is a DNS name: dot-separated labels of
// letters, digits, hyphens and underscores, each 1-63 bytes, at most 253 in all.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// isAlnum reports whether c is an ASCII letter or digit.
func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// route checks that r has exactly one action, then its match and action.
func (v *validator) route(r *Route, path string) {
	v.match(&r.Match, joinPath(path, "match"))
	var actions []string
	var all []string
	val := reflect.ValueOf(r).Elem()
	for _, f := range fieldsOf(val.Type()) {
		if !f.opts.action {
			continue
		}
		all = append(all, f.name)
		if !val.Field(f.index).IsNil() {
			actions = append(actions, f.name)
		}
	}
	switch len(actions) {
	case 0:
		v.errorf(path, "route has no action: add one of %s", strings.Join(all, ", "))
	case 1:
	default:
		v.errorf(path, "route has %d actions (%s); a route takes exactly one", len(actions), strings.Join(actions, ", "))
	}
	if r.Respond != nil {
		v.respond(r.Respond, joinPath(path, "respond"))
	}
	if r.Static != nil {
		v.static(r.Static, joinPath(path, "static"))
	}
	if r.Proxy != nil {
		v.proxy(r.Proxy, joinPath(path, "proxy"))
	}
	if r.WebSocket != nil {
		v.websocket(r.WebSocket, joinPath(path, "websocket"))
	}
	if r.PubSub != nil {
		v.pubsub(r.PubSub, joinPath(path, "pubsub"))
		v.pubsubHub(r.PubSub, r.Match.Path, joinPath(path, "pubsub"))
	}
}

// match checks the request criteria of a route.
func (v *validator) match(m *Match, path string) {
	if m.Path != "" && m.PathExact != "" {
		v.errorf(joinPath(path, "path_exact"), "path and path_exact cannot both be set")
	}
	for _, p := range []struct{ key, value string }{{"path", m.Path}, {"path_exact", m.PathExact}} {
		if p.value != "" && !validURLPath(p.value) {
			v.errorf(joinPath(path, p.key), "invalid path %q: expected an absolute path starting with / without spaces, ? or #", p.value)
		} else if _, err := http1.NormalizePath(nil, []byte(p.value)); p.value != "" && err != nil {
			v.errorf(joinPath(path, p.key), "invalid path %q: %s (request paths are matched after normalization, see docs/routing.md)", p.value, err.Reason)
		}
	}
	if m.Host != "" {
		h := strings.TrimPrefix(m.Host, "*.")
		if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err != nil && !validHostname(h) {
			v.errorf(joinPath(path, "host"), "invalid host %q: expected a host name like example.com or *.example.com", m.Host)
		}
	}
	for i, method := range m.Methods {
		mp := fmt.Sprintf("%s.method[%d]", path, i)
		if !http1.IsToken(method) {
			v.errorf(mp, "invalid method %q: expected a token like GET or POST", method)
		} else if slices.Contains(m.Methods[:i], method) {
			v.errorf(mp, "method %s is listed twice", method)
		}
	}
}

// validURLPath reports whether p can be compared with request paths: it
// starts with "/" and holds only visible ASCII other than "?" and "#".
func validURLPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for _, c := range []byte(p) {
		if c <= ' ' || c >= 0x7f || c == '?' || c == '#' {
			return false
		}
	}
	return true
}

// serverHeaders are computed by the server and may not be configured.
var serverHeaders = []string{"content-length", "transfer-encoding", "connection"}

// respond checks the status, body and headers of a fixed response.
func (v *validator) respond(r *Respond, path string) {
	sp := joinPath(path, "status")
	switch {
	case r.Status < 200 || r.Status > 599:
		v.errorf(sp, "invalid status %d: expected a final status code from 200 to 599", r.Status)
	case (r.Status == 204 || r.Status == 304) && r.Body != "":
		v.errorf(joinPath(path, "body"), "a %d response cannot have a body", r.Status)
	}
	names := make([]string, 0, len(r.Headers))
	for name := range r.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	seen := make(map[string]string)
	for _, name := range names {
		hp := joinPath(joinPath(path, "headers"), name)
		lower := strings.ToLower(name)
		switch {
		case !http1.IsToken(name):
			v.errorf(hp, "invalid header name %q", name)
		case slices.Contains(serverHeaders, lower):
			v.errorf(hp, "header %s is set by the server and cannot be configured", name)
		case seen[lower] != "":
			v.errorf(hp, "header %s repeats %s (header names are case-insensitive)", name, seen[lower])
		case !http1.ValidFieldValue(r.Headers[name]):
			v.errorf(hp, "header %s has a value with control characters", name)
		}
		seen[lower] = name
	}
}

// static checks a file-serving action; its root must be an existing directory.
func (v *validator) static(s *Static, path string) {
	rp := joinPath(path, "root")
	if s.Root == "" {
		v.errorf(rp, "root is required")
	} else if fi, err := os.Stat(s.Root); err != nil {
		v.errorf(rp, "root %s: %v", s.Root, unwrapPathError(err))
	} else if !fi.IsDir() {
		v.errorf(rp, "root %s is not a directory", s.Root)
	}
	// Index and fallback are checked with the static package's own rules, so a
	// configuration that passes here is one static.New accepts at start or reload.
	for i, name := range s.Index {
		if !static.ValidIndexName(name) {
			v.errorf(fmt.Sprintf("%s.index[%d]", path, i), "invalid index file name %q: expected a file name without / or \\", name)
		}
	}
	if s.Fallback != "" && (!validURLPath(s.Fallback) || slices.Contains(strings.Split(s.Fallback, "/"), "..") || !static.ValidFallback(s.Fallback)) {
		v.errorf(joinPath(path, "fallback"), "invalid fallback %q: expected the path of a file below root, starting with /, like /index.html", s.Fallback)
	}
	if !http1.ValidFieldValue(s.CacheControl) {
		v.errorf(joinPath(path, "cache_control"), "value has control characters")
	}
	if s.OpenFileCache.Max < 0 {
		v.errorf(joinPath(path, "open_file_cache.max"), "must not be negative")
	}
	if s.OpenFileCache.Revalidate < 0 {
		v.errorf(joinPath(path, "open_file_cache.revalidate"), "must not be negative")
	}
}

// unwrapPathError drops the operation and path from an *os.PathError, which
// the message already names.
// fileToWrite checks that file, the value at key, names a file gale can
// open for writing at start: an existing file that is not a directory, or a
// new one in an existing directory.
func (v *validator) fileToWrite(key, file string) {
	fi, err := os.Stat(file)
	switch {
	case err == nil && fi.IsDir():
		v.errorf(key, "%s is a directory: expected a file to write", file)
	case err == nil:
	case !errors.Is(err, fs.ErrNotExist):
		v.errorf(key, "%s: %v", file, unwrapPathError(err))
	default:
		dir := filepath.Dir(file)
		if di, err := os.Stat(dir); err != nil {
			v.errorf(key, "cannot create %s: directory %s: %v", file, dir, unwrapPathError(err))
		} else if !di.IsDir() {
			v.errorf(key, "cannot create %s: %s is not a directory", file, dir)
		}
	}
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// protocols checks a server's protocol list: known names, each once, and http1 or
// h2c among them (over TLS, where h2c is refused, http1). An empty list (a config
// built in Go) means the default, http1.
func (v *validator) protocols(ps []string, tls bool, path string) {
	known := []string{ProtoHTTP1, ProtoH2C, ProtoH2}
	for i, p := range ps {
		pp := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case !slices.Contains(known, p):
			v.errorf(pp, "invalid value %q: expected one of %s%s", p, strings.Join(known, ", "), didYouMean(p, known))
		case slices.Contains(ps[:i], p):
			v.errorf(pp, "protocol %q is listed twice", p)
		}
	}
	switch {
	case len(ps) == 0 || slices.Contains(ps, ProtoHTTP1) || slices.Contains(ps, ProtoH2C):
	case tls:
		v.errorf(path, "must include %q: over TLS it serves the clients that do not choose %q with ALPN", ProtoHTTP1, ProtoH2)
	default:
		v.errorf(path, "must include %q or %q", ProtoHTTP1, ProtoH2C)
	}
}
