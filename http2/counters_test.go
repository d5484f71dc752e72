package http2

import (
	"bytes"
	"strings"
	"testing"
)

// counted returns a rig whose Conn adds to the returned Counters.
func counted(t *testing.T, cfg Config) (*rig, *Counters) {
	r := newRig(t, cfg)
	ctr := new(Counters)
	r.c.SetCounters(ctr)
	return r, ctr
}

// wantGlitches checks that exactly the kinds in want were counted, as many times as
// want says.
func wantGlitches(t *testing.T, ctr *Counters, want map[GlitchKind]uint64) {
	t.Helper()
	for k := range NumGlitchKinds {
		if got := ctr.Glitches[k].Load(); got != want[k] {
			t.Errorf("Glitches[%v] = %d, want %d", k, got, want[k])
		}
	}
}

// TestCountersFollowEvents checks that each count of Counters moves with its event
// (the flood kinds are checked by TestFloodsCutOff).
func TestCountersFollowEvents(t *testing.T) {
	t.Run("streams-resets-goaway", func(t *testing.T) {
		r, ctr := counted(t, Config{})
		r.h.onRequest = func(s *Stream) {
			if s.ID == 3 {
				r.c.ResetStream(s.ID, ErrCodeCancel) // the application's reset
				return
			}
			_ = r.c.WriteHeaders(s.ID, 200, nil, true)
		}
		r.mustFeed(r.get(1, true))
		r.mustFeed(r.get(3, true))
		r.mustFeed(r.get(5, false))                        // open, with a body to come
		r.mustFeed(AppendRSTStream(nil, 5, ErrCodeCancel)) // the client's reset
		r.mustFeed(r.get(7, true, "UPPER", "case"))        // malformed: stream error
		if got := ctr.StreamsOpened.Load(); got != 3 {
			t.Errorf("StreamsOpened = %d, want 3 (the malformed one is not opened)", got)
		}
		if got := ctr.ResetsReceived.Load(); got != 1 {
			t.Errorf("ResetsReceived = %d, want 1", got)
		}
		if got := ctr.ResetsSent.Load(); got != 2 {
			t.Errorf("ResetsSent = %d, want 2 (ResetStream, the malformed request)", got)
		}
		wantGlitches(t, ctr, map[GlitchKind]uint64{GlitchStreamError: 1})
		r.c.Shutdown()
		r.c.FinishShutdown()
		if got := ctr.GoAwaysSent[ErrCodeNo].Load(); got != 2 {
			t.Errorf("GoAwaysSent[NO_ERROR] = %d after a graceful shutdown, want 2", got)
		}
	})
	t.Run("refused", func(t *testing.T) {
		r, ctr := counted(t, Config{MaxConcurrentStreams: 1})
		r.mustFeed(r.get(1, false))
		r.mustFeed(r.get(3, false))
		wantGlitches(t, ctr, map[GlitchKind]uint64{GlitchRefusedStream: 1})
		if ctr.StreamsOpened.Load() != 1 || ctr.ResetsSent.Load() != 1 {
			t.Errorf("opened %d, resets sent %d; want 1 and 1", ctr.StreamsOpened.Load(), ctr.ResetsSent.Load())
		}
	})
	t.Run("header-list", func(t *testing.T) {
		r, ctr := counted(t, Config{MaxHeaderListSize: 209})
		r.mustFeed(r.get(1, false, "a", strings.Repeat("x", 100)))
		wantGlitches(t, ctr, map[GlitchKind]uint64{GlitchHeaderList: 1})
		if ctr.ResetsSent.Load() != 1 { // the 431 and RST_STREAM NO_ERROR (still sending)
			t.Errorf("resets sent %d, want 1", ctr.ResetsSent.Load())
		}
	})
	t.Run("header-block", func(t *testing.T) {
		r, ctr := counted(t, Config{MaxHeaderBlockBytes: 1000})
		junk := bytes.Repeat([]byte{0x82}, 1001)
		r.wantConnErr(r.feed(append(AppendFrameHeader(nil, 1001, FrameHeaders, 0, 1), junk...)), ErrCodeEnhanceYourCalm)
		wantGlitches(t, ctr, map[GlitchKind]uint64{GlitchHeaderBlock: 1})
		if ctr.GoAwaysSent[ErrCodeEnhanceYourCalm].Load() != 1 {
			t.Error("GOAWAY ENHANCE_YOUR_CALM not counted")
		}
	})
	t.Run("control-buffer", func(t *testing.T) {
		r, ctr := counted(t, Config{MaxControlBuffered: 1000, MaxOutputBuffered: 1000, MaxPings: 1 << 20})
		r.read = false
		var err error
		for i := 0; i < 1000 && err == nil; i++ {
			err = r.feed(AppendPing(nil, false, [8]byte{}))
		}
		wantGlitches(t, ctr, map[GlitchKind]uint64{GlitchControlBuffer: 1})
	})
	t.Run("glitch-limit", func(t *testing.T) {
		r, ctr := counted(t, Config{MaxGlitches: 3})
		bad := r.block(":method", "GET")
		var err error
		for i := 0; i < 4 && err == nil; i++ {
			err = r.feed(AppendHeaders(nil, uint32(2*i+1), bad, true, MinMaxFrameSize))
		}
		r.wantConnErr(err, ErrCodeEnhanceYourCalm)
		wantGlitches(t, ctr, map[GlitchKind]uint64{GlitchStreamError: 4, GlitchLimit: 1})
		if ctr.GoAwaysSent[ErrCodeEnhanceYourCalm].Load() != 1 {
			t.Error("GOAWAY ENHANCE_YOUR_CALM not counted")
		}
	})
	t.Run("protocol-error", func(t *testing.T) {
		r, ctr := counted(t, Config{})
		r.wantConnErr(r.feed(AppendData(nil, 1, []byte("x"), false)), ErrCodeProtocol) // DATA on an idle stream
		if ctr.GoAwaysSent[ErrCodeProtocol].Load() != 1 {
			t.Error("GOAWAY PROTOCOL_ERROR not counted")
		}
	})
}
