package quota

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	usageDesc = prometheus.NewDesc("berth_project_usage_bytes",
		"Bytes of distinct blobs a project's repositories hold (each blob once per project).", []string{"project"}, nil)
	blobsDesc = prometheus.NewDesc("berth_project_usage_blobs",
		"Distinct blobs a project's repositories hold.", []string{"project"}, nil)
	limitDesc = prometheus.NewDesc("berth_project_quota_bytes",
		"A project's byte quota; +Inf when unlimited.", []string{"project"}, nil)
)

// collector reads usage from the database at each scrape: the triggers keep it exact in
// the shared database, so every replica reports the same figures.
type collector struct {
	s        *Service
	projects func(ctx context.Context) ([]string, error)
	log      *slog.Logger
}

// RegisterMetrics exports every project's usage and quota (projects lists the projects
// that exist, so each has its series from its creation, at 0 and +Inf), and the count of
// pushes refused by a quota in this process.
func RegisterMetrics(reg prometheus.Registerer, s *Service, projects func(ctx context.Context) ([]string, error), log *slog.Logger) {
	reg.MustRegister(&collector{s: s, projects: projects, log: log})
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "berth_quota_denied_total",
		Help: "Blob pushes refused by a project quota in this process.",
	}, func() float64 { return float64(s.Denied()) }))
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- usageDesc
	ch <- blobsDesc
	ch <- limitDesc
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := c.s.All(ctx)
	if err != nil {
		c.log.Warn("quota metrics", "err", err)
		return
	}
	seen := make(map[string]bool, len(all))
	emit := func(u Usage) {
		limit := math.Inf(1)
		if u.Limit >= 0 {
			limit = float64(u.Limit)
		}
		ch <- prometheus.MustNewConstMetric(usageDesc, prometheus.GaugeValue, float64(u.Bytes), u.Project)
		ch <- prometheus.MustNewConstMetric(blobsDesc, prometheus.GaugeValue, float64(u.Blobs), u.Project)
		ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, limit, u.Project)
	}
	for _, u := range all {
		seen[u.Project] = true
		emit(u)
	}
	if c.projects == nil {
		return
	}
	names, err := c.projects(ctx)
	if err != nil {
		c.log.Warn("quota metrics: projects", "err", err)
		return
	}
	for _, p := range names {
		if !seen[p] && !c.s.mirrored(p) {
			emit(Usage{Project: p, Limit: Unlimited})
		}
	}
}
