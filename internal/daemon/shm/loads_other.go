//go:build !linux

package shm

import "errors"

// MapShared is unsupported outside Linux: load tables stay per process.
func MapShared(path string, size int) ([]byte, error) { return nil, errors.ErrUnsupported }

// Unmap does nothing outside Linux.
func Unmap(mem []byte) error { return nil }
