package jobs

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the queue's Prometheus metrics. Depth and lag are read from the database at
// scrape time, so every replica reports the whole cluster's queue; runs and failures are
// counted by the process that ran them.
type Metrics struct {
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the queue's metrics on reg, reading depth and lag from store.
func NewMetrics(reg prometheus.Registerer, store *Store) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_jobs_runs_total",
			Help: "Task runs by kind and result: ok, retry (failed, will run again), failed (no attempts left or permanent), postponed.",
		}, []string{"kind", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_jobs_run_duration_seconds",
			Help:    "Time a task handler ran, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"kind"}),
	}
	reg.MustRegister(m.runs, m.duration, &queueCollector{store: store})
	return m
}

func (m *Metrics) observe(kind string, d time.Duration) {
	if m != nil {
		m.duration.WithLabelValues(kind).Observe(d.Seconds())
	}
}

func (m *Metrics) result(kind, result string) {
	if m != nil {
		m.runs.WithLabelValues(kind, result).Inc()
	}
}

var (
	depthDesc = prometheus.NewDesc("berth_jobs_queue_depth", "Tasks in the queue by kind and state (queued, running, failed, done).", []string{"kind", "state"}, nil)
	lagDesc   = prometheus.NewDesc("berth_jobs_oldest_due_seconds", "Age of the longest-waiting due task by kind (0 when none is due): how far workers lag.", []string{"kind"}, nil)
)

// queueCollector reads the queue's shape from the database on each scrape.
type queueCollector struct{ store *Store }

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- depthDesc
	ch <- lagDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stats, err := c.store.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(depthDesc, err)
		return
	}
	for _, k := range stats {
		for _, state := range []string{Queued, Running, Failed, Done} {
			ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(k.States[state]), k.Kind, state)
		}
		lag := 0.0
		if !k.OldestDue.IsZero() {
			lag = time.Since(k.OldestDue).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag, k.Kind)
	}
}
