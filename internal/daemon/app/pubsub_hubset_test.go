package app

import (
	"log/slog"
	"testing"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/pubsub"
	"github.com/gorilla/websocket"
)

// TestHubSetKeepsHubOnNewTopicLimit: a reload that changes only max_hub_topics
// keeps the hub, its topics, epochs and history, and applies the new limit. Before,
// any change of the hub's options made a new hub, so raising the limit of a full hub
// dropped every topic's history and epoch (every client's recovery failed).
func TestHubSetKeepsHubOnNewTopicLimit(t *testing.T) {
	hs := newHubSet()
	opts := pubsub.Options{Loops: 1, HistorySize: 10, MaxTopics: 1}
	h, err := hs.get("/hub/", opts, config.PubSubCluster{}, "", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tp, err := h.Acquire("a")
	if err != nil {
		t.Fatal(err)
	}
	tp.Publish(websocket.TextMessage, []byte("1"), nil)
	h.Release(tp)
	epoch, next := tp.Epoch()
	if _, err := h.Acquire("b"); err != pubsub.ErrTopicLimit {
		t.Fatalf("second topic at a limit of 1: %v", err)
	}
	opts.MaxTopics = 2
	h2, err := hs.get("/hub/", opts, config.PubSubCluster{}, "", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if h2 != h {
		t.Fatal("a new max_hub_topics made a new hub")
	}
	if e, n := h.Lookup("a").Epoch(); e != epoch || n != next {
		t.Fatalf("topic a: epoch %s next %d, want %s %d", e, n, epoch, next)
	}
	tb, err := h.Acquire("b")
	if err != nil {
		t.Fatalf("second topic at a limit of 2: %v", err)
	}
	h.Release(tb)
	opts.HistorySize = 20
	if h3, _ := hs.get("/hub/", opts, config.PubSubCluster{}, "", slog.Default()); h3 == h {
		t.Fatal("a new history.size kept the hub")
	}
}
