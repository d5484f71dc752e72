//go:build linux && !galenet

package l4

// spliceWorks: the epoll engine supports read notification, so bulk relays splice.
const spliceWorks = true
