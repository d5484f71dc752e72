package config

import (
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/gale-server/gale/pubsub"
)

// Bounds of the pubsub action enforced by Validate.
const (
	maxPubSubQueue   = 1 << 20 // largest pubsub.queue (messages)
	maxPubSubHistory = 1 << 20 // largest pubsub.history.size
	maxPubSubTopics  = 1 << 16 // largest pubsub.max_topics
	maxHubTopics     = 1 << 24 // largest pubsub.max_hub_topics
)

// Values of PubSub.Topic.
const (
	PubSubTopicPath     = "path"     // every client of a path is on the path's topic
	PubSubTopicProtocol = "protocol" // the JSON protocol names topics
)

// PubSub serves a publish/subscribe hub on the route's path (docs/pubsub.md):
// WebSocket clients, SSE subscribers, HTTP publishing and presence.
type PubSub struct {
	// Topic is how WebSocket clients name topics: "path" (the path below the route's
	// prefix is the topic; what a client sends reaches the others) or "protocol"
	// (the JSON protocol, any number of topics per connection).
	Topic string `yaml:"topic" conf:"enum=path|protocol"`
	// Hub names the hub; routes naming the same hub share its topics. "" is the
	// route's match path. A hub lives across reloads with its history and offsets.
	Hub string `yaml:"hub"`
	// Queue is the most messages a subscriber may have waiting beyond its socket
	// queue (the per-subscriber high-water mark).
	Queue int `yaml:"queue"`
	// SlowPolicy applies when a subscriber's queue is full: drop_oldest or close.
	SlowPolicy string `yaml:"slow_policy" conf:"enum=drop_oldest|close"`
	// History keeps each topic's last messages for recovery.
	History PubSubHistory `yaml:"history"`
	// PublishToken is a bearer token allowed to publish over HTTP; "" means none.
	PublishToken string `yaml:"publish_token"`
	// JWT, when a key is set, requires a token for every connection and checks its
	// claims for each subscribe and publish.
	JWT PubSubJWT `yaml:"jwt"`
	// AuthRequest, when its URL is set, authorises every connection and HTTP
	// publish by a GET to an operator's endpoint (nginx auth_request style).
	AuthRequest PubSubAuthRequest `yaml:"auth_request"`
	// Cluster bridges the hub's topics to other instances.
	Cluster PubSubCluster `yaml:"cluster"`
	// MaxMessageBytes bounds one published message.
	MaxMessageBytes int64 `yaml:"max_message_bytes" conf:"size"`
	// MaxTopics bounds the subscriptions of one protocol connection.
	MaxTopics int `yaml:"max_topics"`
	// MaxHubTopics bounds the topics the hub holds at once: a subscribe, SSE
	// request or publish that would create one more is refused (hub_full, 503).
	MaxHubTopics int `yaml:"max_hub_topics"`
	// Compression negotiates permessage-deflate without server context takeover; a
	// message is compressed once for all such subscribers.
	Compression bool `yaml:"compression"`
	// AllowedOrigins lists the Origin values accepted in WebSocket handshakes.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// PingInterval and IdleTimeout are the WebSocket keep-alive timers; 0 disables.
	PingInterval time.Duration `yaml:"ping_interval"`
	IdleTimeout  time.Duration `yaml:"idle_timeout"`
}

// PubSubHistory configures the per-topic history ring.
type PubSubHistory struct {
	// Size is how many messages each topic keeps; 0 keeps none (no recovery).
	Size int `yaml:"size"`
	// TTL drops kept messages older than this; 0 keeps them until Size pushes them out.
	TTL time.Duration `yaml:"ttl"`
	// File, when set, is where the hub's epochs, offsets and kept messages are
	// written at shutdown and read back (then removed) at start, so clients recover
	// across a restart; "" keeps them in memory only. Needs size > 0.
	File string `yaml:"file" conf:"path"`
}

// PubSubJWT configures token checks. Exactly one key kind may be set.
type PubSubJWT struct {
	// SecretFile holds the HS256 shared secret.
	SecretFile string `yaml:"secret_file" conf:"path"`
	// PublicKeyFile holds a PEM RSA (RS256) or ECDSA P-256 (ES256) public key.
	PublicKeyFile string `yaml:"public_key_file" conf:"path"`
}

// PubSubAuthRequest configures the HTTP callout that authorises clients.
type PubSubAuthRequest struct {
	// URL is the endpoint (http:// or https://); "" means no callout.
	URL string `yaml:"url"`
	// Timeout bounds one call; past it the client gets 503.
	Timeout time.Duration `yaml:"timeout"`
	// Cache is how long an answer is reused for the same credentials; 0 disables.
	Cache time.Duration `yaml:"cache"`
	// CacheEntries bounds the cache.
	CacheEntries int `yaml:"cache_entries"`
}

// PubSubCluster configures the NATS bridge.
type PubSubCluster struct {
	// NATS is the server URL ("nats://127.0.0.1:4222"); "" means no cluster.
	NATS string `yaml:"nats"`
	// Subject is the prefix of the NATS subjects; a topic's messages travel on
	// Subject + "." + the hub name's hex encoding + "." + the topic's hex encoding.
	Subject string `yaml:"subject"`
}

// SetDefaults sets every field of p to its default.
func (p *PubSub) SetDefaults() {
	*p = PubSub{
		Topic:           PubSubTopicProtocol,
		Queue:           1024,
		SlowPolicy:      "drop_oldest",
		MaxMessageBytes: 64 << 10,
		MaxTopics:       100,
		MaxHubTopics:    pubsub.DefaultMaxTopics,
		AllowedOrigins:  []string{},
		PingInterval:    30 * time.Second,
		IdleTimeout:     60 * time.Second,
		Cluster:         PubSubCluster{Subject: "gale.pubsub"},
		AuthRequest:     PubSubAuthRequest{Timeout: 2 * time.Second, Cache: 30 * time.Second, CacheEntries: 10000},
	}
}

// pubsub checks a pubsub action.
func (v *validator) pubsub(p *PubSub, path string) {
	v.between(joinPath(path, "queue"), int64(p.Queue), 1, maxPubSubQueue, formatInt)
	v.between(joinPath(path, "history.size"), int64(p.History.Size), 0, maxPubSubHistory, formatInt)
	v.between(joinPath(path, "max_topics"), int64(p.MaxTopics), 1, maxPubSubTopics, formatInt)
	v.between(joinPath(path, "max_hub_topics"), int64(p.MaxHubTopics), 1, maxHubTopics, formatInt)
	v.between(joinPath(path, "max_message_bytes"), p.MaxMessageBytes, 1, maxWSMessage, formatSize)
	for _, d := range []struct {
		key   string
		value time.Duration
	}{{"history.ttl", p.History.TTL}, {"ping_interval", p.PingInterval}, {"idle_timeout", p.IdleTimeout}} {
		if d.value < 0 {
			v.errorf(joinPath(path, d.key), "must not be negative")
		}
	}
	for i, o := range p.AllowedOrigins {
		if !validOrigin(o) {
			v.errorf(fmt.Sprintf("%s.allowed_origins[%d]", path, i), "invalid origin %q: expected *, scheme://host[:port] or host[:port]", o)
		}
	}
	if p.JWT.SecretFile != "" && p.JWT.PublicKeyFile != "" {
		v.errorf(joinPath(path, "jwt.public_key_file"), "jwt takes secret_file (HS256) or public_key_file (RS256, ES256), not both")
	} else if p.JWT.SecretFile != "" || p.JWT.PublicKeyFile != "" {
		// Loaded as gale serve loads it, so that check fails where serve would.
		key, err := pubsub.LoadJWTKey(p.JWT.SecretFile, p.JWT.PublicKeyFile)
		if err == nil {
			_, err = pubsub.NewJWTAuth(key)
		}
		if err != nil {
			kp := joinPath(path, "jwt.secret_file")
			if p.JWT.PublicKeyFile != "" {
				kp = joinPath(path, "jwt.public_key_file")
			}
			v.errorf(kp, "%v", err)
		}
	}
	if n := p.Cluster.NATS; n != "" {
		u, err := url.Parse(n)
		if err != nil || !slices.Contains([]string{"nats", "tls"}, u.Scheme) || u.Host == "" {
			v.errorf(joinPath(path, "cluster.nats"), "invalid NATS URL %q: expected nats://host:port", n)
		}
	}
	if a := p.AuthRequest; a.URL != "" {
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf(joinPath(path, "auth_request.url"), "invalid URL %q: expected http://host[:port]/path or https://…", a.URL)
		}
		if p.JWT.SecretFile != "" || p.JWT.PublicKeyFile != "" {
			v.errorf(joinPath(path, "auth_request.url"), "auth_request and jwt exclude each other: choose one")
		}
	}
	if t := p.AuthRequest.Timeout; t <= 0 || t > time.Minute {
		v.errorf(joinPath(path, "auth_request.timeout"), "%s is out of range 1ms-1m", t)
	}
	if p.AuthRequest.Cache < 0 {
		v.errorf(joinPath(path, "auth_request.cache"), "duration must not be negative")
	}
	v.between(joinPath(path, "auth_request.cache_entries"), int64(p.AuthRequest.CacheEntries), 1, 1<<22, formatInt)
	if p.History.File != "" && p.History.Size == 0 {
		v.errorf(joinPath(path, "history.file"), "needs history.size > 0 (there is nothing to recover from otherwise)")
	} else if p.History.File != "" {
		v.fileToWrite(joinPath(path, "history.file"), p.History.File)
	}
	if p.Cluster.Subject == "" {
		v.errorf(joinPath(path, "cluster.subject"), "must not be empty")
	}
}

// hubSettings are the settings of a pubsub action that belong to its hub rather than
// to the route: every route naming one hub must give the same.
type hubSettings struct {
	Queue        int
	SlowPolicy   string
	History      PubSubHistory
	Cluster      PubSubCluster
	MaxHubTopics int
}

// hubSeen is the first route of a hub and its hub settings.
type hubSeen struct {
	path     string
	settings hubSettings
}

// pubsubHub checks that the routes naming one hub (hub, or the match path) agree on
// its settings. A running server makes one hub per name, and a route whose settings
// differ from an earlier one's replaced the hub for later routes: the routes served
// separate hubs of one name, so messages published on one never reached the other's
// subscribers, and the first lost its cluster link.
func (v *validator) pubsubHub(p *PubSub, matchPath, path string) {
	name := p.Hub
	if name == "" {
		name = matchPath
	}
	s := hubSettings{Queue: p.Queue, SlowPolicy: p.SlowPolicy, History: p.History, Cluster: p.Cluster, MaxHubTopics: p.MaxHubTopics}
	first, ok := v.hubs[name]
	if !ok {
		if v.hubs == nil {
			v.hubs = map[string]hubSeen{}
		}
		v.hubs[name] = hubSeen{path: path, settings: s}
		return
	}
	if first.settings != s {
		v.errorf(joinPath(path, "hub"), "hub %q is also served by %s with other hub settings: queue, slow_policy, history, cluster and max_hub_topics must be the same on every route of a hub", name, first.path)
	}
}

func formatInt(n int64) string { return fmt.Sprint(n) }
