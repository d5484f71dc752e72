package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPubSubParse(t *testing.T) {
	c, err := Parse("gale.yaml", []byte(`servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /ws/fanout/ }
        pubsub: { topic: path }
      - match: { path: /hub/ }
        pubsub: { queue: 16, slow_policy: close, history: { size: 100, ttl: 1m }, cluster: { nats: "nats://127.0.0.1:4222" } }
`))
	if err != nil {
		t.Fatal(err)
	}
	p, q := c.Servers[0].Routes[0].PubSub, c.Servers[0].Routes[1].PubSub
	if p.Topic != PubSubTopicPath || p.Queue != 1024 || p.SlowPolicy != "drop_oldest" || p.MaxMessageBytes != 64<<10 || p.Cluster.Subject != "gale.pubsub" {
		t.Fatalf("defaults: %+v", p)
	}
	if q.Topic != PubSubTopicProtocol || q.Queue != 16 || q.SlowPolicy != "close" || q.History.Size != 100 || q.History.TTL != time.Minute || q.Cluster.NATS == "" {
		t.Fatalf("set: %+v", q)
	}
}

// TestPubSubErrors checks that every bad pubsub value is reported at its position.
func TestPubSubErrors(t *testing.T) {
	_, err := Parse("gale.yaml", []byte(`servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /hub/ }
        pubsub: { topic: room, queue: 0, slow_policy: drop, history: { size: -1, ttl: -1s }, max_topics: 0, max_hub_topics: 0, max_message_bytes: 0, cluster: { nats: "http://x", subject: "" }, jwt: { secret_file: a, public_key_file: b }, allowed_origins: ["a b"] }
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`gale.yaml:5:26: servers[0].routes[0].pubsub.topic: invalid value "room": expected one of path, protocol`,
		`servers[0].routes[0].pubsub.queue: 0 is out of range 1-1048576`,
		`pubsub.slow_policy: invalid value "drop": expected one of drop_oldest, close`,
		`pubsub.history.size: -1 is out of range 0-1048576`,
		`pubsub.history.ttl: duration must not be negative`,
		`pubsub.max_topics: 0 is out of range 1-65536`,
		`pubsub.max_hub_topics: 0 is out of range 1-16777216`,
		`pubsub.max_message_bytes: 0 is out of range 1-1GiB`,
		`pubsub.cluster.nats: invalid NATS URL "http://x": expected nats://host:port`,
		`pubsub.cluster.subject: must not be empty`,
		`pubsub.jwt.public_key_file: jwt takes secret_file (HS256) or public_key_file (RS256, ES256), not both`,
		`pubsub.allowed_origins[0]: invalid origin "a b"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// TestPubSubHistoryFile: history.file is made absolute (relative to the
// configuration's directory) and refused, at its position, without a history to keep.
func TestPubSubHistoryFile(t *testing.T) {
	_, err := Parse("gale.yaml", []byte(`servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /hub/ }
        pubsub: { history: { file: hub.snap } }
`))
	if err == nil || !strings.Contains(err.Error(), `gale.yaml:5:36: servers[0].routes[0].pubsub.history.file: needs history.size > 0`) {
		t.Fatalf("history.file without size: %v", err)
	}
	cfg, err := Parse("gale.yaml", []byte(`servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /hub/ }
        pubsub: { history: { size: 10, file: hub.snap } }
`))
	if err != nil {
		t.Fatal(err)
	}
	if f := cfg.Servers[0].Routes[0].PubSub.History.File; !filepath.IsAbs(f) || filepath.Base(f) != "hub.snap" {
		t.Fatalf("file %q, want an absolute path", f)
	}
}

// TestPubSubAuthRequest: the callout's URL, timeout, cache and exclusion with jwt
// are checked at their positions; defaults are 2s, 30s, 10000.
func TestPubSubAuthRequest(t *testing.T) {
	_, err := Parse("gale.yaml", []byte(`servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /hub/ }
        pubsub: { auth_request: { url: "ftp://x", timeout: 0s, cache: -1s, cache_entries: 0 }, jwt: { secret_file: k } }
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`gale.yaml:5:40: servers[0].routes[0].pubsub.auth_request.url: invalid URL "ftp://x"`,
		`pubsub.auth_request.url: auth_request and jwt exclude each other`,
		`pubsub.auth_request.timeout: 0s is out of range 1ms-1m`,
		`pubsub.auth_request.cache: duration must not be negative`,
		`pubsub.auth_request.cache_entries: 0 is out of range 1-4194304`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	cfg, err := Parse("gale.yaml", []byte(`servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /hub/ }
        pubsub: { auth_request: { url: "http://127.0.0.1:9000/auth" } }
`))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Servers[0].Routes[0].PubSub.AuthRequest; a.Timeout != 2*time.Second || a.Cache != 30*time.Second || a.CacheEntries != 10000 {
		t.Fatalf("defaults: %+v", a)
	}
}

// TestPubSubFilesChecked: gale check loads the JWT key as gale serve does and
// checks that the history snapshot can be written, so that a missing or short
// secret, a key file without PEM, or a snapshot in a missing directory fail
// the check at their positions instead of failing serve at start (the key)
// or at the graceful stop (the snapshot, lost).
func TestPubSubFilesChecked(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("only-sixteen-chr\n"), 0o600)
	good := filepath.Join(dir, "good.key")
	os.WriteFile(good, []byte(strings.Repeat("k", 32)+"\n"), 0o600)
	got := errorLines(t, `servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /a/ }
        pubsub: { jwt: { secret_file: `+filepath.Join(dir, "missing.key")+` } }
      - match: { path: /b/ }
        pubsub: { hub: b, jwt: { secret_file: `+short+` } }
      - match: { path: /c/ }
        pubsub: { hub: c, jwt: { public_key_file: `+good+` } }
      - match: { path: /d/ }
        pubsub: { hub: d, jwt: { secret_file: `+good+` }, history: { size: 1, file: `+filepath.Join(dir, "none", "hub.snap")+` } }
`)
	want := []string{
		`gale.yaml:5:39: servers[0].routes[0].pubsub.jwt.secret_file: open ` + filepath.Join(dir, "missing.key") + `: no such file or directory`,
		`gale.yaml:7:47: servers[0].routes[1].pubsub.jwt.secret_file: pubsub: an HS256 secret needs at least 32 bytes`,
		`gale.yaml:9:51: servers[0].routes[2].pubsub.jwt.public_key_file: ` + good + `: no PEM block`,
		`servers[0].routes[3].pubsub.history.file: cannot create ` + filepath.Join(dir, "none", "hub.snap") + `: directory ` + filepath.Join(dir, "none") + `: no such file or directory`,
	}
	if len(got) != len(want) {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasSuffix(got[i], want[i]) {
			t.Errorf("error %d:\n  %s\nwant it to end with\n  %s", i, got[i], want[i])
		}
	}
}

// TestPubSubHubSettingsAgree: routes naming one hub must give it the same settings;
// otherwise the second route is reported at its hub key. Before, the running server
// made a second hub of the name for it, and the routes were silently apart.
func TestPubSubHubSettingsAgree(t *testing.T) {
	_, err := Parse("gale.yaml", []byte(`servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /a/ }
        pubsub: { hub: shared, queue: 10 }
      - match: { path: /b/ }
        pubsub: { hub: shared, queue: 10, topic: path }
      - match: { path: /c/ }
        pubsub: { hub: shared, queue: 20 }
`))
	want := `gale.yaml:9:24: servers[0].routes[2].pubsub.hub: hub "shared" is also served by servers[0].routes[0].pubsub with other hub settings`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %s", err, want)
	}
	if strings.Contains(err.Error(), "routes[1]") {
		t.Fatalf("a route with the same hub settings reported: %v", err)
	}
}
