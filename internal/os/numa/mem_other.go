//go:build !linux

package numa

import "errors"

// Alloc is unsupported outside Linux: callers fall back to ordinary memory.
func Alloc(size, node int) ([]byte, error) { return nil, errors.ErrUnsupported }

// Free does nothing: Alloc never returns memory outside Linux.
func Free(b []byte) error { return nil }

// BoundNodes is unsupported outside Linux.
func BoundNodes(b []byte) ([]int, error) { return nil, errors.ErrUnsupported }
