//go:build !linux

package main

import "errors"

// epollAvailable says runEchoEpoll and runFanoutEpoll exist on this system.
const epollAvailable = false

// runEchoEpoll is Linux only; elsewhere -io go is the echo client.
func runEchoEpoll(options, []*conn) error { return errors.New("-io epoll needs Linux") }

// runFanoutEpoll is Linux only; elsewhere -io go is the fan-out client.
func runFanoutEpoll(options, []*conn, *conn) error { return errors.New("-io epoll needs Linux") }
