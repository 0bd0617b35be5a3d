package trust

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	verdicts     *prometheus.CounterVec
	verification *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_trust_checks_total",
			Help: "Manifest reads checked against a signature policy, by policy and outcome (cached, denied, warned, signer: a failing manifest read by digest by a caller who may push).",
		}, []string{"policy", "outcome"}),
		verification: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_trust_verification_seconds",
			Help:    "Time to reach a new verdict (find and verify every signature), by policy.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"policy"}),
	}
	if reg != nil {
		reg.MustRegister(m.verdicts, m.verification)
	}
	return m
}

func (m *metrics) outcome(policy, outcome string) { m.verdicts.WithLabelValues(policy, outcome).Inc() }

func (m *metrics) verified(policy string, d time.Duration) {
	m.verification.WithLabelValues(policy).Observe(d.Seconds())
}
