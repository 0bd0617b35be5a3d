package proxy

import (
	"sync"
	"time"
)

// maxNegative bounds a negative cache; past it expired entries are swept, and if none
// were, the cache starts over (it only saves upstream requests, it decides nothing).
const maxNegative = 100000

// negativeCache remembers, for a while, that a reference could not be had from its
// upstream and the error the clients got, so a crowd of clients retrying does not
// become a crowd of upstream requests.
type negativeCache struct {
	mu      sync.Mutex
	entries map[string]negativeEntry
}

type negativeEntry struct {
	until time.Time
	err   error
}

func newNegativeCache() *negativeCache {
	return &negativeCache{entries: map[string]negativeEntry{}}
}

// hit returns the remembered error for key while it is fresh.
func (c *negativeCache) hit(key string) (error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	if time.Now().After(e.until) {
		delete(c.entries, key)
		return nil, false
	}
	return e.err, true
}

// remember keeps err for key for ttl (nothing when ttl is not positive).
func (c *negativeCache) remember(key string, err error, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxNegative {
		now := time.Now()
		for k, e := range c.entries {
			if now.After(e.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxNegative {
			c.entries = map[string]negativeEntry{}
		}
	}
	c.entries[key] = negativeEntry{until: time.Now().Add(ttl), err: err}
}
