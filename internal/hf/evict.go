package hf

import (
	"context"
	"time"
)

// The cache is bounded by hf.cacheSize: past it, the Hub repositories pulled least
// recently are evicted whole — their ModelPack artifacts and every cached file — since
// a model is used as a whole. A repository pulled within hf.cacheMinAge is kept even
// when the cache stays over its limit. Revision lookups and listings (small rows) stay.

// Run keeps the cache within its size limit until ctx ends: after downloads and once a
// minute (the periodic pass on one replica at a time). It returns at once without a
// limit.
func (s *Service) Run(ctx context.Context) {
	if s.cfg.CacheSize <= 0 {
		return
	}
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	s.Evict(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.evictNow:
			s.Evict(ctx)
		case <-tick.C:
			if ok, _ := s.reg.TryLease(ctx, "job:hf-evict", 2*time.Minute); ok {
				s.Evict(ctx)
			}
		}
	}
}

// nudge asks Run for an eviction pass (after a download).
func (s *Service) nudge() {
	if s.cfg.CacheSize <= 0 {
		return
	}
	select {
	case s.evictNow <- struct{}{}:
	default: // one is pending
	}
}

// CacheSize is the bytes of blobs cached under the mirror's project.
func (s *Service) CacheSize(ctx context.Context) (int64, error) {
	return s.reg.PrefixCacheSize(ctx, s.cfg.Project+"/")
}

// Evict removes least recently pulled repositories until the cache fits its limit.
func (s *Service) Evict(ctx context.Context) {
	limit := int64(s.cfg.CacheSize)
	for ctx.Err() == nil {
		size, err := s.CacheSize(ctx)
		if err != nil {
			s.log.Warn("hf: cache size", "err", err)
			return
		}
		s.metrics.cacheBytes.Set(float64(size))
		if limit <= 0 || size <= limit {
			return
		}
		victims, err := s.store.LeastRecentlyPulled(ctx, time.Now().Add(-time.Duration(s.cfg.CacheMinAge)), 8)
		if err != nil {
			s.log.Warn("hf: eviction candidates", "err", err)
			return
		}
		if len(victims) == 0 {
			s.log.Warn("hf: cache over its limit, but every repository in it was pulled recently", "bytes", size, "limit", limit,
				"cacheMinAge", time.Duration(s.cfg.CacheMinAge).String())
			return
		}
		for _, local := range victims {
			freed, err := s.evictRepo(ctx, local)
			if err != nil {
				s.log.Warn("hf: eviction", "repository", local, "err", err)
				return
			}
			s.metrics.evictedBytes.Add(float64(freed))
			s.log.Info("evicted from the Hugging Face cache", "repository", local, "freed_bytes", freed)
			if size -= freed; size <= limit {
				break // re-measured at the top of the loop
			}
		}
	}
}

// evictRepo removes a repository's artifacts and files.
func (s *Service) evictRepo(ctx context.Context, local string) (int64, error) {
	// The file rows go first: a client asking meanwhile downloads the file again
	// rather than finding a row whose bytes are gone.
	if err := s.store.DeleteFiles(ctx, local); err != nil {
		return 0, err
	}
	manifests, err := s.store.Manifests(ctx, local)
	if err != nil {
		return 0, err
	}
	var freed int64
	// The last pass, for no manifest, unlinks the files no artifact referenced.
	for _, d := range append(manifests, "") {
		n, err := s.reg.EvictManifest(ctx, local, d)
		freed += n
		if err != nil {
			return freed, err
		}
	}
	return freed, nil
}
