// Package pool provides size-classed byte buffers from 64 B to 64 KiB.
//
// Buffers come from a process-wide set of sync.Pools, one per size class, and may be
// fronted by a Cache that belongs to a single event loop: the loop takes and returns
// buffers without any synchronisation, and only spills to the shared pools when its
// bounded free lists are empty or full. Requests above MaxSize are served by a plain
// allocation and are never pooled.
package pool

import (
	"math/bits"
	"sync"
)

const (
	// MinSize is the smallest class; every buffer has at least this capacity.
	MinSize = 64
	// MaxSize is the largest pooled class.
	MaxSize = 64 << 10
	// classes is the number of size classes: 64, 128, ..., 65536.
	classes = 11
	// cacheDepth bounds how many free buffers a Cache keeps per class.
	cacheDepth = 64
)

// shared holds one sync.Pool per class. Values are *[]byte so that Put does not allocate.
var shared [classes]sync.Pool

func init() {
	for i := range shared {
		size := MinSize << i
		shared[i].New = func() any {
			b := make([]byte, size)
			return &b
		}
	}
}

// class returns the index of the smallest class that holds n bytes, or -1 when n > MaxSize.
func class(n int) int {
	if n <= MinSize {
		return 0
	}
	if n > MaxSize {
		return -1
	}
	return bits.Len(uint(n-1)) - 6
}

// Get returns a buffer of length n whose capacity is n's size class. Its contents are
// undefined. A request above MaxSize is allocated exactly and will not be pooled by Put.
func Get(n int) []byte {
	c := class(n)
	if c < 0 {
		return make([]byte, n)
	}
	p := shared[c].Get().(*[]byte)
	return (*p)[:n]
}

// Put returns b to its class. Buffers whose capacity is not exactly a class size (for
// example slices of larger buffers, or oversize allocations) are dropped for the GC.
func Put(b []byte) {
	c := cap(b)
	if c < MinSize || c > MaxSize || c&(c-1) != 0 {
		return
	}
	b = b[:c]
	shared[class(c)].Put(&b)
}

// Cache is a per-loop front for the shared pools. It is owned by one goroutine (the
// event loop it belongs to) and must not be used concurrently.
type Cache struct {
	free [classes][][]byte // owned by the cache's loop
}

// Get returns a buffer of length n, preferring the cache's own free list.
func (c *Cache) Get(n int) []byte {
	k := class(n)
	if k < 0 {
		return make([]byte, n)
	}
	l := c.free[k]
	if len(l) == 0 {
		return Get(n)
	}
	b := l[len(l)-1]
	l[len(l)-1] = nil
	c.free[k] = l[:len(l)-1]
	return b[:n]
}

// Put gives b back to the cache, spilling to the shared pool when the cache is full.
func (c *Cache) Put(b []byte) {
	n := cap(b)
	if n < MinSize || n > MaxSize || n&(n-1) != 0 {
		return
	}
	k := class(n)
	if len(c.free[k]) >= cacheDepth {
		Put(b)
		return
	}
	c.free[k] = append(c.free[k], b[:n])
}

// ClassSize reports the capacity Get(n) would return, or n itself above MaxSize.
func ClassSize(n int) int {
	k := class(n)
	if k < 0 {
		return n
	}
	return MinSize << k
}
