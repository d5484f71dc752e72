//go:build linux && !galenet

package proxy

// expectSplice says whether the engine under test splices bulk tunnels (the
// epoll engine does; the portable one copies).
const expectSplice = true
