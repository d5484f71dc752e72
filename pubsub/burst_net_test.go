//go:build galenet || !linux

package pubsub

// burstOneRead says the engine reads a 22 KB burst that arrived together in one
// iteration; the portable engine's reader goroutine starts with a small buffer and
// posts each chunk as its own task, which may fall into separate iterations.
const burstOneRead = false
