package pubsub

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gale-server/gale/websocket"
)

// snapshotHub returns a hub with history holding two topics: "news" with five
// messages (text and binary) of which the ring keeps the last three, and "empty"
// without messages.
func snapshotHub(t *testing.T) *Hub {
	t.Helper()
	h := New(Options{Loops: 2, HistorySize: 3})
	news, err := h.Acquire("news")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"a", "b", "c", "d\n", "\xff\x00"} {
		op := websocket.OpText
		if i == 4 {
			op = websocket.OpBinary
		}
		news.Publish(op, []byte(p), nil)
	}
	h.Release(news)
	empty, _ := h.Acquire("empty")
	h.Release(empty)
	return h
}

// TestSnapshotRoundTrip saves a hub and loads the file into a new one: epochs, next
// offsets and the kept messages come back, recovery works from a position of the
// first hub, and the file is gone after loading.
func TestSnapshotRoundTrip(t *testing.T) {
	h := snapshotHub(t)
	path := filepath.Join(t.TempDir(), "snap")
	if n, err := h.SaveSnapshot(path); err != nil || n != 2 {
		t.Fatalf("save: %d %v", n, err)
	}
	h2 := New(Options{Loops: 2, HistorySize: 3})
	if n, err := h2.LoadSnapshot(path); err != nil || n != 2 {
		t.Fatalf("load: %d %v", n, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the snapshot is still there: %v", err)
	}
	for _, name := range []string{"news", "empty"} {
		e1, n1 := h.Lookup(name).Epoch()
		t2 := h2.Lookup(name)
		if t2 == nil {
			t.Fatalf("%s not restored", name)
		}
		if e2, n2 := t2.Epoch(); e1 != e2 || n1 != n2 {
			t.Fatalf("%s: epoch/next %s/%d, want %s/%d", name, e2, n2, e1, n1)
		}
	}
	epoch, _ := h.Lookup("news").Epoch()
	ms, _, next, err := h2.Lookup("news").Recover(epoch, 2, time.Now())
	if err != nil || next != 6 || len(ms) != 3 {
		t.Fatalf("recover: %d messages, next %d, %v", len(ms), next, err)
	}
	for i, want := range []string{"c", "d\n", "\xff\x00"} {
		if m := ms[i]; string(m.Data) != want || m.Offset != uint64(i+3) || m.Epoch != epoch || m.Topic != "news" {
			t.Fatalf("message %d: %+v", i, m)
		}
		ms[i].Release()
	}
	if ms[2].Op != websocket.OpBinary || ms[0].Op != websocket.OpText {
		t.Fatalf("opcodes not kept: %v %v", ms[0].Op, ms[2].Op)
	}
	if _, _, _, err := h2.Lookup("news").Recover(epoch, 1, time.Now()); !errors.Is(err, ErrRecovery) {
		t.Fatalf("recovery past the ring: %v", err)
	}
	// A publish after the restore continues the offsets in the same epoch.
	if off := h2.Lookup("news").Publish(websocket.OpText, []byte("f"), nil); off != 6 {
		t.Fatalf("offset after restore: %d", off)
	}
	// A hub with a smaller ring keeps the newest messages.
	if _, err := h.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	h3 := New(Options{Loops: 1, HistorySize: 1})
	if _, err := h3.LoadSnapshot(path); err != nil {
		t.Fatal(err)
	}
	if ms, _, _, err := h3.Lookup("news").Recover(epoch, 4, time.Now()); err != nil || len(ms) != 1 || string(ms[0].Data) != "\xff\x00" {
		t.Fatalf("smaller ring: %v %v", ms, err)
	}
	if _, _, _, err := h3.Lookup("news").Recover(epoch, 3, time.Now()); !errors.Is(err, ErrRecovery) {
		t.Fatalf("smaller ring kept too much: %v", err)
	}
}

// TestSnapshotMissing: no file is no error and restores nothing.
func TestSnapshotMissing(t *testing.T) {
	h := New(Options{HistorySize: 1})
	if n, err := h.LoadSnapshot(filepath.Join(t.TempDir(), "none")); n != 0 || err != nil {
		t.Fatalf("%d %v", n, err)
	}
}

// TestSnapshotDamaged refuses every truncation of a snapshot (at each byte) and a
// flip of each byte with ErrSnapshot, restoring nothing, and never panics.
func TestSnapshotDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snap")
	if _, err := snapshotHub(t).SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseSnapshot(good, 10); err != nil {
		t.Fatalf("whole file: %v", err)
	}
	for i := 0; i < len(good); i++ {
		if _, err := parseSnapshot(good[:i], 10); !errors.Is(err, ErrSnapshot) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
		bad := bytes.Clone(good)
		bad[i] ^= 0x40
		if _, err := parseSnapshot(bad, 10); !errors.Is(err, ErrSnapshot) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	os.WriteFile(path, good[:len(good)-1], 0o600)
	h := New(Options{HistorySize: 3})
	if n, err := h.LoadSnapshot(path); n != 0 || !errors.Is(err, ErrSnapshot) || h.Lookup("news") != nil {
		t.Fatalf("damaged file loaded: %d %v", n, err)
	}
}

// FuzzParseSnapshot: the snapshot reader never panics, and what it accepts has
// valid topics with increasing offsets below next.
func FuzzParseSnapshot(f *testing.F) {
	f.Add([]byte(snapshotMagic))
	f.Add([]byte("GALE-PUBSUB-SNAPSHOT 1\n\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := parseSnapshot(b, 4)
		if err != nil {
			if !errors.Is(err, ErrSnapshot) {
				t.Fatalf("error %v does not wrap ErrSnapshot", err)
			}
			return
		}
		for _, st := range ts {
			if !ValidTopic(st.name) || len(st.msgs) > 4 {
				t.Fatalf("accepted %+v", st)
			}
			for i, m := range st.msgs {
				if m.Offset >= st.next || (i > 0 && m.Offset <= st.msgs[i-1].Offset) {
					t.Fatalf("accepted offsets %+v", st)
				}
			}
		}
	})
}
