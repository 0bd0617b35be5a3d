package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/berth-registry/berth/internal/adminapi"
	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/proxy"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/session"
	"github.com/berth-registry/berth/internal/trust"
	"github.com/berth-registry/berth/internal/ui"
)

// newUI builds the web interface over the admin API; nil when it is off.
func newUI(ctx context.Context, cfg config.Config, m *meta.Store, svc *auth.Service, api *adminapi.API, reg *registry.Registry,
	ev *trust.Evaluator, mirror *proxy.Mirror, runner *jobs.Runner, log *slog.Logger) (*ui.UI, *session.Manager, error) {
	if !cfg.UI.Enabled || svc == nil {
		return nil, nil, nil
	}
	sessions := newWebSessions(cfg, m)
	if err := pruneSessions(ctx, m, runner, time.Duration(cfg.UI.SessionIdle), log); err != nil {
		return nil, nil, err
	}
	d := ui.Deps{Auth: svc, Sessions: sessions, API: api, Registry: reg, Log: log,
		System: systemStatus{jobs: jobs.NewStore(m.DB()), gc: gc.NewStore(m.DB()), cfg: cfg.GC}}
	if o := cfg.Auth.OIDC; o.Enabled {
		d.OIDC, d.CLISecrets = o.DisplayName, uiCLISecrets{svc}
	}
	if ev != nil { // a nil *Evaluator must stay a nil interface
		d.Trust = ev
	}
	if mirror != nil {
		d.Mirror = mirrorStatus{mirror}
	}
	u, err := ui.New(d)
	return u, sessions, err
}

// sessionPruneKind is the hourly job deleting ended sessions' rows (expired or idle):
// a lookup refuses them anyway, the job only keeps the table small.
const sessionPruneKind = "session.prune"

func pruneSessions(ctx context.Context, m *meta.Store, runner *jobs.Runner, idle time.Duration, log *slog.Logger) error {
	st := session.NewStore(m.DB())
	runner.Handle(sessionPruneKind, func(ctx context.Context, _ jobs.Task) error {
		if n, err := st.Prune(ctx, idle); err != nil {
			log.Warn("prune ended web sessions", "err", err)
		} else if n > 0 {
			log.Info("pruned ended web sessions", "sessions", n)
		}
		return jobs.Postpone(time.Now().Add(time.Hour))
	})
	return jobs.NewStore(m.DB()).Schedule(ctx, jobs.Task{Kind: sessionPruneKind, Key: "sessions"})
}

// systemStatus reads the job queue, GC totals and settings for the UI's system page.
type systemStatus struct {
	jobs *jobs.Store
	gc   *gc.Store
	cfg  config.GC
}

func (s systemStatus) Jobs(ctx context.Context) ([]ui.JobKind, error) {
	stats, err := s.jobs.Stats(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ui.JobKind, len(stats))
	for i, k := range stats {
		out[i] = ui.JobKind{Kind: k.Kind, States: k.States}
		if !k.OldestDue.IsZero() {
			out[i].Lag = time.Since(k.OldestDue).Round(time.Second)
		}
	}
	return out, nil
}

func (s systemStatus) GC(ctx context.Context) (ui.GCTotals, error) {
	t, err := s.gc.Totals(ctx)
	return ui.GCTotals{Manifests: t.Manifests, Links: t.Links, Blobs: t.Blobs, Bytes: t.Bytes, LastDelete: t.LastDelete,
		Enabled: s.cfg.Enabled, ReviewAfter: time.Duration(s.cfg.ReviewAfter), Workers: s.cfg.Workers}, err
}

func (s systemStatus) Failures(ctx context.Context, n int) ([]ui.JobFailure, error) {
	tasks, err := s.jobs.Failures(ctx, n)
	out := make([]ui.JobFailure, len(tasks))
	for i, t := range tasks {
		out[i] = ui.JobFailure{Kind: t.Kind, Key: t.Key, Attempts: t.Attempts, LastError: t.LastError}
	}
	return out, err
}

// mirrorStatus lists the upstreams' status for the mirror page.
type mirrorStatus struct{ m *proxy.Mirror }

func (s mirrorStatus) Status() []proxy.UpstreamStatus {
	var out []proxy.UpstreamStatus
	for _, u := range s.m.Upstreams() {
		out = append(out, u.Status())
	}
	return out
}

// noUI answers / when the interface is off, saying why instead of a bare 404.
func noUI(cfg config.Config) http.Handler {
	msg := "Berth's web interface is off (ui.enabled: false).\n"
	if !cfg.Auth.Enabled {
		msg = "Berth's web interface needs logins: set auth.enabled (and an admin account) to use it.\n"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(msg))
	})
}
