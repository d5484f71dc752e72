package app

import (
	"fmt"
	"sync"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/pubsub"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/wsserver"
)

// hubSet holds an App's pub/sub hubs by name. It lives as long as the App, so a
// reload keeps topics, subscribers, history and offsets of the hubs it keeps.
type hubSet struct {
	mu   sync.Mutex // guards hubs
	hubs map[string]*hubEntry
}

type hubEntry struct {
	hub  *pubsub.Hub
	opts pubsub.Options
}

func newHubSet() *hubSet { return &hubSet{hubs: map[string]*hubEntry{}} }

// get returns the hub called name with opts, made now if there is none or if its
// options changed (then it starts afresh: new epochs, no history).
func (hs *hubSet) get(name string, opts pubsub.Options) *pubsub.Hub {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if e := hs.hubs[name]; e != nil && e.opts == opts {
		return e.hub
	}
	h := pubsub.New(opts)
	hs.hubs[name] = &hubEntry{hub: h, opts: opts}
	return h
}

// buildPubSub turns a pubsub action into its handler, on the hub it names.
func (env *actionEnv) buildPubSub(p *config.PubSub, prefix string) (server.Handler, error) {
	opts := pubsub.Options{
		Loops:       env.cfg.Loops(),
		Queue:       p.Queue,
		HistorySize: p.History.Size,
		HistoryTTL:  p.History.TTL,
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
	h := env.hubs.get(name, opts)
	if prefix == "" {
		prefix = "/"
	}
	ho := pubsub.HandlerOptions{
		Prefix:       prefix,
		PublishToken: p.PublishToken,
		MaxTopics:    p.MaxTopics,
		WebSocket: wsserver.Options{
			AllowedOrigins:  p.AllowedOrigins,
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
	if p.Topic == config.PubSubTopicProtocol {
		ho.Mode = pubsub.ProtocolMode
	}
	hd, err := pubsub.NewHandler(h, ho)
	if err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	return hd, nil
}
