package scan

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
)

// engineName names the engine in reports.
func (s *Service) engineName() string {
	if s.opts.Adapter == nil {
		return "trivy"
	}
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	if s.adapterName != "" {
		return s.adapterName
	}
	return "scanner adapter"
}

// adapterScan has the Harbor scanner adapter scan repo@digest and stores its report
// (and its SBOM, when it makes one).
func (s *Service) adapterScan(ctx context.Context, repo, digest, mediaType string) error {
	token, err := s.opts.Token(repo)
	if err != nil {
		return fmt.Errorf("scan: token: %w", err)
	}
	start := time.Now()
	res, err := s.opts.Adapter.Scan(ctx, Target{Registry: s.opts.Registry, Repository: repo, Digest: digest, Token: token}, mediaType)
	if err != nil {
		s.metrics.scanned("failed", time.Since(start))
		return err
	}
	s.noteAdapter(res.Engine, res.DBUpdatedAt)
	if res.SBOM != nil {
		if err := s.store.PutSBOM(ctx, digest, repo, res.SBOM); err != nil {
			return err
		}
	}
	r := Report{Digest: digest, Repository: repo, Engine: res.Engine, Status: StatusOK, ScannedAt: time.Now().UTC(),
		DBUpdatedAt: res.DBUpdatedAt, Findings: res.Findings}
	if err := s.store.PutReport(ctx, r, s.opts.OnReport); err != nil {
		return err
	}
	s.cache.forget(digest)
	s.metrics.scanned("ok", time.Since(start))
	sum := Summarize(res.Findings)
	s.log.Info("scanned", "engine", res.Engine, "repository", repo, "digest", digest, "critical", sum.Critical,
		"high", sum.High, "medium", sum.Medium, "low", sum.Low, "db", res.DBUpdatedAt)
	return nil
}

func (s *Service) noteAdapter(engine string, dbUpdated time.Time) {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	s.adapterName = engine
	if dbUpdated.After(s.dbUpdated) {
		s.dbUpdated = dbUpdated
	}
}

// checkAdapterDB reads the adapter's database build time from its metadata; when it is
// newer than any seen, every report made with an older one is scanned again (an
// adapter keeps no SBOM Berth could evaluate itself).
func (s *Service) checkAdapterDB(ctx context.Context) (time.Time, error) {
	m, err := s.opts.Adapter.Metadata(ctx)
	if err != nil {
		return time.Time{}, err
	}
	updated := m.DBUpdatedAt()
	s.noteAdapter(m.Engine(), updated)
	if updated.IsZero() {
		return updated, nil // the adapter does not say; periodic re-scans keep reports fresh
	}
	newer, err := s.store.RecordDB(ctx, updated)
	if err != nil || !newer {
		return updated, err
	}
	n, err := s.queue.EnqueueQuery(ctx, KindRescan, staleReportsQuery(updated), time.Now())
	if err != nil {
		return updated, err
	}
	if n > 0 {
		s.log.Info("scanner adapter has a newer database; re-scanning", "engine", m.Engine(), "count", n, "db", updated)
	}
	return updated, nil
}

// rescan is the KindRescan handler: the image is scanned again from the repository its
// report came from, or from any repository still holding it.
func (s *Service) rescan(ctx context.Context, t jobs.Task) error {
	repo, err := s.store.ReportRepository(ctx, t.Key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := s.meta.GetManifest(ctx, repo, t.Key, false, false); errors.Is(err, meta.ErrNotFound) {
		repo, err = s.store.HolderRepository(ctx, t.Key)
		if errors.Is(err, ErrNotFound) {
			return nil // deleted everywhere
		}
		if err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	return s.scanImage(ctx, jobs.Task{Kind: KindImage, Key: t.Key, Payload: []byte(repo), Attempts: t.Attempts, MaxAttempts: t.MaxAttempts})
}

// periodic is the KindPeriodic handler: it queues re-scans of reports older than the
// interval and comes back within a tenth of it.
func (s *Service) periodic(ctx context.Context, _ jobs.Task) error {
	every := s.opts.RescanInterval
	n, err := s.queue.EnqueueQuery(ctx, KindRescan, oldReportsQuery(time.Now().Add(-every)), time.Now())
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("periodic re-scan", "count", n, "olderThan", every)
	}
	return jobs.Postpone(time.Now().Add(min(max(every/10, time.Minute), time.Hour)))
}
