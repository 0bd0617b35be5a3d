package server

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/distribution"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/proxy"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/scan"
)

// newScan builds the vulnerability scanner (nil when scan.enabled is off) with its
// handlers on runner.
func newScan(ctx context.Context, cfg config.Config, m *meta.Store, r *registry.Registry, mirror *proxy.Mirror, authSvc *auth.Service, runner *jobs.Runner, ev *events.Service, reg prometheus.Registerer, log *slog.Logger) (*scan.Service, error) {
	sc := cfg.Scan
	if !sc.Enabled {
		return nil, nil
	}
	dir := filepath.Join(cfg.Data, "scan")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	addr := sc.Registry
	if addr == "" {
		_, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("scan: addr: %w", err)
		}
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	token := func(repos ...string) (string, error) {
		if authSvc == nil {
			return "", nil
		}
		access := make([]auth.Access, len(repos))
		for i, r := range repos {
			access[i] = auth.Access{Type: "repository", Name: r, Actions: []string{"pull"}}
		}
		tok, _, err := authSvc.Tokens.Issue(&auth.Principal{Kind: distribution.ScannerKind, Name: "scanner"}, access)
		return tok, err
	}
	adapter, err := harborAdapter(sc, addr)
	if err != nil {
		return nil, err
	}
	trivy := &scan.Trivy{Path: sc.Trivy.Path, Timeout: time.Duration(sc.Timeout), Dir: dir}
	svc := scan.New(scan.NewStore(m.DB()), jobs.NewStore(m.DB()), m, trivy, m, scan.Options{
		Registry: addr, DBRepository: sc.Trivy.DBRepository, JavaDBRepository: sc.Trivy.JavaDBRepository, DBCheckInterval: time.Duration(sc.DBCheckInterval),
		StaleAfter: time.Duration(sc.StaleAfter), Token: token, Adapter: adapter, RescanInterval: time.Duration(sc.RescanInterval),
		Referrers: scanReferrers{r}, OnReport: scanEvent(ev), Wake: runner.Wake,
		Upstream: func(name string) bool { return mirror != nil && mirror.Reserved(name) },
	}, scan.NewMetrics(reg), log)
	if err := svc.Setup(ctx); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	svc.Register(runner)
	if mirror != nil {
		mirror.OnCached(svc.Pushed)
	}
	return svc, nil
}

// harborAdapter is the configured Harbor scanner adapter, nil for the trivy engine.
func harborAdapter(sc config.Scan, registry string) (*scan.Adapter, error) {
	if sc.Engine != "harbor" {
		return nil, nil
	}
	authz := sc.Harbor.Authorization
	if sc.Harbor.AuthorizationFile != "" {
		b, err := os.ReadFile(sc.Harbor.AuthorizationFile)
		if err != nil {
			return nil, fmt.Errorf("scan.harbor.authorizationFile: %w", err)
		}
		authz = strings.TrimSpace(string(b))
	}
	regURL := sc.Harbor.RegistryURL
	if regURL == "" {
		regURL = "http://" + registry
	}
	return &scan.Adapter{URL: sc.Harbor.URL, Authorization: authz, RegistryURL: regURL, Timeout: time.Duration(sc.Timeout)}, nil
}

// scanEvent emits scan.completed with each stored report, in its transaction (nil
// without events).
func scanEvent(ev *events.Service) scan.ReportHook {
	if ev == nil {
		return nil
	}
	return func(ctx context.Context, tx *sql.Tx, r scan.Report) error {
		s := r.Summary
		data := map[string]any{"status": r.Status, "engine": r.Engine, "critical": s.Critical, "high": s.High,
			"medium": s.Medium, "low": s.Low, "unknown": s.Unknown, "fixable": s.Fixable}
		if r.Error != "" {
			data["error"] = r.Error
		}
		if !r.DBUpdatedAt.IsZero() {
			data["dbUpdatedAt"] = r.DBUpdatedAt
		}
		return ev.PublishTx(ctx, tx, events.Event{Type: events.ScanCompleted, Repository: r.Repository, Digest: r.Digest, Data: data})
	}
}
