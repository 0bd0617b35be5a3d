package gc

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/jobs"
)

// Metrics are the collector's Prometheus metrics (queue depth and lag per review kind
// come from package jobs).
type Metrics struct {
	deleted *prometheus.CounterVec
	bytes   prometheus.Counter
	orphans prometheus.Counter
	lag     prometheus.Histogram
}

// NewMetrics registers the collector's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_gc_deleted_total",
			Help: "Rows GC deleted by this process: manifest, link (a repository's view of a blob), blob.",
		}, []string{"what"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_gc_bytes_freed_total",
			Help: "Bytes of deleted blobs removed from the blob store by this process.",
		}),
		orphans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_gc_orphan_bytes_deleted_total",
			Help: "Bytes the orphan sweep removed (stored blobs no row named).",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "berth_gc_review_lag_seconds",
			Help:    "How long after it was due a review ran.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
	}
	reg.MustRegister(m.deleted, m.bytes, m.orphans, m.lag)
	return m
}

func (m *Metrics) reviewed(t jobs.Task, o Outcome) {
	if m == nil {
		return
	}
	m.lag.Observe(max(time.Since(t.Due).Seconds(), 0))
	for what, n := range map[string]int{"manifest": o.Manifests, "link": o.Links, "blob": o.Blobs} {
		if n > 0 {
			m.deleted.WithLabelValues(what).Add(float64(n))
		}
	}
}

func (m *Metrics) freed(n int64) {
	if m != nil {
		m.bytes.Add(float64(n))
	}
}

func (m *Metrics) orphan(n int64) {
	if m != nil {
		m.orphans.Add(float64(n))
	}
}
