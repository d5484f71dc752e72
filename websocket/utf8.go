package websocket

import "encoding/binary"

// utf8State validates UTF-8 incrementally: it remembers an unfinished sequence at the end
// of one piece so that the next piece continues it. The zero value is at a boundary.
type utf8State struct {
	need   uint8 // continuation bytes still expected
	lo, hi uint8 // allowed range of the next continuation byte
}

// feed validates b after what came before and returns the index of the first byte that
// cannot be part of valid UTF-8, or -1. After a failure the state is meaningless.
func (s *utf8State) feed(b []byte) int {
	i := 0
	for i < len(b) {
		if s.need > 0 {
			c := b[i]
			if c < s.lo || c > s.hi {
				return i
			}
			s.need--
			s.lo, s.hi = 0x80, 0xBF
			i++
			continue
		}
		for i+8 <= len(b) && binary.LittleEndian.Uint64(b[i:])&0x8080808080808080 == 0 {
			i += 8
		}
		if i == len(b) {
			break
		}
		c := b[i]
		s.lo, s.hi = 0x80, 0xBF
		switch {
		case c < 0x80:
		case c < 0xC2:
			return i
		case c < 0xE0:
			s.need = 1
		case c == 0xE0:
			s.need, s.lo = 2, 0xA0
		case c == 0xED:
			s.need, s.hi = 2, 0x9F
		case c < 0xF0:
			s.need = 2
		case c == 0xF0:
			s.need, s.lo = 3, 0x90
		case c < 0xF4:
			s.need = 3
		case c == 0xF4:
			s.need, s.hi = 3, 0x8F
		default:
			return i
		}
		i++
	}
	return -1
}

// complete reports whether the input so far ends at a character boundary.
func (s *utf8State) complete() bool { return s.need == 0 }

// feedMasked validates b as it reads once unmasked with key starting at key offset pos,
// without changing b.
func (s *utf8State) feedMasked(b []byte, key [4]byte, pos int) int {
	var tmp [256]byte
	for off := 0; off < len(b); {
		n := copy(tmp[:], b[off:])
		maskBytes(key, pos+off, tmp[:n])
		if i := s.feed(tmp[:n]); i >= 0 {
			return off + i
		}
		off += n
	}
	return -1
}

// validUTF8 reports whether b is complete, valid UTF-8.
func validUTF8(b []byte) bool {
	var s utf8State
	return s.feed(b) < 0 && s.complete()
}
