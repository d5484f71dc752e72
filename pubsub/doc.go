// Package pubsub is gale's publish/subscribe hub: named topics whose messages are
// framed once, into one buffer, and queued to every subscriber on every event loop
// without a copy.
//
// # Ownership
//
// A Hub is shared by every loop. Its topic map is guarded by Hub.mu; a Topic's
// offset counter and history ring by Topic.mu. Each topic keeps one subscriber list
// per loop, owned by that loop: only the loop adds, removes or walks its list. A
// subscriber (a WebSocket or an SSE connection) belongs to its connection's loop.
//
// # Topic lifecycle
//
// A topic exists while it is held (Hub.Acquire: subscriptions, a publish in
// progress). Without history it leaves with its last holder; with history and a
// TTL, a sweeper goroutine per hub removes it once it has no holder, no kept
// message and no publication for a TTL, and with history and no TTL it stays.
// Options.MaxTopics bounds the topics of a hub: creating one more fails with
// ErrTopicLimit. A client's grant that expires ends its connection at that time
// through one timer per loop (expiry.go), not one per connection.
//
// # Fan-out
//
// Publish copies the payload once into a Message, assigns the next offset under the
// topic's lock, builds the frames the topic's subscribers need (one per encoding:
// the raw WebSocket frame, the JSON envelope frame, the SSE event), and appends the
// message to the inbox of every loop that has subscribers. A loop's inbox is drained
// by one posted task however many messages it holds, so a publish reaches another
// loop as at most one task. Appending under the topic lock keeps every loop's order
// the offset order. The loop walks its subscribers and queues the frame to each
// connection by reference (engine.Conn.WriteRef) with a loop-local count, so the
// shared count is touched once per loop, not once per subscriber; the engine then
// writes each subscriber once per iteration with one sendmsg for all its pending
// frames.
//
// # Slow consumers
//
// While a subscriber's socket queue holds less than Options.SocketBytes, frames go
// straight to it. Beyond that they wait in the subscriber's queue of at most
// Options.Queue messages; when that is full the policy applies: DropOldest drops the
// oldest waiting message (counted, and a protocol client is told how many with a
// "dropped" message once it catches up) and Close closes the connection (WebSocket
// code 1008). Nothing grows without bound.
package pubsub
