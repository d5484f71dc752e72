package static

import (
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Sizes of the in-memory part of the cache. Files up to smallFileMax bytes are read
// into their entry and sent with Write, so headers and body leave in one writev and the
// descriptor is closed at once; larger files keep their descriptor and go out with
// sendfile. memBudget bounds the bytes held that way across the whole cache. Both are
// first guesses, to be tuned by the benchmarks in bench/.
const (
	smallFileMax = 16 << 10
	memBudget    = 64 << 20
)

// entry is one file, or one precompressed variant of a file, ready to serve. Every
// field except refs, checked and the LRU links is written before the entry is
// published and never again, so loops read them without locks.
type entry struct {
	key   string      // cache key: the cleaned path, plus "\x00" and the coding for a variant
	file  *os.File    // open descriptor, or nil when data holds the whole file
	fd    int         // file's descriptor, -1 when file is nil
	data  []byte      // whole content for small files, else nil
	fi    os.FileInfo // fstat at open; identity for revalidation
	size  int64
	mtime int64 // nanoseconds since the Unix epoch

	modSec   int64                  // mtime in whole seconds, for Last-Modified comparisons
	etag     string                 // strong entity-tag with quotes
	ctype    string                 // Content-Type of the (decoded) content
	encoded  bool                   // a precompressed variant, sent with Content-Encoding
	siblings encoding               // identity entries: precompressed siblings found next to the file
	variants [len(encodings)]string // identity entries: cache keys of the sibling variants

	hdrMeta []byte // rendered Last-Modified, ETag, Cache-Control, Vary: sent with 200, 206, 304
	lmLen   int    // length of the Last-Modified line at the start of hdrMeta
	hdrType []byte // rendered Content-Type: sent with 200 and single-part 206
	hdrBody []byte // rendered Accept-Ranges and Content-Encoding: sent with 200 and 206

	releaseFn  func()       // e.release as a func value made once, passed to SendFile
	refs       atomic.Int32 // one for the cache while listed, one per request and per queued send
	memCharged int64        // bytes of data charged to owner.memUsed
	owner      *fileCache   // cache that charged memCharged, or nil

	checked    time.Time // last time the file was confirmed unchanged; owned by the shard's mu
	prev, next *entry    // LRU links, most recent first; owned by the shard's mu
}

// acquire takes a reference for a send and returns the func that drops it.
func (e *entry) acquire() func() {
	e.refs.Add(1)
	return e.releaseFn
}

// release drops one reference; the last one closes the file and returns the memory
// charge. Entries evicted or replaced in the cache thus stay open until the sends that
// use them finish.
func (e *entry) release() {
	switch n := e.refs.Add(-1); {
	case n == 0:
		if e.file != nil {
			e.file.Close()
		}
		if e.owner != nil && e.memCharged > 0 {
			e.owner.memUsed.Add(-e.memCharged)
		}
	case n < 0:
		panic("static: cache entry released more often than acquired")
	}
}

// sameFile reports whether candidate c describes the same, unchanged file as e.
func (e *entry) sameFile(c *entry) bool {
	return os.SameFile(e.fi, c.fi) && e.size == c.size && e.mtime == c.mtime && e.siblings == c.siblings
}

// fileCache is the open-file cache of one Handler, shared by every event loop. Keys
// hash to one of several shards, each an LRU list under its own mutex, so loops
// contend only when they touch the same shard at the same instant; the mutexes are
// held for map and list updates only, never across a system call. Only regular files
// are cached: directories are reopened on each request, and failed lookups are not
// cached at all, so a flood of requests for random missing paths cannot evict the
// hot entries (a missing-file openat2 costs about a microsecond).
type fileCache struct {
	shards   []cacheShard // immutable slice; each shard guards itself
	perShard int          // LRU capacity of each shard; immutable; <= 0 disables caching
	// openPerShard is the most listed entries of one shard that hold a descriptor
	// (files above smallFileMax); <= 0 means no bound but perShard. Immutable.
	openPerShard int
	revalidate   time.Duration // immutable
	// load opens the file of a key and returns an unpublished entry with refs 0; it
	// returns errIsDir, errNotFound, errForbidden or a system error. Immutable (tests
	// may wrap it before first use).
	load    func(key string) (*entry, error)
	closed  atomic.Bool  // set by close; later lookups bypass the cache
	memUsed atomic.Int64 // bytes of small-file data held by live entries
}

type cacheShard struct {
	mu         sync.Mutex
	m          map[string]*entry // guarded by mu
	head, tail *entry            // LRU ends, guarded by mu
	open       int               // listed entries holding a descriptor, guarded by mu
}

// newFileCache returns a cache of at most maxEntries entries (<= 0: none), of which
// at most about maxOpen (<= 0: no bound) hold an open descriptor.
func newFileCache(maxEntries, maxOpen int, revalidate time.Duration, load func(string) (*entry, error)) *fileCache {
	n := 1
	if maxEntries >= 256 {
		n = 16
	}
	c := &fileCache{shards: make([]cacheShard, n), revalidate: revalidate, load: load}
	if maxEntries > 0 {
		c.perShard = (maxEntries + n - 1) / n
	}
	if maxOpen > 0 {
		c.openPerShard = max(1, maxOpen/n)
	}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*entry)
	}
	return c
}

func (c *fileCache) shard(key string) *cacheShard {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return &c.shards[h%uint32(len(c.shards))]
}

// get returns the entry for key with one reference held for the caller, who must call
// release when done. An entry last confirmed more than revalidate before now is
// confirmed again by reopening its file: unchanged (same file, size, mtime and
// siblings) it is kept, changed it is replaced, gone it is dropped. An entry served
// from its descriptor is also checked with fstat on every hit and reloaded at once
// when its size or modification time changed, so a file edited in place never goes
// out with a stale length or entity-tag.
func (c *fileCache) get(key string, now time.Time) (*entry, error) {
	if c.perShard <= 0 || c.closed.Load() {
		return c.uncached(key)
	}
	s := c.shard(key)
	s.mu.Lock()
	if e := s.m[key]; e != nil && now.Sub(e.checked) < c.revalidate {
		s.moveToFront(e)
		e.refs.Add(1)
		s.mu.Unlock()
		// An entry sent from its descriptor is read live by sendfile, so a file
		// truncated, extended or rewritten in place would go out with the entry's old
		// length and validators around new bytes (or be cut short). One fstat per
		// hit catches that; an in-memory entry is a consistent snapshot and is trusted
		// until revalidate.
		if e.file == nil || e.onDiskUnchanged() {
			return e, nil
		}
		e.release()
	} else {
		s.mu.Unlock()
	}

	cand, err := c.load(key)
	if err != nil {
		s.mu.Lock()
		if e := s.m[key]; e != nil {
			s.remove(e)
		}
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Lock()
	if e := s.m[key]; e != nil && e.sameFile(cand) {
		e.checked = now
		s.moveToFront(e)
		e.refs.Add(1)
		s.mu.Unlock()
		cand.file.Close()
		return e, nil
	}
	s.mu.Unlock()

	c.keepInMemory(cand)
	cand.owner = c
	cand.checked = now
	cand.refs.Store(2) // the cache's and the caller's
	s.mu.Lock()
	if old := s.m[key]; old != nil {
		s.remove(old)
	}
	s.m[key] = cand
	s.pushFront(cand)
	if cand.file != nil {
		s.open++
	}
	for len(s.m) > c.perShard {
		s.remove(s.tail)
	}
	// Descriptors are a process-wide budget that connections need too: past its
	// share, the least recently used entry that holds one goes (cand, at the front,
	// is never the first such entry from the tail while more than one is listed).
	for c.openPerShard > 0 && s.open > c.openPerShard {
		s.remove(s.lruOpen())
	}
	s.mu.Unlock()
	return cand, nil
}

// shed unlists the least recently used half (rounded up) of each shard's entries
// that hold a descriptor and reports how many it unlisted. It is called when an open
// fails for lack of descriptors; an unlisted entry's descriptor is closed at once,
// or when the last send using it finishes.
func (c *fileCache) shed() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		drop := (s.open + 1) / 2
		for e := s.tail; e != nil && drop > 0; {
			prev := e.prev
			if e.file != nil {
				s.remove(e)
				drop--
				n++
			}
			e = prev
		}
		s.mu.Unlock()
	}
	return n
}

// uncached loads key without publishing it; the caller's reference is the only one.
func (c *fileCache) uncached(key string) (*entry, error) {
	e, err := c.load(key)
	if err != nil {
		return nil, err
	}
	e.refs.Store(1)
	return e, nil
}

// keepInMemory reads a small file into its entry and closes the descriptor, within the
// memory budget. A short read (the file shrank) leaves the entry on its descriptor.
func (c *fileCache) keepInMemory(e *entry) {
	if e.size > smallFileMax || e.file == nil {
		return
	}
	if c.memUsed.Add(e.size) > memBudget {
		c.memUsed.Add(-e.size)
		return
	}
	buf := make([]byte, e.size)
	if n, _ := e.file.ReadAt(buf, 0); int64(n) != e.size {
		c.memUsed.Add(-e.size)
		return
	}
	e.file.Close()
	e.file, e.fd, e.data, e.memCharged = nil, -1, buf, e.size
}

// close empties the cache and makes later lookups bypass it.
func (c *fileCache) close() {
	c.closed.Store(true)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for s.head != nil {
			s.remove(s.head)
		}
		s.mu.Unlock()
	}
}

// len returns the number of cached entries.
func (c *fileCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// remove unlists e and drops the cache's reference. Caller holds s.mu.
func (s *cacheShard) remove(e *entry) {
	if e.file != nil {
		s.open--
	}
	delete(s.m, e.key)
	s.unlink(e)
	e.release()
}

// lruOpen returns the least recently used listed entry that holds a descriptor, or
// nil when none does. Caller holds s.mu.
func (s *cacheShard) lruOpen() *entry {
	e := s.tail
	for e != nil && e.file == nil {
		e = e.prev
	}
	return e
}

// pushFront lists e as most recently used. Caller holds s.mu.
func (s *cacheShard) pushFront(e *entry) {
	e.prev, e.next = nil, s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
}

// unlink takes e out of the LRU list. Caller holds s.mu.
func (s *cacheShard) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *cacheShard) moveToFront(e *entry) {
	if s.head != e {
		s.unlink(e)
		s.pushFront(e)
	}
}
