package app

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/metrics"
	"github.com/gale-server/gale/pubsub"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/wsserver"
)

// hubSet holds an App's pub/sub hubs by name. It lives as long as the App, so a
// reload keeps topics, subscribers, history and offsets of the hubs it keeps.
type hubSet struct {
	mu   sync.Mutex // guards hubs
	hubs map[string]*hubEntry
	log  *slog.Logger // the App's logger, set once before the first build; nil: slog.Default
}

type hubEntry struct {
	hub     *pubsub.Hub
	opts    pubsub.Options
	cluster config.PubSubCluster
	file    string             // history.file: the snapshot written at close; "" for none
	bridge  *pubsub.NATSBridge // nil without a cluster
}

func newHubSet() *hubSet { return &hubSet{hubs: map[string]*hubEntry{}} }

// get returns the hub called name with opts and cluster, made now if there is none
// or if its settings changed (then it starts afresh: new epochs, no history, and
// the old hub's NATS connection closes once the new one is made).
// A new hub with a snapshot file restores the snapshot's topics (a failure to is
// logged and the hub starts afresh).
func (hs *hubSet) get(name string, opts pubsub.Options, cluster config.PubSubCluster, file string, log *slog.Logger) (*pubsub.Hub, error) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	old := hs.hubs[name]
	if old != nil && sameHub(old.opts, opts) && old.cluster == cluster && old.file == file {
		if old.opts.MaxTopics != opts.MaxTopics {
			old.hub.SetMaxTopics(opts.MaxTopics) // a new limit keeps the topics
			old.opts.MaxTopics = opts.MaxTopics
		}
		return old.hub, nil
	}
	e := &hubEntry{hub: pubsub.New(opts), opts: opts, cluster: cluster, file: file}
	if file != "" && (old == nil || old.file != file) {
		n, err := e.hub.LoadSnapshot(file)
		if err != nil {
			log.Warn("pubsub: snapshot not restored, topics start new epochs", "hub", name, "err", err)
		} else if n > 0 {
			log.Info("pubsub: snapshot restored", "hub", name, "file", file, "topics", n)
		}
	}
	if cluster.NATS != "" {
		b, err := pubsub.NewNATSBridge(e.hub, cluster.NATS, hubSubject(cluster.Subject, name), log)
		if err != nil {
			return nil, err
		}
		e.bridge = b
	}
	if old != nil && old.bridge != nil {
		old.bridge.Close()
	}
	if old != nil {
		old.hub.Close() // its sweeper; clients still on it keep being served
	}
	hs.hubs[name] = e
	return e.hub, nil
}

// sameHub reports whether a hub made with options a can serve as one with b: they
// differ at most in MaxTopics, which a running hub changes in place.
func sameHub(a, b pubsub.Options) bool {
	a.MaxTopics, b.MaxTopics = 0, 0
	return a == b
}

// hubSubject returns the NATS subject prefix of the hub called name: the configured
// subject followed by the hex encoding of the name. Hubs of different names thus never
// hear each other's topics, even when they share the NATS server and the subject (the
// default), while the hubs of one name on every instance still join.
func hubSubject(subject, name string) string {
	return subject + "." + hex.EncodeToString([]byte(name))
}

// samples adds every hub's presence and counters (a metrics.Extra).
func (hs *hubSet) samples(add func(metrics.Sample)) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for name, e := range hs.hubs {
		st := e.hub.Stats()
		metrics.PubSubSamples(name, uint64(st.Topics), uint64(st.Subscribers), st.Published, st.Delivered, st.Dropped, st.Closed, add)
	}
}

// close closes every hub's NATS connection, then writes the snapshot of every hub
// that has a history.file. Call it after the server stopped.
func (hs *hubSet) close(log *slog.Logger) error {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	var errs []error
	for name, e := range hs.hubs {
		e.hub.Close()
		if e.bridge != nil {
			e.bridge.Close()
		}
		if e.file == "" {
			continue
		}
		n, err := e.hub.SaveSnapshot(e.file)
		if err != nil {
			errs = append(errs, fmt.Errorf("pubsub hub %s: snapshot: %w", name, err))
			continue
		}
		log.Info("pubsub: snapshot written", "hub", name, "file", e.file, "topics", n)
	}
	return errors.Join(errs...)
}

// buildPubSub turns a pubsub action into its handler, on the hub it names.
func (env *actionEnv) buildPubSub(p *config.PubSub, prefix string) (server.Handler, error) {
	opts := pubsub.Options{
		Loops:       env.cfg.Loops(),
		Queue:       p.Queue,
		HistorySize: p.History.Size,
		HistoryTTL:  p.History.TTL,
		MaxTopics:   p.MaxHubTopics,
	}
	if p.SlowPolicy == "close" {
		opts.Policy = pubsub.Close
	}
	name := p.Hub
	if name == "" {
		name = prefix
	}
	if env.hubs == nil {
		env.hubs = newHubSet() // a router built without an App (tests)
	}
	file := p.History.File
	if file != "" && env.statsPath != "" {
		file = fmt.Sprintf("%s.%d", file, env.statsSlot) // one file per worker process
	}
	log := env.hubs.log
	if log == nil {
		log = slog.Default()
	}
	h, err := env.hubs.get(name, opts, p.Cluster, file, log)
	if err != nil {
		return nil, fmt.Errorf("pubsub.cluster: %w", err)
	}
	if prefix == "" {
		prefix = "/"
	}
	ho := pubsub.HandlerOptions{
		Prefix:       prefix,
		PublishToken: p.PublishToken,
		MaxTopics:    p.MaxTopics,
		WebSocket: wsserver.Options{
			AllowedOrigins:  p.AllowedOrigins,
			Compression:     p.Compression,
			MaxMessageBytes: p.MaxMessageBytes,
			PingInterval:    offIfZero(p.PingInterval),
			IdleTimeout:     offIfZero(p.IdleTimeout),
		},
	}
	if p.JWT.SecretFile != "" || p.JWT.PublicKeyFile != "" {
		key, err := pubsub.LoadJWTKey(p.JWT.SecretFile, p.JWT.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("pubsub.jwt: %w", err)
		}
		if ho.Auth, err = pubsub.NewJWTAuth(key); err != nil {
			return nil, fmt.Errorf("pubsub.jwt: %w", err)
		}
	}
	if a := p.AuthRequest; a.URL != "" {
		ho.Callout = pubsub.NewCallout(pubsub.CalloutOptions{URL: a.URL, Timeout: a.Timeout, CacheTTL: a.Cache, CacheEntries: a.CacheEntries})
	}
	if p.Topic == config.PubSubTopicProtocol {
		ho.Mode = pubsub.ProtocolMode
	}
	hd, err := pubsub.NewHandler(h, ho)
	if err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	return hd, nil
}
