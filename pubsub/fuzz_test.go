package pubsub

import (
	"encoding/json"
	"testing"
)

// FuzzParseCommand feeds arbitrary client messages to the protocol parser: it must
// never panic, every refusal is a *ProtocolError, and every reply built for a
// command (accepted or not) is valid JSON.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		`{"type":"subscribe","id":1,"topic":"news"}`,
		`{"type":"subscribe","id":"a","topic":"news","epoch":"e","offset":4}`,
		`{"type":"publish","topic":"t","data":{"x":[1,2,"\u2028"]}}`,
		`{"type":"unsubscribe","topic":"t"}`,
		`{"type":"presence","id":-3,"topic":"t"}`,
		`{"type":"publish","topic":"t"}`, `{"id":{},"type":"x"}`, `[]`, `{} {}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cmd, err := ParseCommand(msg)
		if err != nil {
			if _, ok := err.(*ProtocolError); !ok {
				t.Fatalf("%q: error %T, want *ProtocolError", msg, err)
			}
			if b := AppendError(nil, cmd, asProtocolError(err)); !json.Valid(b) {
				t.Fatalf("%q: error reply %q is not JSON", msg, b)
			}
			return
		}
		j := Joined{Epoch: "e", Next: 1, Recovered: true}
		for _, b := range [][]byte{AppendSubscribed(nil, cmd, &j), AppendPublished(nil, cmd, 1),
			AppendPresence(nil, cmd, 2), AppendSimple(nil, "unsubscribed", cmd)} {
			if !json.Valid(b) {
				t.Fatalf("%q: reply %q is not JSON", msg, b)
			}
		}
		m := &Message{Topic: cmd.Topic, Offset: 1, Epoch: "e", Op: 1, Data: cmd.Data}
		if b := appendEnvelope(nil, m); !json.Valid(b) {
			t.Fatalf("%q: envelope %q is not JSON", msg, b)
		}
	})
}

// FuzzEventID checks that parseEventID accepts only epoch-offset and round-trips it.
func FuzzEventID(f *testing.F) {
	for _, s := range []string{"abc-1", "abc-18446744073709551615", "-1", "abc-", "abc", "a-b-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := parseEventID(s)
		if !ok {
			return
		}
		m := &Message{Epoch: p.Epoch, Offset: p.Offset}
		b := appendSSE(nil, m)
		if len(b) < 4 || string(b[:4]) != "id: " {
			t.Fatalf("%q: event %q", s, b)
		}
	})
}
