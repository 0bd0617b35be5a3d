package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/proxy"
)

// NewGC builds the garbage collector over the stores; mirror may be nil.
func NewGC(cfg config.Config, m *meta.Store, b blobstore.Driver, mirror *proxy.Mirror, metrics *gc.Metrics, log *slog.Logger) (*gc.Collector, *jobs.Store) {
	queue := jobs.NewStore(m.DB())
	mirrored := func(repo string) bool { return hfManaged(cfg, oci.Project(repo)) }
	if mirror != nil {
		mirrored = func(repo string) bool { return mirror.Reserved(oci.Project(repo)) || hfManaged(cfg, oci.Project(repo)) }
	}
	g := cfg.GC
	return gc.New(gc.NewStore(m.DB()), queue, b, m, gc.Options{
		ReviewAfter: time.Duration(g.ReviewAfter), OrphanGrace: time.Duration(g.OrphanGrace),
		SweepInterval: time.Duration(g.SweepInterval), Mirrored: mirrored,
	}, metrics, log), queue
}

// NewJobs builds the replica's background task runner with the GC handlers registered
// (unless gc.enabled is off), and records the GC settings the database triggers use.
func NewJobs(ctx context.Context, cfg config.Config, m *meta.Store, b blobstore.Driver, mirror *proxy.Mirror, reg prometheus.Registerer, log *slog.Logger) (*jobs.Runner, error) {
	collector, queue := NewGC(cfg, m, b, mirror, gc.NewMetrics(reg), log)
	if err := collector.Setup(ctx); err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	host, _ := os.Hostname()
	runner := jobs.NewRunner(queue, jobs.Options{Worker: fmt.Sprintf("%s/%d", host, os.Getpid()), Concurrency: cfg.GC.Workers},
		jobs.NewMetrics(reg, queue), log)
	if cfg.GC.Enabled {
		collector.Register(runner)
	}
	return runner, nil
}
