package server

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/proxy"
	"github.com/berth-registry/berth/internal/quota"
)

// newQuota builds the project quota service. mirror is read when asked, since the
// mirror is built after the registry that enforces quotas: its namespaces, and the
// Hugging Face mirror's project, are exempt (bounded by their cache sizes).
func newQuota(cfg config.Config, m *meta.Store, mirror **proxy.Mirror) *quota.Service {
	return quota.New(quota.NewStore(m.DB()), quota.Options{Mirrored: func(project string) bool {
		return (*mirror != nil && (*mirror).Reserved(project)) || hfManaged(cfg, project)
	}})
}

// registerQuotaMetrics exports every project's usage and quota, from its creation.
func registerQuotaMetrics(reg prometheus.Registerer, q *quota.Service, m *meta.Store, log *slog.Logger) {
	quota.RegisterMetrics(reg, q, func(ctx context.Context) ([]string, error) {
		var names []string
		for cursor := ""; ; {
			ps, err := m.Projects(ctx, cursor, 500)
			if err != nil {
				return nil, err
			}
			for _, p := range ps {
				names = append(names, p.Name)
			}
			if len(ps) < 500 {
				return names, nil
			}
			cursor = ps[len(ps)-1].Name
		}
	}, log)
}
