package tagrules

import "github.com/prometheus/client_golang/prometheus"

// Metrics count retention's work; a nil *Metrics counts nothing.
type Metrics struct {
	runs        *prometheus.CounterVec
	tagsDeleted prometheus.Counter
}

// NewMetrics registers the retention metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_retention_runs_total",
			Help: "Retention policy runs (dry runs excluded), by result."}, []string{"result"}),
		tagsDeleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_retention_tags_deleted_total",
			Help: "Tags deleted by retention policies; their manifests and blobs go through GC."}),
	}
	reg.MustRegister(m.runs, m.tagsDeleted)
	return m
}

func (m *Metrics) ran(deleted int) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues("ok").Inc()
	m.tagsDeleted.Add(float64(deleted))
}

func (m *Metrics) failed() {
	if m != nil {
		m.runs.WithLabelValues("failed").Inc()
	}
}
