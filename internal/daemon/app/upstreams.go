package app

import (
	"reflect"
	"sort"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/proxy"
)

// upstreamSet is the named upstreams one configuration built, with the settings
// each was built from, so that a reload keeps every upstream whose settings did
// not change (its pooled connections and health state with it). Immutable once
// built.
type upstreamSet struct {
	byName map[string]*proxy.Upstream
	conf   map[string]*config.Upstream
}

func newUpstreamSet() *upstreamSet {
	return &upstreamSet{byName: map[string]*proxy.Upstream{}, conf: map[string]*config.Upstream{}}
}

// reuse returns the previous configuration's upstream name when its settings
// equal cu, else nil.
func (s *upstreamSet) reuse(name string, cu *config.Upstream) *proxy.Upstream {
	if s == nil || s.byName[name] == nil || !reflect.DeepEqual(s.conf[name], cu) {
		return nil
	}
	return s.byName[name]
}

// groups returns the health groups of the set, by upstream name.
func (s *upstreamSet) groups() []*health.Group {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*health.Group
	for _, n := range names {
		if g := s.byName[n].Health(); g != nil {
			out = append(out, g)
		}
	}
	return out
}

// start starts the health groups that prev did not have on home (one checker
// per group for the instance) and stops prev's groups that s no longer has.
func (s *upstreamSet) start(home *engine.Loop, prev *upstreamSet) {
	had := map[*health.Group]bool{}
	for _, g := range prev.groups() {
		had[g] = true
	}
	keep := map[*health.Group]bool{}
	for _, g := range s.groups() {
		keep[g] = true
		if !had[g] {
			g.Start(home)
		}
	}
	for g := range had {
		if !keep[g] {
			g.Stop()
		}
	}
}

// healthGroup builds the health group of a configured upstream, or nil when it
// configures no health check, outlier detection, breaker or limit.
func healthGroup(name string, cu *config.Upstream, o *proxy.UpstreamOptions) (*health.Group, error) {
	if cu.HealthCheck == nil && cu.OutlierDetection == nil && cu.CircuitBreaker == nil && cu.Limits == (config.ServerLimits{}) {
		return nil, nil
	}
	ho := health.Options{Name: name, Logger: o.Logger, Limits: health.Limits{
		MaxConnections: cu.Limits.MaxConnections, MaxPending: cu.Limits.MaxPending, MaxInFlight: cu.Limits.MaxInFlight,
	}}
	for i, s := range o.Servers {
		ho.Servers = append(ho.Servers, s.Addr)
		ho.Weights = append(ho.Weights, s.Weight)
		if i < len(cu.Servers) {
			ho.Names = append(ho.Names, cu.Servers[i].Address)
		}
	}
	if h := cu.HealthCheck; h != nil {
		lo, hi, err := h.HTTP.StatusRange()
		if err != nil {
			return nil, err
		}
		ho.Check = &health.CheckOptions{Type: h.Type, Interval: h.Interval, Timeout: h.Timeout, Jitter: h.Jitter, Rise: h.Rise, Fall: h.Fall,
			HTTP: health.HTTPCheck{Method: h.HTTP.Method, Path: h.HTTP.Path, Host: h.HTTP.Host, StatusMin: lo, StatusMax: hi, BodyContains: h.HTTP.BodyContains}}
	}
	if od := cu.OutlierDetection; od != nil {
		ho.Outlier = &health.OutlierOptions{Consecutive5xx: od.Consecutive5xx, ConsecutiveGatewayFailure: od.ConsecutiveGatewayFailure,
			BaseEjectionTime: od.BaseEjectionTime, MaxEjectionTime: max(od.MaxEjectionTime, od.BaseEjectionTime),
			MaxEjectionPercent: od.MaxEjectionPercent, SlowStart: od.SlowStart}
	}
	if b := cu.CircuitBreaker; b != nil {
		ho.Breaker = &health.BreakerOptions{Window: max(b.Window, 10*time.Millisecond), MinRequests: b.MinRequests,
			FailureRatio: float64(b.FailureRatio) / 100, OpenFor: b.OpenFor, HalfOpenProbes: b.HalfOpenProbes}
	}
	return health.New(ho)
}

// healthGroups returns the running configuration's health groups; safe from any
// goroutine.
func (a *App) healthGroups() []*health.Group { return a.ups.Load().groups() }
