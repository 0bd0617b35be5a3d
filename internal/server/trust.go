package server

import (
	"context"
	"log/slog"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/proxy"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/trust"
	"github.com/prometheus/client_golang/prometheus"
)

// newTrust builds the signature policy evaluator: stored policies from the database,
// upstream policies from the configuration (a policy that does not load stops the
// start), denials and warn-mode failures into the audit trail.
func newTrust(ctx context.Context, cfg config.Config, m *meta.Store, reg *registry.Registry, mirror *proxy.Mirror,
	authSvc *auth.Service, verify *verificationEvents, promReg prometheus.Registerer, log *slog.Logger) (*trust.Evaluator, error) {
	o := trust.Options{Upstreams: map[string]config.TrustPolicy{}, Registerer: promReg}
	for _, u := range cfg.Mirror.Upstreams {
		if u.Trust != nil {
			o.Upstreams[u.Name] = *u.Trust
		}
	}
	if mirror != nil {
		o.Signatures = mirror
	}
	if authSvc != nil {
		o.Audit = authSvc.Record
	}
	if verify != nil {
		o.Audit = verify.wrap(o.Audit)
	}
	return trust.NewEvaluator(ctx, trust.NewStore(m.DB()), reg, o, log)
}
