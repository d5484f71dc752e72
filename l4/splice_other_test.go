//go:build !linux || galenet

package l4

// spliceWorks: the portable engine copies every relay.
const spliceWorks = false
