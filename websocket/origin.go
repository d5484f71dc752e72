package websocket

import "bytes"

// originAllowed applies the Origin policy of HandshakeOptions.AllowedOrigins to the
// Origin field value origin of a request whose Host field is host.
func originAllowed(origin, host []byte, allowed []string) bool {
	scheme, hp, ok := parseOrigin(origin)
	if len(allowed) == 0 {
		return ok && sameHost(scheme, hp, host)
	}
	for _, a := range allowed {
		switch {
		case a == "*":
			return true
		case !ok:
			continue
		case bytes.Contains([]byte(a), []byte("://")):
			as, ahp, aok := parseOrigin([]byte(a))
			if aok && bytes.EqualFold(as, scheme) && sameHostPort(hp, defaultPort(scheme), ahp, defaultPort(as)) {
				return true
			}
		case sameHost(scheme, hp, []byte(a)):
			return true
		}
	}
	return false
}

// parseOrigin splits an Origin value "scheme://host[:port]" into its scheme and
// host[:port]. The opaque origin "null" and anything without a scheme and a host is not
// an origin.
func parseOrigin(o []byte) (scheme, hostport []byte, ok bool) {
	i := bytes.Index(o, []byte("://"))
	if i <= 0 || i+3 == len(o) {
		return nil, nil, false
	}
	scheme, hostport = o[:i], o[i+3:]
	if j := bytes.IndexByte(hostport, '/'); j >= 0 {
		hostport = hostport[:j]
	}
	return scheme, hostport, len(hostport) > 0
}

// sameHost reports whether an origin with scheme and host[:port] hp names the same host
// and port as the Host field value host, whose port defaults to the origin scheme's.
func sameHost(scheme, hp, host []byte) bool {
	d := defaultPort(scheme)
	return sameHostPort(hp, d, host, d)
}

// sameHostPort compares two host[:port] values, each with its default port, hosts without
// regard to case.
func sameHostPort(a []byte, da string, b []byte, db string) bool {
	ah, ap := splitHostPort(a)
	bh, bp := splitHostPort(b)
	if len(ap) == 0 {
		ap = []byte(da)
	}
	if len(bp) == 0 {
		bp = []byte(db)
	}
	return len(ah) > 0 && bytes.EqualFold(ah, bh) && bytes.Equal(ap, bp)
}

// splitHostPort splits "host:port", "[v6]:port", "host" or "[v6]".
func splitHostPort(hp []byte) (host, port []byte) {
	if len(hp) > 0 && hp[0] == '[' {
		i := bytes.IndexByte(hp, ']')
		if i < 0 {
			return hp, nil
		}
		if i+1 < len(hp) && hp[i+1] == ':' {
			return hp[:i+1], hp[i+2:]
		}
		return hp[:i+1], nil
	}
	if i := bytes.LastIndexByte(hp, ':'); i >= 0 {
		return hp[:i], hp[i+1:]
	}
	return hp, nil
}

// defaultPort returns the port a scheme implies, or "" for an unknown scheme.
func defaultPort(scheme []byte) string {
	switch {
	case bytes.EqualFold(scheme, []byte("http")), bytes.EqualFold(scheme, []byte("ws")):
		return "80"
	case bytes.EqualFold(scheme, []byte("https")), bytes.EqualFold(scheme, []byte("wss")):
		return "443"
	}
	return ""
}
