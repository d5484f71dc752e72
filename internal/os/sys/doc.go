// Package sys is documented in sock_linux.go. It is Linux-only; the engine's portable
// fallback does not use it.
package sys
