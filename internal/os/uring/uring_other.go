//go:build !linux

package uring

import "errors"

// Probe reports that io_uring is missing: it exists only on Linux.
func Probe() error { return errors.New("io_uring: only on Linux") }
