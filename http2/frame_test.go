package http2

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// validFrames holds one well-formed encoding of every frame type and what ReadFrame must
// decode from it.
func validFrames() []struct {
	name string
	raw  []byte
	want Frame
} {
	padded := AppendFrameHeader(nil, 8, FrameData, FlagPadded|FlagEndStream, 3)
	padded = append(padded, 3, 'a', 'b', 'c', 'd', 0, 0, 0)
	hdrPrio := AppendFrameHeader(nil, 1+5+2+1, FrameHeaders, FlagPadded|FlagPriority|FlagEndHeaders, 5)
	hdrPrio = append(hdrPrio, 1, 0x80, 0, 0, 1, 15, 0x82, 0x84, 0)
	push := AppendFrameHeader(nil, 5, FramePushPromise, FlagEndHeaders, 1)
	push = append(push, 0, 0, 0, 2, 0x82)
	unknown := AppendFrameHeader(nil, 3, FrameType(0xfa), 0xff, 7)
	unknown = append(unknown, 1, 2, 3)
	prioUpd := AppendFrameHeader(nil, 7, FramePriorityUpdate, 0, 0)
	prioUpd = append(prioUpd, 0, 0, 0, 9, 'u', '=', '1')
	return []struct {
		name string
		raw  []byte
		want Frame
	}{
		{"data", AppendData(nil, 1, []byte("hello"), false),
			Frame{Type: FrameData, StreamID: 1, Length: 5, Data: []byte("hello")}},
		{"data-padded", padded,
			Frame{Type: FrameData, Flags: FlagPadded | FlagEndStream, StreamID: 3, Length: 8, Data: []byte("abcd")}},
		{"headers", AppendHeaders(nil, 1, []byte{0x82, 0x86}, true, MinMaxFrameSize),
			Frame{Type: FrameHeaders, Flags: FlagEndStream | FlagEndHeaders, StreamID: 1, Length: 2, Data: []byte{0x82, 0x86}}},
		{"headers-padded-priority", hdrPrio,
			Frame{Type: FrameHeaders, Flags: FlagPadded | FlagPriority | FlagEndHeaders, StreamID: 5, Length: 9,
				Data: []byte{0x82, 0x84}, Priority: PriorityParam{StreamDep: 1, Exclusive: true, Weight: 15}}},
		{"priority", AppendPriority(nil, 3, PriorityParam{StreamDep: 1, Weight: 7}),
			Frame{Type: FramePriority, StreamID: 3, Length: 5, Priority: PriorityParam{StreamDep: 1, Weight: 7}}},
		{"rst", AppendRSTStream(nil, 3, ErrCodeCancel),
			Frame{Type: FrameRSTStream, StreamID: 3, Length: 4, Code: ErrCodeCancel}},
		{"settings", AppendSettings(nil, false, Setting{SettingInitialWindowSize, 1}, Setting{SettingMaxFrameSize, 1 << 20}),
			Frame{Type: FrameSettings, Length: 12, Data: []byte{0, 4, 0, 0, 0, 1, 0, 5, 0, 0x10, 0, 0}}},
		{"settings-ack", AppendSettings(nil, true),
			Frame{Type: FrameSettings, Flags: FlagAck}},
		{"push-promise", push,
			Frame{Type: FramePushPromise, Flags: FlagEndHeaders, StreamID: 1, Length: 5, PromisedID: 2, Data: []byte{0x82}}},
		{"ping", AppendPing(nil, true, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}),
			Frame{Type: FramePing, Flags: FlagAck, Length: 8, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}}},
		{"goaway", AppendGoAway(nil, 7, ErrCodeEnhanceYourCalm, []byte("calm")),
			Frame{Type: FrameGoAway, Length: 12, LastStreamID: 7, Code: ErrCodeEnhanceYourCalm, Data: []byte("calm")}},
		{"window-update", AppendWindowUpdate(nil, 0, 1000),
			Frame{Type: FrameWindowUpdate, Length: 4, Increment: 1000}},
		{"continuation", append(AppendFrameHeader(nil, 1, FrameContinuation, FlagEndHeaders, 1), 0x82),
			Frame{Type: FrameContinuation, Flags: FlagEndHeaders, StreamID: 1, Length: 1, Data: []byte{0x82}}},
		{"priority-update", prioUpd,
			Frame{Type: FramePriorityUpdate, Length: 7, PromisedID: 9, Data: []byte("u=1")}},
		{"unknown", unknown,
			Frame{Type: 0xfa, Flags: 0xff, StreamID: 7, Length: 3, Data: []byte{1, 2, 3}}},
	}
}

func sameFrame(a, b Frame) bool {
	if len(a.Data) == 0 && len(b.Data) == 0 {
		a.Data, b.Data = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

func TestReadFrameWholeAndSplit(t *testing.T) {
	for _, tc := range validFrames() {
		t.Run(tc.name, func(t *testing.T) {
			f, n, err := ReadFrame(tc.raw, MinMaxFrameSize)
			if err != nil || n != len(tc.raw) || !sameFrame(f, tc.want) {
				t.Fatalf("whole: got %+v, %d, %v; want %+v, %d", f, n, err, tc.want, len(tc.raw))
			}
			// Split at every byte: every proper prefix needs more.
			for i := range len(tc.raw) {
				if _, n, err := ReadFrame(tc.raw[:i], MinMaxFrameSize); err != ErrNeedMore || n != 0 {
					t.Fatalf("prefix %d: got %d, %v; want ErrNeedMore", i, n, err)
				}
			}
			// Trailing bytes of the next frame are left alone.
			more := append(bytes.Clone(tc.raw), 0, 0)
			if _, n, err := ReadFrame(more, MinMaxFrameSize); err != nil || n != len(tc.raw) {
				t.Fatalf("with trailing bytes: %d, %v", n, err)
			}
		})
	}
}

// TestReadFrameStream feeds every valid frame back to back, cut into chunks of every size
// from one byte up, as a caller that appends what it reads and retries would.
func TestReadFrameStream(t *testing.T) {
	var all []byte
	var want []Frame
	for _, tc := range validFrames() {
		all = append(all, tc.raw...)
		want = append(want, tc.want)
	}
	for chunk := 1; chunk <= len(all); chunk++ {
		var pending []byte
		var got []Frame
		for off := 0; off < len(all); off += chunk {
			pending = append(pending, all[off:min(off+chunk, len(all))]...)
			for {
				f, n, err := ReadFrame(pending, MinMaxFrameSize)
				if err == ErrNeedMore {
					break
				}
				if err != nil {
					t.Fatalf("chunk %d: %v", chunk, err)
				}
				f.Data = bytes.Clone(f.Data)
				got = append(got, f)
				pending = pending[n:]
			}
		}
		if len(got) != len(want) {
			t.Fatalf("chunk %d: %d frames, want %d", chunk, len(got), len(want))
		}
		for i := range got {
			if !sameFrame(got[i], want[i]) {
				t.Fatalf("chunk %d frame %d: %+v, want %+v", chunk, i, got[i], want[i])
			}
		}
	}
}

func TestReadFrameErrors(t *testing.T) {
	hdr := func(length uint32, typ FrameType, fl Flags, id uint32, payload ...byte) []byte {
		return append(AppendFrameHeader(nil, length, typ, fl, id), payload...)
	}
	cases := []struct {
		name   string
		raw    []byte
		code   ErrCode
		stream bool
	}{
		{"too-large", hdr(MinMaxFrameSize+1, FrameData, 0, 1), ErrCodeFrameSize, false},
		{"data-stream0", hdr(1, FrameData, 0, 0, 'x'), ErrCodeProtocol, false},
		{"data-pad-too-long", hdr(3, FrameData, FlagPadded, 1, 3, 0, 0), ErrCodeProtocol, false},
		{"data-pad-missing", hdr(0, FrameData, FlagPadded, 1), ErrCodeFrameSize, false},
		{"headers-stream0", hdr(1, FrameHeaders, FlagEndHeaders, 0, 0x82), ErrCodeProtocol, false},
		{"headers-priority-short", hdr(3, FrameHeaders, FlagPriority, 1, 0, 0, 0), ErrCodeFrameSize, false},
		{"headers-self-dep", hdr(5, FrameHeaders, FlagPriority|FlagEndHeaders, 1, 0, 0, 0, 1, 1), ErrCodeProtocol, true},
		{"priority-stream0", hdr(5, FramePriority, 0, 0, 0, 0, 0, 1, 1), ErrCodeProtocol, false},
		{"priority-length", hdr(4, FramePriority, 0, 1, 0, 0, 0, 3), ErrCodeFrameSize, true},
		{"priority-self-dep", hdr(5, FramePriority, 0, 3, 0, 0, 0, 3, 1), ErrCodeProtocol, true},
		{"rst-stream0", hdr(4, FrameRSTStream, 0, 0, 0, 0, 0, 0), ErrCodeProtocol, false},
		{"rst-length", hdr(3, FrameRSTStream, 0, 1, 0, 0, 0), ErrCodeFrameSize, false},
		{"settings-stream", hdr(0, FrameSettings, 0, 1), ErrCodeProtocol, false},
		{"settings-ack-payload", hdr(6, FrameSettings, FlagAck, 0, 0, 1, 0, 0, 0, 0), ErrCodeFrameSize, false},
		{"settings-length", hdr(5, FrameSettings, 0, 0, 0, 1, 0, 0, 0), ErrCodeFrameSize, false},
		{"settings-push-2", AppendSettings(nil, false, Setting{SettingEnablePush, 2}), ErrCodeProtocol, false},
		{"settings-window", AppendSettings(nil, false, Setting{SettingInitialWindowSize, 1 << 31}), ErrCodeFlowControl, false},
		{"settings-frame-small", AppendSettings(nil, false, Setting{SettingMaxFrameSize, MinMaxFrameSize - 1}), ErrCodeProtocol, false},
		{"settings-frame-big", AppendSettings(nil, false, Setting{SettingMaxFrameSize, MaxMaxFrameSize + 1}), ErrCodeProtocol, false},
		{"push-stream0", hdr(4, FramePushPromise, 0, 0, 0, 0, 0, 2), ErrCodeProtocol, false},
		{"push-short", hdr(3, FramePushPromise, 0, 1, 0, 0, 0), ErrCodeFrameSize, false},
		{"ping-stream", hdr(8, FramePing, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), ErrCodeProtocol, false},
		{"ping-length", hdr(7, FramePing, 0, 0, 0, 0, 0, 0, 0, 0, 0), ErrCodeFrameSize, false},
		{"goaway-stream", hdr(8, FrameGoAway, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), ErrCodeProtocol, false},
		{"goaway-short", hdr(7, FrameGoAway, 0, 0, 0, 0, 0, 0, 0, 0, 0), ErrCodeFrameSize, false},
		{"window-length", hdr(3, FrameWindowUpdate, 0, 0, 0, 0, 1), ErrCodeFrameSize, false},
		{"window-zero-conn", AppendWindowUpdate(nil, 0, 0), ErrCodeProtocol, false},
		{"window-zero-stream", AppendWindowUpdate(nil, 1, 0), ErrCodeProtocol, true},
		{"continuation-stream0", hdr(1, FrameContinuation, 0, 0, 0x82), ErrCodeProtocol, false},
		{"priority-update-stream", hdr(4, FramePriorityUpdate, 0, 1, 0, 0, 0, 1), ErrCodeProtocol, false},
		{"priority-update-short", hdr(3, FramePriorityUpdate, 0, 0, 0, 0, 1), ErrCodeFrameSize, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, n, err := ReadFrame(tc.raw, MinMaxFrameSize)
			var ce *ConnError
			var se *StreamError
			switch {
			case tc.stream && errors.As(err, &se):
				if se.Code != tc.code || n != len(tc.raw) {
					t.Fatalf("got %v consumed %d; want stream %v consumed %d", err, n, tc.code, len(tc.raw))
				}
			case !tc.stream && errors.As(err, &ce):
				if ce.Code != tc.code || n != 0 {
					t.Fatalf("got %v consumed %d; want connection %v", err, n, tc.code)
				}
			default:
				t.Fatalf("got %v; want %v (stream scope %v)", err, tc.code, tc.stream)
			}
		})
	}
}

func TestAppendHeadersSplits(t *testing.T) {
	block := bytes.Repeat([]byte{0x82}, 2*MinMaxFrameSize+10)
	raw := AppendHeaders(nil, 9, block, true, MinMaxFrameSize)
	var got []byte
	var types []FrameType
	for len(raw) > 0 {
		f, n, err := ReadFrame(raw, MinMaxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, f.Type)
		got = append(got, f.Data...)
		last := len(raw) == n
		if f.Flags.Has(FlagEndHeaders) != last {
			t.Fatalf("END_HEADERS on frame %d is %v", len(types), !last)
		}
		if f.Type == FrameHeaders != f.Flags.Has(FlagEndStream) {
			t.Fatalf("END_STREAM only belongs on HEADERS")
		}
		raw = raw[n:]
	}
	want := []FrameType{FrameHeaders, FrameContinuation, FrameContinuation}
	if !reflect.DeepEqual(types, want) || !bytes.Equal(got, block) {
		t.Fatalf("frames %v, block intact %v", types, bytes.Equal(got, block))
	}
}
