package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// maxLastErrors is how many recent failures each upstream remembers for the web UI.
const maxLastErrors = 5

// UpstreamError is one recent failed exchange with an upstream.
type UpstreamError struct {
	At      time.Time
	Reason  string // HTTP status, network, auth, redirect or digest
	Message string
}

// UpstreamStatus is what this replica has seen of an upstream since it started.
type UpstreamStatus struct {
	Name, URL           string
	Prefixes            []string
	Hits, Misses        float64 // manifest and blob requests
	StaleServes         float64
	UpstreamBytes       float64
	CacheBytes          float64
	RateLimitRemaining  float64 // NaN until the upstream sent a ratelimit-remaining header
	LastErrors          []UpstreamError
	TagTTL, NegativeTTL time.Duration
}

// HitRatio is the share of requests served from the cache (0 when there were none).
func (s UpstreamStatus) HitRatio() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return s.Hits / (s.Hits + s.Misses)
}

// failed counts a failed exchange and remembers it.
func (u *Upstream) failed(reason, msg string) {
	u.metrics.upstreamErrors.WithLabelValues(u.cfg.Name, reason).Inc()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	u.mu.Lock()
	u.lastErrors = append(u.lastErrors, UpstreamError{At: time.Now(), Reason: reason, Message: msg})
	if len(u.lastErrors) > maxLastErrors {
		u.lastErrors = u.lastErrors[len(u.lastErrors)-maxLastErrors:]
	}
	u.mu.Unlock()
}

// Status reports the upstream's counters on this replica and its recent failures.
func (u *Upstream) Status() UpstreamStatus {
	m, name := u.metrics, u.cfg.Name
	s := UpstreamStatus{Name: name, URL: u.registry.Scheme() + "://" + u.registry.RegistryStr(), Prefixes: u.cfg.Prefixes,
		TagTTL: time.Duration(u.cfg.TagTTL), NegativeTTL: time.Duration(u.cfg.NegativeTTL)}
	for _, kind := range []string{"manifest", "blob"} {
		s.Hits += value(m.hits.WithLabelValues(name, kind))
		s.Misses += value(m.misses.WithLabelValues(name, kind))
	}
	s.StaleServes = value(m.staleServes.WithLabelValues(name))
	s.UpstreamBytes = value(m.upstreamBytes.WithLabelValues(name))
	s.CacheBytes = value(m.cacheBytes.WithLabelValues(name))
	s.RateLimitRemaining = value(m.rateLimitRemaining.WithLabelValues(name))
	u.mu.Lock()
	for i := len(u.lastErrors) - 1; i >= 0; i-- {
		s.LastErrors = append(s.LastErrors, u.lastErrors[i])
	}
	u.mu.Unlock()
	return s
}

func value(c prometheus.Metric) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		return 0
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	return 0
}
