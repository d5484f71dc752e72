//go:build !linux

package shm

import (
	"errors"
	"os"
)

// Dir returns os.TempDir(); segments are not supported outside Linux.
func Dir() string { return os.TempDir() }

// Create is unsupported outside Linux: counters stay per process.
func Create(path string, slots int) (*Segment, error) { return nil, errors.ErrUnsupported }

// Open is unsupported outside Linux.
func Open(path string) (*Segment, error) { return nil, errors.ErrUnsupported }

// OpenReadOnly is unsupported outside Linux.
func OpenReadOnly(path string) (*Segment, error) { return nil, errors.ErrUnsupported }

// Close does nothing: no segment can be opened outside Linux.
func (s *Segment) Close() error { return nil }

// Remove does nothing: no segment can be created outside Linux.
func (s *Segment) Remove() error { return nil }

// ProcessAlive reports false: process checks are Linux-only here.
func ProcessAlive(pid int) bool { return false }
