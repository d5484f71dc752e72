package static

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countLoads wraps the cache's loader and counts calls.
func countLoads(h *Handler) *atomic.Int32 {
	var n atomic.Int32
	load := h.cache.load
	h.cache.load = func(key string) (*entry, error) {
		n.Add(1)
		return load(key)
	}
	return &n
}

// content returns what the entry would send.
func content(t *testing.T, e *entry) string {
	t.Helper()
	if e.data != nil {
		return string(e.data)
	}
	buf := make([]byte, e.size)
	n, err := preadFD(e.fd, buf, 0)
	if err != nil {
		t.Fatalf("read %s: %v", e.key, err)
	}
	return string(buf[:n])
}

func mustGet(t *testing.T, h *Handler, key string, now time.Time) *entry {
	t.Helper()
	e, err := h.cache.get(key, now)
	if err != nil {
		t.Fatalf("get(%q): %v", key, err)
	}
	return e
}

func TestCacheRevalidateAfterEdit(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"a.txt": "v1"})
	h := newHandler(t, Options{Root: root, OpenFileCache: CacheOptions{Revalidate: time.Second}})
	loads := countLoads(h)
	t0 := time.Unix(1_700_000_000, 0)

	e1 := mustGet(t, h, "a.txt", t0)
	if got := content(t, e1); got != "v1" {
		t.Fatalf("first content %q", got)
	}
	e1.release()

	p := filepath.Join(root, "a.txt")
	if err := os.WriteFile(p, []byte("version2"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Within the revalidation interval the cached entry is trusted.
	e2 := mustGet(t, h, "a.txt", t0.Add(999*time.Millisecond))
	if e2 != e1 || loads.Load() != 1 {
		t.Fatalf("within interval: new entry %v, %d loads", e2 != e1, loads.Load())
	}
	e2.release()
	// Once it has passed, the edit is seen.
	e3 := mustGet(t, h, "a.txt", t0.Add(time.Second))
	if got := content(t, e3); got != "version2" || loads.Load() != 2 {
		t.Fatalf("after interval: %q, %d loads", got, loads.Load())
	}
	e3.release()
	// An unchanged file keeps its entry across revalidation.
	e4 := mustGet(t, h, "a.txt", t0.Add(3*time.Second))
	if e4 != e3 || loads.Load() != 3 {
		t.Fatalf("unchanged: new entry %v, %d loads", e4 != e3, loads.Load())
	}
	e4.release()
	// A file replaced by rename with the same size and mtime is still noticed (new inode).
	fi, _ := os.Stat(p)
	tmp := filepath.Join(root, "a.tmp")
	if err := os.WriteFile(tmp, []byte("VERSION2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	e5 := mustGet(t, h, "a.txt", t0.Add(5*time.Second))
	if got := content(t, e5); got != "VERSION2" {
		t.Fatalf("after rename: %q", got)
	}
	e5.release()
	// A deleted file is dropped from the cache at the next revalidation.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := h.cache.get("a.txt", t0.Add(7*time.Second)); !errors.Is(err, errNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if n := h.cache.len(); n != 0 {
		t.Fatalf("%d entries after delete", n)
	}
}

func TestCacheEvictionKeepsInFlightOpen(t *testing.T) {
	root := t.TempDir()
	big := bigContent(smallFileMax + 1)
	writeTree(t, root, map[string]string{"a": "A" + big, "b": "B" + big, "c": "C" + big})
	h := newHandler(t, Options{Root: root, OpenFileCache: CacheOptions{Max: 2}})
	now := time.Unix(1_700_000_000, 0)

	a := mustGet(t, h, "a", now) // held, as by a queued sendfile
	if a.file == nil || a.data != nil {
		t.Fatal("large file should stay on its descriptor")
	}
	mustGet(t, h, "b", now).release()
	mustGet(t, h, "c", now).release() // evicts a, the least recently used
	if n := h.cache.len(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	if _, err := a.file.Stat(); err != nil {
		t.Fatalf("evicted entry closed while in flight: %v", err)
	}
	if got := content(t, a); got[0] != 'A' {
		t.Fatalf("evicted entry content %q", got[:1])
	}
	a.release()
	if _, err := a.file.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("evicted entry still open after its last release: %v", err)
	}

	// A replaced entry also stays open for its in-flight sends and keeps its content.
	b := mustGet(t, h, "b", now)
	tmp := filepath.Join(root, "b.tmp")
	writeTree(t, root, map[string]string{"b.tmp": "b2" + big})
	if err := os.Rename(tmp, filepath.Join(root, "b")); err != nil {
		t.Fatal(err)
	}
	b2 := mustGet(t, h, "b", now.Add(time.Hour))
	if b2 == b || content(t, b2)[:2] != "b2" || content(t, b)[0] != 'B' {
		t.Fatal("replacement did not keep old and new contents apart")
	}
	b.release()
	if _, err := b.file.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("replaced entry still open: %v", err)
	}
	b2.release()
}

func TestCacheLRUOrder(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"a": "a", "b": "b", "c": "c"})
	h := newHandler(t, Options{Root: root, OpenFileCache: CacheOptions{Max: 2}})
	loads := countLoads(h)
	now := time.Unix(1_700_000_000, 0)
	for _, k := range []string{"a", "b", "a", "c", "a"} {
		mustGet(t, h, k, now).release()
	}
	// a, b, (a hit), c evicts b, (a hit): 3 loads; b must be loaded again.
	if loads.Load() != 3 {
		t.Fatalf("%d loads, want 3", loads.Load())
	}
	mustGet(t, h, "b", now).release()
	if loads.Load() != 4 {
		t.Fatalf("b was not evicted")
	}
}

func TestCacheMemoryAccounting(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"s1": "small one", "s2": "small two", "s3": "three"})
	h := newHandler(t, Options{Root: root, OpenFileCache: CacheOptions{Max: 1}})
	now := time.Unix(1_700_000_000, 0)
	s1 := mustGet(t, h, "s1", now)
	if s1.data == nil || s1.file != nil || s1.fd != -1 {
		t.Fatal("small file not held in memory")
	}
	if got := h.cache.memUsed.Load(); got != s1.size {
		t.Fatalf("memUsed %d, want %d", got, s1.size)
	}
	mustGet(t, h, "s2", now).release() // evicts s1, still referenced
	if got := h.cache.memUsed.Load(); got != s1.size+9 {
		t.Fatalf("memUsed %d with an evicted in-flight entry", got)
	}
	s1.release()
	mustGet(t, h, "s3", now).release()
	if got := h.cache.memUsed.Load(); got != 5 {
		t.Fatalf("memUsed %d, want 5", got)
	}
	h.cache.close()
	if got := h.cache.memUsed.Load(); got != 0 {
		t.Fatalf("memUsed %d after close", got)
	}
}

func TestCacheDisabled(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"a": bigContent(smallFileMax + 10)})
	h := newHandler(t, Options{Root: root, OpenFileCache: CacheOptions{Max: -1}})
	now := time.Unix(1_700_000_000, 0)
	e := mustGet(t, h, "a", now)
	if h.cache.len() != 0 {
		t.Fatal("disabled cache listed an entry")
	}
	e.release()
	if _, err := e.file.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("uncached entry not closed: %v", err)
	}
}

func TestCacheCloseKeepsHeldEntries(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"a": bigContent(smallFileMax + 10)})
	h, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	e := mustGet(t, h, "a", time.Now())
	h.Close()
	if _, err := e.file.Stat(); err != nil {
		t.Fatalf("held entry closed by Close: %v", err)
	}
	e.release()
	if _, err := e.file.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("entry open after close and release: %v", err)
	}
}

// TestCacheConcurrent runs lookups from several goroutines (as from several loops)
// while files are rewritten, under the race detector; afterwards every reference must
// have been returned.
func TestCacheConcurrent(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{}
	for i := range 40 {
		files[fmt.Sprintf("f%d", i)] = bigContent(100 * i)
	}
	files["big"] = bigContent(smallFileMax * 2)
	writeTree(t, root, files)
	h, err := New(Options{Root: root, OpenFileCache: CacheOptions{Max: 16, Revalidate: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(w)))
			for range 500 {
				key := fmt.Sprintf("f%d", rnd.Intn(40))
				if rnd.Intn(8) == 0 {
					key = "big"
				}
				now := time.Unix(0, clock.Add(int64(time.Millisecond)))
				if e, err := h.cache.get(key, now); err == nil {
					if e.data == nil {
						e.acquire()()
					}
					e.release()
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			name := filepath.Join(root, fmt.Sprintf("f%d", i%40))
			os.WriteFile(name, []byte(bigContent(50+i)), 0o644)
		}
	}()
	wg.Wait()
	h.Close()
	if got := h.cache.memUsed.Load(); got != 0 {
		t.Fatalf("memUsed %d after close: a reference leaked", got)
	}
}
