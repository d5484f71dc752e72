package l4

import (
	"sort"
	"strings"
)

// router picks an upstream group by TLS server name. It is immutable once built.
type router struct {
	exact map[string]Balancer // lower-case names
	wild  []wildRoute         // longest suffix first
	def   Balancer            // names without a route, and hellos without a name; may be nil
}

// wildRoute routes every name that ends in suffix (".b.example" for "*.b.example").
type wildRoute struct {
	suffix string
	bal    Balancer
}

// add routes key ("a.example", "*.b.example" or "default") to b. Names are
// compared as ServerName reports them: lower-cased, without a trailing dot (a
// key written "a.example." or "*.B.example" routes like "a.example" and
// "*.b.example"; before, a trailing dot made a key that matched nothing).
// Only "default" itself is the default route.
func (r *router) add(key string, b Balancer) {
	if key == "default" {
		r.def = b
		return
	}
	key = strings.TrimSuffix(strings.ToLower(key), ".")
	switch {
	case strings.HasPrefix(key, "*."):
		r.wild = append(r.wild, wildRoute{key[1:], b})
		sort.SliceStable(r.wild, func(i, j int) bool { return len(r.wild[i].suffix) > len(r.wild[j].suffix) })
	default:
		if r.exact == nil {
			r.exact = map[string]Balancer{}
		}
		r.exact[key] = b
	}
}

// match returns the group for a lower-case server name ("" when the hello had
// none), or nil when there is no route.
func (r *router) match(name string) Balancer {
	if b, ok := r.exact[name]; ok {
		return b
	}
	for _, w := range r.wild {
		if len(name) > len(w.suffix) && strings.HasSuffix(name, w.suffix) {
			return w.bal
		}
	}
	return r.def
}
