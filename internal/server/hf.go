package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/distribution"
	"github.com/berth-registry/berth/internal/hf"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/registry"
)

// newHF builds the Hugging Face mirror when hf.enabled (nil otherwise) and makes sure
// its project exists: public when hf.public says so at creation, afterwards a project
// like any other. guard is nil with auth off.
func newHF(ctx context.Context, cfg config.Config, m *meta.Store, reg *registry.Registry, guard *distribution.Guard, promReg prometheus.Registerer, log *slog.Logger) (*hf.Service, error) {
	if !cfg.HF.Enabled {
		return nil, nil
	}
	if _, err := m.CreateProject(ctx, meta.Project{Name: cfg.HF.Project, Public: cfg.HF.Public}, "", ""); err != nil && !errors.Is(err, meta.ErrExists) {
		return nil, fmt.Errorf("hf: project %s: %w", cfg.HF.Project, err)
	}
	var authz hf.Authorizer
	if guard != nil {
		authz = guard
	}
	return hf.New(cfg.HF, hf.NewStore(m.DB()), reg, authz, filepath.Join(cfg.Data, "spool", "hf"), hf.NewMetrics(promReg), log)
}

// hfReadOnly refuses /v2/ writes into the Hugging Face mirror's project (nil with the
// mirror off).
func hfReadOnly(cfg config.Config) func(repo string) error {
	if !cfg.HF.Enabled {
		return nil
	}
	return hf.ReadOnly(cfg.HF)
}

// hfManaged tells whether repo is the Hugging Face mirror's (GC leaves its files to it).
func hfManaged(cfg config.Config, project string) bool {
	return cfg.HF.Enabled && project == cfg.HF.Project
}

// NewHFMirror builds the Hugging Face mirror for commands that run without a server
// (berth mirror warm hf://...); auth does not apply.
func NewHFMirror(cfg config.Config, m *meta.Store, reg *registry.Registry, log *slog.Logger) (*hf.Service, error) {
	return hf.New(cfg.HF, hf.NewStore(m.DB()), reg, nil, filepath.Join(cfg.Data, "spool", "hf"), hf.NewMetrics(nil), log)
}
