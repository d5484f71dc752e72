package server

import "github.com/gale-server/gale/http2"

// HTTP2Stats are cumulative counts of the HTTP/2 connections of a Server, summed over
// its loops (see http2.Counters for what each protocol count covers).
type HTTP2Stats struct {
	Conns          uint64 // connections started (prior knowledge, Upgrade: h2c, or ALPN h2)
	ConnsClosed    uint64 // connections ended; Conns-ConnsClosed are open
	StreamsOpened  uint64 // streams accepted
	ResetsReceived uint64 // RST_STREAM from clients for open streams
	ResetsSent     uint64 // RST_STREAM sent
	// GoAwaysSent counts GOAWAY frames by error code (index: the code; the last
	// element: codes RFC 9113 does not define).
	GoAwaysSent [http2.NumErrCodes + 1]uint64
	// Glitches counts limits tripped and rules broken, by http2.GlitchKind.
	Glitches [http2.NumGlitchKinds]uint64
}

// add adds the counts of one loop.
func (s *HTTP2Stats) add(ls *loopState) {
	s.Conns += ls.h2Opened.Load()
	s.ConnsClosed += ls.h2Closed.Load()
	c := &ls.h2
	s.StreamsOpened += c.StreamsOpened.Load()
	s.ResetsReceived += c.ResetsReceived.Load()
	s.ResetsSent += c.ResetsSent.Load()
	for i := range s.GoAwaysSent {
		s.GoAwaysSent[i] += c.GoAwaysSent[i].Load()
	}
	for i := range s.Glitches {
		s.Glitches[i] += c.Glitches[i].Load()
	}
}
