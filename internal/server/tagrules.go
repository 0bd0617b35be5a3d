package server

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/proxy"
	"github.com/berth-registry/berth/internal/tagrules"
)

// newTagRules builds the retention and immutable-tag service. Like quotas it reads the
// mirror when asked (built after the registry it guards): mirrored namespaces have no
// rules, nor has the Hugging Face mirror's project.
func newTagRules(cfg config.Config, m *meta.Store, mirror **proxy.Mirror, reg prometheus.Registerer, log *slog.Logger) *tagrules.Service {
	return tagrules.New(tagrules.NewStore(m.DB()), jobs.NewStore(m.DB()), m, tagrules.Options{Mirrored: func(project string) bool {
		return (*mirror != nil && (*mirror).Reserved(project)) || hfManaged(cfg, project)
	}}, tagrules.NewMetrics(reg), log)
}
