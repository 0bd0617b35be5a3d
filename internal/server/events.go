package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/adminapi"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/proxy"
	"github.com/berth-registry/berth/internal/quota"
)

// newEvents builds the event log and webhook service (nil with events.enabled off) and
// installs its hook on the metadata write path. Like quotas it reads the mirror when
// asked: a mirror's cache fills are not events.
func newEvents(cfg config.Config, m *meta.Store, mirror **proxy.Mirror, reg prometheus.Registerer, log *slog.Logger) (*events.Service, error) {
	ec := cfg.Events
	if !ec.Enabled {
		return nil, nil
	}
	keyFile := secretKeyFile(cfg)
	sealer, err := events.LoadKey(keyFile, true)
	if err != nil {
		return nil, fmt.Errorf("events.webhooks.secretKeyFile: %w", err)
	}
	if cfg.Database.Driver == "postgres" && ec.Webhooks.SecretKeyFile == "" {
		log.Warn("events.webhooks.secretKeyFile is not set: the webhook secret key is in the data directory; with several replicas every one needs the same key file", "file", keyFile)
	}
	host, _ := os.Hostname()
	w := ec.Webhooks
	store := events.NewStore(m.DB())
	svc := events.New(m.DB(), sealer, events.Options{
		Timeout: time.Duration(w.Timeout), RetryFor: time.Duration(w.RetryFor), Backoff: time.Duration(w.Backoff),
		MaxBackoff: time.Duration(w.MaxBackoff), Keep: time.Duration(ec.Keep), Workers: w.Workers,
		AllowPrivateTargets: w.AllowPrivateTargets, Source: w.Source, Host: w.Host,
		Worker:   fmt.Sprintf("%s/%d/events", host, os.Getpid()),
		Mirrored: func(project string) bool { return *mirror != nil && (*mirror).Reserved(project) },
		RepoType: func(ctx context.Context, project string) string {
			p, err := m.ProjectByName(ctx, project)
			switch {
			case err != nil:
				return ""
			case p.Public:
				return "public"
			}
			return "private"
		},
	}, events.NewMetrics(reg, store), log)
	m.SetChangeHook(svc.Hook)
	return svc, nil
}

// webhooksAPI keeps a nil *events.Service a nil interface for the admin API.
func webhooksAPI(svc *events.Service) adminapi.Webhooks {
	if svc == nil {
		return nil
	}
	return svc
}

// secretKeyFile is the key that seals webhook secrets and replication passwords.
func secretKeyFile(cfg config.Config) string {
	if f := cfg.Events.Webhooks.SecretKeyFile; f != "" {
		return f
	}
	return filepath.Join(cfg.Data, "webhook-secrets.key")
}

// quotaEvents publishes quota.exceeded when a push is refused by its project's quota, at
// most once per project a minute on this replica (a refused push retries many blobs), in
// the background so the refusal is not held up by the database.
func quotaEvents(q *quota.Service, ev *events.Service, log *slog.Logger) {
	if ev == nil {
		return
	}
	var mu sync.Mutex
	last := map[string]time.Time{}
	q.OnExceeded(func(project string, limit, used, size int64) {
		mu.Lock()
		if t, ok := last[project]; ok && time.Since(t) < time.Minute {
			mu.Unlock()
			return
		}
		if len(last) > 10000 { // bounded: forget the oldest era at once
			clear(last)
		}
		last[project] = time.Now()
		mu.Unlock()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e := events.Event{Type: events.QuotaExceeded, Project: project, Repository: "",
				Data: map[string]any{"quotaBytes": limit, "usageBytes": used, "blobBytes": size}}
			if err := ev.Publish(ctx, e); err != nil {
				log.Warn("publish quota.exceeded", "project", project, "err", err)
			}
		}()
	})
}
