// Package l4proto reads and writes the few protocol elements a layer-4 (TCP)
// proxy looks at without terminating the stream: the PROXY protocol header
// (versions 1 and 2) that carries a client's address across a proxy, and the
// server name (SNI) of a TLS ClientHello.
//
// Like every protocol package of gale it does no I/O. Each reader takes the bytes
// received so far and answers in one of three ways: done (with how many bytes the
// element took, when that matters), need more bytes, or an error. A caller feeds
// it the whole prefix again each time more arrives, so a header split across
// reads at any byte gives the same answer as one that arrives whole. Every size
// is bounded; the bounds are constants of this package.
package l4proto
