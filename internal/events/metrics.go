package events

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the events and webhook instruments. A nil *Metrics records nothing.
type Metrics struct {
	dispatchedEvents prometheus.Counter
	fannedOut        prometheus.Counter
	deliveries       *prometheus.CounterVec
	attemptSeconds   prometheus.Histogram
	latency          prometheus.Histogram
}

// NewMetrics registers the instruments; pending counts the deliveries waiting (a
// database query per scrape).
func NewMetrics(reg prometheus.Registerer, store *Store) *Metrics {
	m := &Metrics{
		dispatchedEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_events_dispatched_total",
			Help: "Events taken from the outbox and fanned out to the matching webhook subscriptions."}),
		fannedOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_webhook_deliveries_created_total",
			Help: "Webhook deliveries created (one per matching subscription and event)."}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_webhook_attempts_total",
			Help: "Webhook delivery attempts by outcome: delivered (2xx), retry (failed, retried later), failed (failed past the retry window)."}, []string{"result"}),
		attemptSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "berth_webhook_attempt_duration_seconds",
			Help: "Duration of one webhook request.", Buckets: prometheus.ExponentialBuckets(0.005, 3, 9)}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "berth_webhook_delivery_latency_seconds",
			Help: "Time from an event's commit to its successful delivery (retries included).", Buckets: prometheus.ExponentialBuckets(0.05, 3, 12)}),
	}
	reg.MustRegister(m.dispatchedEvents, m.fannedOut, m.deliveries, m.attemptSeconds, m.latency)
	for _, r := range []string{"delivered", "retry", "failed"} {
		m.deliveries.WithLabelValues(r)
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "berth_webhook_deliveries_pending",
		Help: "Webhook deliveries not yet delivered or given up (all replicas)."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := store.pendingDeliveries(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	}))
	return m
}

func (m *Metrics) dispatched(events, deliveries int) {
	if m == nil {
		return
	}
	m.dispatchedEvents.Add(float64(events))
	m.fannedOut.Add(float64(deliveries))
}

func (m *Metrics) attempted(state string, a Attempt, eventTime time.Time) {
	if m == nil {
		return
	}
	m.attemptSeconds.Observe(float64(a.Duration) / 1000)
	switch state {
	case Delivered:
		m.deliveries.WithLabelValues("delivered").Inc()
		if !eventTime.IsZero() {
			m.latency.Observe(a.At.Add(time.Duration(a.Duration) * time.Millisecond).Sub(eventTime).Seconds())
		}
	case Failed:
		m.deliveries.WithLabelValues("failed").Inc()
	default:
		m.deliveries.WithLabelValues("retry").Inc()
	}
}
