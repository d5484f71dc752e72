// Package poll is documented in epoll_linux.go; on systems without epoll it is empty
// and the engine uses its portable fallback built on the net package.
package poll
