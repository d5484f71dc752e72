// Package uring is a minimal io_uring binding on raw system calls (io_uring_setup,
// io_uring_enter, io_uring_register) with the submission and completion rings
// mapped with mmap: no cgo, no library. It offers what the engine's io_uring loop
// needs and nothing more: preparing submission entries for the operations it uses,
// one enter call that submits and waits (with a timeout), reading completions, a
// provided-buffer ring, and a probe telling whether the running kernel has all of
// it. Only Linux has io_uring; elsewhere Probe reports it missing.
package uring
