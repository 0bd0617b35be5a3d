// Package limits keeps one client from taking the registry from the others: token
// buckets per principal or client address for reads and writes, a bound on requests in
// flight, an idle deadline on upload bodies and bounds on open upload sessions. Rate
// state is in memory per replica by design (a database round trip per request would cost
// more than the requests it protects); session counts are rows in the database and hold
// across replicas.
package limits

import (
	"container/list"
	"math"
	"sync"
	"time"
)

// Rate is a token bucket's shape: Rate tokens per second refill, Burst at most held.
type Rate struct {
	PerSecond float64
	Burst     float64
}

// Buckets is a token bucket per key, bounded: past max keys the least recently used is
// dropped. A dropped bucket that was full loses nothing (a new one starts full), so idle
// buckets go first; an attacker minting keys (addresses, accounts) only recycles its own
// and other idle entries and cannot grow memory.
type Buckets struct {
	rate Rate
	max  int
	now  func() time.Time

	mu    sync.Mutex
	byKey map[string]*list.Element
	lru   *list.List // front: most recently used
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time
}

// NewBuckets returns buckets of rate r holding at most max keys.
func NewBuckets(r Rate, max int, now func() time.Time) *Buckets {
	if now == nil {
		now = time.Now
	}
	return &Buckets{rate: r, max: max, now: now, byKey: map[string]*list.Element{}, lru: list.New()}
}

// Take spends one token of key's bucket. When none is left it returns false and how long
// until one is.
func (b *Buckets) Take(key string) (bool, time.Duration) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.byKey[key]
	if !ok {
		b.makeRoom(now)
		e = b.lru.PushFront(&bucket{key: key, tokens: b.rate.Burst, at: now})
		b.byKey[key] = e
	} else {
		b.lru.MoveToFront(e)
	}
	k := e.Value.(*bucket)
	k.tokens = b.refilled(k, now)
	k.at = now
	if k.tokens >= 1 {
		k.tokens--
		return true, 0
	}
	wait := time.Duration(math.Ceil((1 - k.tokens) / b.rate.PerSecond * float64(time.Second)))
	return false, wait
}

func (b *Buckets) refilled(k *bucket, now time.Time) float64 {
	t := k.tokens + now.Sub(k.at).Seconds()*b.rate.PerSecond
	return math.Min(t, b.rate.Burst)
}

// makeRoom drops buckets until a new one fits: full ones from the idle end first, then
// the least recently used whatever its state.
func (b *Buckets) makeRoom(now time.Time) {
	if len(b.byKey) < b.max {
		return
	}
	// Look at a bounded stretch of the idle end so a Take stays O(1).
	const scan = 16
	for e, i := b.lru.Back(), 0; e != nil && i < scan && len(b.byKey) >= b.max; i++ {
		prev := e.Prev()
		if k := e.Value.(*bucket); b.refilled(k, now) >= b.rate.Burst {
			b.drop(e)
		}
		e = prev
	}
	for len(b.byKey) >= b.max {
		b.drop(b.lru.Back())
	}
}

func (b *Buckets) drop(e *list.Element) {
	b.lru.Remove(e)
	delete(b.byKey, e.Value.(*bucket).key)
}

// Len is the number of buckets held (for metrics and tests).
func (b *Buckets) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.byKey)
}
