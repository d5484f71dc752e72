//go:build linux && !galenet

package l4

// spliceWorks: the epoll engine supports read notification, so bulk relays splice
// (the io_uring backend does not: its relays copy).
const spliceWorks = true
