package proxy

import (
	"context"
	"sync/atomic"
)

// How a mirror request was served, for metrics and the access log's cache field.
const (
	servedHit       = "hit"       // from the cache
	servedMiss      = "miss"      // fetched from the upstream for this request
	servedStale     = "stale"     // from the cache because the upstream failed
	servedCoalesced = "coalesced" // joined a fetch already in flight
)

type servedKey struct{}

// CacheStatus receives how the mirror served a request.
type CacheStatus struct{ v atomic.Value }

// Get returns hit, miss, stale, coalesced, or "" when the mirror did not serve it.
func (c *CacheStatus) Get() string {
	s, _ := c.v.Load().(string)
	return s
}

// WithCacheStatus returns a context under which mirror calls record into c how they
// served the request. Atomic: a detached fetch may still hold the context.
func WithCacheStatus(ctx context.Context, c *CacheStatus) context.Context {
	return context.WithValue(ctx, servedKey{}, c)
}

// served counts a request of kind (manifest, blob) by how it was served and reports it
// to the request's CacheStatus, if any.
func (m *Mirror) served(ctx context.Context, upstream, kind, how string) {
	switch how {
	case servedHit:
		m.metrics.hits.WithLabelValues(upstream, kind).Inc()
	case servedMiss:
		m.metrics.misses.WithLabelValues(upstream, kind).Inc()
	case servedStale:
		m.metrics.staleServes.WithLabelValues(upstream).Inc()
	case servedCoalesced:
		m.metrics.coalesced.WithLabelValues(upstream).Inc()
	}
	if c, ok := ctx.Value(servedKey{}).(*CacheStatus); ok {
		c.v.Store(how)
	}
}
