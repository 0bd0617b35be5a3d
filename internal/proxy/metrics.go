package proxy

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the mirror's Prometheus instruments, labelled by upstream.
type Metrics struct {
	hits               *prometheus.CounterVec
	misses             *prometheus.CounterVec
	staleServes        *prometheus.CounterVec
	upstreamBytes      *prometheus.CounterVec
	upstreamErrors     *prometheus.CounterVec
	coalesced          *prometheus.CounterVec
	rateLimitRemaining *prometheus.GaugeVec
	cacheBytes         *prometheus.GaugeVec
	evictedBytes       *prometheus.CounterVec
	warmImages         *prometheus.CounterVec
}

// NewMetrics registers the mirror's instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_mirror_hits_total", Help: "Mirror requests served from the cache, by upstream and kind (manifest, blob).",
		}, []string{"upstream", "kind"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_mirror_misses_total", Help: "Mirror requests that went to the upstream, by upstream and kind.",
		}, []string{"upstream", "kind"}),
		staleServes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_mirror_stale_serves_total", Help: "Tags served from the cache because the upstream failed (stale-if-error).",
		}, []string{"upstream"}),
		upstreamBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_mirror_upstream_bytes_total", Help: "Blob bytes downloaded from upstreams.",
		}, []string{"upstream"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_mirror_upstream_errors_total", Help: "Failed upstream requests by upstream and reason (HTTP status, network, auth, digest).",
		}, []string{"upstream", "reason"}),
		coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_mirror_coalesced_total", Help: "Blob requests that joined an upstream fetch already in flight.",
		}, []string{"upstream"}),
		rateLimitRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "berth_mirror_ratelimit_remaining", Help: "The upstream's last ratelimit-remaining header (Docker Hub pull limit); NaN until one was seen.",
		}, []string{"upstream"}),
	}
	m.cacheBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "berth_mirror_cache_bytes", Help: "Bytes of blobs cached for the upstream (measured at start, every minute and around evictions).",
	}, []string{"upstream"})
	m.evictedBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_mirror_evicted_bytes_total", Help: "Blob bytes deleted from the cache to keep it within its size limit.",
	}, []string{"upstream"})
	m.warmImages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_mirror_warm_images_total", Help: "Images a warm-up (scheduled, berth mirror warm, or POST /api/v1/mirror/warm) cached, by result (ok, failed).",
	}, []string{"result"})
	m.warmImages.WithLabelValues("ok")
	m.warmImages.WithLabelValues("failed")
	reg.MustRegister(m.hits, m.misses, m.staleServes, m.upstreamBytes, m.upstreamErrors, m.coalesced, m.rateLimitRemaining,
		m.cacheBytes, m.evictedBytes, m.warmImages)
	return m
}

// upstream exports every series of an upstream from the start, so alerts can be written
// before the first event: counters at zero, and the rate-limit gauge NaN (unknown)
// rather than a zero that would read as "no pulls left".
func (m *Metrics) upstream(name string) {
	for _, kind := range []string{"manifest", "blob"} {
		m.hits.WithLabelValues(name, kind)
		m.misses.WithLabelValues(name, kind)
	}
	for _, c := range []*prometheus.CounterVec{m.staleServes, m.upstreamBytes, m.coalesced, m.evictedBytes} {
		c.WithLabelValues(name)
	}
	for _, reason := range []string{"network", "auth", "digest", "429", "500"} {
		m.upstreamErrors.WithLabelValues(name, reason)
	}
	m.rateLimitRemaining.WithLabelValues(name).Set(math.NaN())
	m.cacheBytes.WithLabelValues(name)
}
