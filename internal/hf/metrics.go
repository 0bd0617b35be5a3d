package hf

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the mirror's Prometheus instruments.
type Metrics struct {
	requests       *prometheus.CounterVec
	upstreamBytes  prometheus.Counter
	upstreamErrors *prometheus.CounterVec
	cacheBytes     prometheus.Gauge
	evictedBytes   prometheus.Counter
}

// NewMetrics registers the mirror's instruments on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_hf_requests_total", Help: "Hugging Face mirror requests by kind (info, tree, file) and how they were served (hit, miss, stale, coalesced).",
		}, []string{"kind", "served"}),
		upstreamBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_hf_upstream_bytes_total", Help: "File bytes downloaded from the Hugging Face Hub.",
		}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_hf_upstream_errors_total", Help: "Failed requests to the Hugging Face Hub by reason (HTTP status, network, digest).",
		}, []string{"reason"}),
	}
	m.cacheBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "berth_hf_cache_bytes", Help: "Bytes of files in the Hugging Face cache (measured around evictions, with hf.cacheSize set).",
	})
	m.evictedBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "berth_hf_evicted_bytes_total", Help: "Bytes deleted from the Hugging Face cache to keep it within hf.cacheSize.",
	})
	for _, k := range []string{"info", "tree", "file"} {
		for _, h := range []string{"hit", "miss", "stale", "coalesced"} {
			m.requests.WithLabelValues(k, h)
		}
	}
	for _, r := range []string{"network", "digest", "429", "500"} {
		m.upstreamErrors.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.upstreamBytes, m.upstreamErrors, m.cacheBytes, m.evictedBytes)
	}
	return m
}

func (m *Metrics) served(kind, how string) { m.requests.WithLabelValues(kind, how).Inc() }
