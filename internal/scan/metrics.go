package scan

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count scans and verdicts; a nil *Metrics counts nothing.
type Metrics struct {
	reg      prometheus.Registerer
	scans    *prometheus.CounterVec
	duration prometheus.Histogram
	verdicts *prometheus.CounterVec
}

// NewMetrics registers the scan metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_scan_runs_total",
			Help: "Scanner runs (inventories and evaluations), by result."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "berth_scan_duration_seconds",
			Help: "Time of one scan or evaluation.", Buckets: prometheus.ExponentialBuckets(0.25, 2, 12)}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_scan_blocked_total",
			Help: "Pulls a scan policy blocked (enforce) or would have blocked (warn)."}, []string{"mode"}),
	}
	reg.MustRegister(m.scans, m.duration, m.verdicts)
	return m
}

// watch exports the age of s's database.
func (m *Metrics) watch(s *Service) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "berth_scan_db_age_seconds",
		Help: "Age of the vulnerability database this replica scans with (-1: none loaded)."}, func() float64 {
		info := s.DB()
		if info.UpdatedAt.IsZero() {
			return -1
		}
		return time.Since(info.UpdatedAt).Seconds()
	}))
}

func (m *Metrics) scanned(result string, d time.Duration) {
	if m == nil {
		return
	}
	m.scans.WithLabelValues(result).Inc()
	m.duration.Observe(d.Seconds())
}

func (m *Metrics) blocked(mode string) {
	if m != nil {
		m.verdicts.WithLabelValues(mode).Inc()
	}
}
