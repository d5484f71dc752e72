//go:build linux && !galenet

package l4

// spliceWorks: the Linux engine (epoll and io_uring) supports read notification,
// so bulk relays splice.
const spliceWorks = true
