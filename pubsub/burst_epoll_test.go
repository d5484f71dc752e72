//go:build linux && !galenet

package pubsub

// burstOneRead says the engine reads a 22 KB burst that arrived together in one
// iteration (epoll and io_uring: one read into the loop's 128 KiB buffer).
const burstOneRead = true
