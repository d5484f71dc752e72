package pubsub

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/gale-server/gale/websocket"
)

// snapshotMagic opens every snapshot file; the digit is the format's version.
const snapshotMagic = "GALE-PUBSUB-SNAPSHOT 1\n"

// Bounds a snapshot is checked against when it is read back.
const (
	maxSnapshotEpoch = 64
	maxSnapshotMsg   = 1 << 30
)

// ErrSnapshot wraps every fault of a snapshot file's contents (not of reading it):
// the file is refused whole and the hub starts with fresh epochs.
var ErrSnapshot = errors.New("pubsub: bad snapshot")

// SaveSnapshot writes every topic's epoch, next offset and kept history to path,
// through a temporary file renamed over it once synced, so that a crash leaves the
// previous file or the new one, never half of one. Call it when the hub is quiet
// (after the server stopped): messages published meanwhile may be missing from the
// file but are never half written. It returns the number of topics written.
func (h *Hub) SaveSnapshot(path string) (int, error) {
	h.mu.Lock()
	ts := make([]*Topic, 0, len(h.topic))
	for _, t := range h.topic {
		ts = append(ts, t)
	}
	h.mu.Unlock()

	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // after the rename this fails harmlessly
	crc := crc32.NewIEEE()
	w := bufio.NewWriterSize(io.MultiWriter(tmp, crc), 64<<10)
	var num [binary.MaxVarintLen64]byte
	uvarint := func(v uint64) { w.Write(num[:binary.PutUvarint(num[:], v)]) }
	bytesField := func(b []byte) { uvarint(uint64(len(b))); w.Write(b) }
	w.WriteString(snapshotMagic)
	uvarint(uint64(len(ts)))
	for _, t := range ts {
		t.mu.Lock()
		bytesField([]byte(t.name))
		bytesField([]byte(t.epoch))
		uvarint(t.next)
		hs := &t.hist
		uvarint(uint64(hs.n))
		for i := 0; i < hs.n; i++ {
			m := hs.at(i)
			uvarint(m.Offset)
			uvarint(uint64(m.Time))
			w.WriteByte(byte(m.Op))
			bytesField(m.Data)
		}
		t.mu.Unlock()
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return 0, err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	if _, err := tmp.Write(sum[:]); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, os.NewSyscallError("fsync", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, err
	}
	return len(ts), nil
}

// LoadSnapshot restores the topics of a snapshot written by SaveSnapshot: their
// epochs, next offsets and kept history (each topic keeps at most the hub's
// HistorySize newest of them), so clients recover across the restart. Call it on a
// new hub before the first subscriber arrives. A missing file is no error (0
// topics). The file is removed once read, whatever its contents: if this process
// died before writing its own snapshot, the next start must begin new epochs rather
// than hand out the same offsets twice. A file that is not a whole snapshot gives an
// error wrapping ErrSnapshot and restores nothing.
func (h *Hub) LoadSnapshot(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if err := os.Remove(path); err != nil {
		return 0, err
	}
	topics, err := parseSnapshot(b, h.opts.HistorySize)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, st := range topics {
		if h.topic[st.name] != nil {
			continue
		}
		t := h.newTopic(st.name)
		t.epoch, t.next = st.epoch, st.next
		for _, m := range st.msgs {
			m.Topic, m.Epoch = t.name, t.epoch
			m.build([numEnc]bool{EncRaw: true}, nil)
			m.refs.Store(1)
			if old := t.hist.push(m); old != nil {
				old.Release()
			}
		}
		h.topic[t.name] = t
	}
	return len(topics), nil
}

// snapTopic is one topic read from a snapshot.
type snapTopic struct {
	name, epoch string
	next        uint64
	msgs        []*Message
}

// parseSnapshot decodes a snapshot, keeping at most keep messages per topic.
func parseSnapshot(b []byte, keep int) ([]snapTopic, error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrSnapshot, what) }
	if len(b) < len(snapshotMagic)+4 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, bad("not a gale pub/sub snapshot (version 1)")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, bad("checksum mismatch (truncated or damaged)")
	}
	r := snapReader{b: body[len(snapshotMagic):]}
	n := r.uvarint()
	var out []snapTopic
	for i := uint64(0); i < n && r.err == nil; i++ {
		var st snapTopic
		st.name = string(r.bytes(MaxTopicBytes))
		st.epoch = string(r.bytes(maxSnapshotEpoch))
		st.next = r.uvarint()
		count := r.uvarint()
		if r.err == nil && (!ValidTopic(st.name) || st.epoch == "" || st.next == 0) {
			return nil, bad(fmt.Sprintf("topic %d: invalid name, epoch or offset", i))
		}
		prev := uint64(0)
		for j := uint64(0); j < count && r.err == nil; j++ {
			m := &Message{Offset: r.uvarint(), Time: int64(r.uvarint())}
			m.Op = websocket.Opcode(r.byte())
			m.Data = append([]byte(nil), r.bytes(maxSnapshotMsg)...)
			if r.err == nil && (m.Offset <= prev || m.Offset >= st.next || (m.Op != websocket.OpText && m.Op != websocket.OpBinary)) {
				return nil, bad(fmt.Sprintf("topic %q: message %d out of order or of a bad opcode", st.name, j))
			}
			prev = m.Offset
			st.msgs = append(st.msgs, m)
		}
		if keep >= 0 && len(st.msgs) > keep {
			st.msgs = st.msgs[len(st.msgs)-keep:]
		}
		out = append(out, st)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("bytes after the last topic")
	}
	if r.err != nil {
		return nil, bad(r.err.Error())
	}
	return out, nil
}

// snapReader decodes a snapshot's fields; the first fault sticks in err.
type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("truncated number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errors.New("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *snapReader) bytes(limit uint64) []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > limit || n > uint64(len(r.b)) {
		r.err = fmt.Errorf("field of %d bytes (limit %d, %d left)", n, limit, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
