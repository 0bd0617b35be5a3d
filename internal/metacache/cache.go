// Package metacache is the bounded in-process cache in front of the metadata store's
// hottest reads (a manifest by tag or digest, a blob's visibility in a repository).
//
// It knows nothing about what it holds: the store decides what may be cached and when
// everything must go (Flush). What it does guarantee is the one property an exact
// cache needs under concurrency: a value read from the database before a Flush can
// never be added after it (Add takes the generation the reader saw before its query),
// so a reader racing a writer cannot put the old state back once the store has
// flushed for the write.
package metacache

import (
	"container/list"
	"sync"
)

// Cache is a least-recently-used map bounded by the bytes its entries declare. It is
// safe for concurrent use.
type Cache struct {
	mu   sync.Mutex
	max  int64
	used int64
	gen  uint64
	ll   list.List // of *entry, most recently used first
	m    map[string]*list.Element

	hits, misses, flushes uint64
}

type entry struct {
	key  string
	val  any
	size int64
}

// entryOverhead is charged on top of each entry's own size: the map slot, the list
// element and the entry itself, so many tiny entries still respect the bound.
const entryOverhead = 160

// New returns a cache holding at most maxBytes (entries larger than an eighth of that
// are not kept: one manifest must not push out hundreds).
func New(maxBytes int64) *Cache {
	return &Cache{max: maxBytes, m: make(map[string]*list.Element)}
}

// Generation is taken before reading the value to add from the database.
func (c *Cache) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Get returns the value for key and marks it recently used.
func (c *Cache) Get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		c.misses++
		return nil, false
	}
	c.hits++
	c.ll.MoveToFront(el)
	return el.Value.(*entry).val, true
}

// Add stores v under key unless the cache was flushed since gen was taken (the value
// may then be older than the flush) or v is too large; it reports whether v was kept.
// v must not be modified afterwards: readers share it.
func (c *Cache) Add(key string, v any, size int64, gen uint64) bool {
	size += entryOverhead + int64(len(key))
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || size > c.max/8 {
		return false
	}
	if el, ok := c.m[key]; ok {
		e := el.Value.(*entry)
		c.used += size - e.size
		e.val, e.size = v, size
		c.ll.MoveToFront(el)
	} else {
		c.m[key] = c.ll.PushFront(&entry{key: key, val: v, size: size})
		c.used += size
	}
	for c.used > c.max {
		el := c.ll.Back()
		e := el.Value.(*entry)
		c.ll.Remove(el)
		delete(c.m, e.key)
		c.used -= e.size
	}
	return true
}

// Flush drops every entry and starts a new generation, so values read before it are
// refused by Add.
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.flushes++
	clear(c.m)
	c.ll.Init()
	c.used = 0
}

// Stats is a snapshot of the cache's counters.
type Stats struct {
	Entries               int
	Bytes                 int64
	Hits, Misses, Flushes uint64
}

// Stats returns the current counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Entries: len(c.m), Bytes: c.used, Hits: c.hits, Misses: c.misses, Flushes: c.flushes}
}
