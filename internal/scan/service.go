package scan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
)

// Job kinds; keys are manifest digests (payload: the repository) or "db".
const (
	KindImage    = "scan.image"    // inventory (SBOM) and evaluate
	KindEvaluate = "scan.evaluate" // evaluate the stored SBOM again
	KindDB       = "scan.db"       // load a newer database, re-evaluate what is older
	KindRescan   = "scan.rescan"   // inventory again an image already reported on
	KindPeriodic = "scan.periodic" // queue re-scans of reports older than RescanInterval
	KindDBPushed = "scan.dbpushed" // the database artifact was pushed: check it now
)

// scanAttempts bounds the runs of one scan: a broken image fails for good quickly.
const scanAttempts = 3

// TokenFunc returns a short-lived bearer token granting pull of repos ("" when the
// registry runs without authentication).
type TokenFunc func(repos ...string) (string, error)

// Auditor records warn-mode verdicts.
type Auditor interface {
	AppendAudit(ctx context.Context, entries []meta.AuditEntry) error
}

// Options configure a Service.
type Options struct {
	// Registry is how the engine reaches this registry (host:port).
	Registry string
	// DBRepository is the database artifact: "repo:tag" in this registry, or a full
	// reference elsewhere.
	DBRepository string
	// JavaDBRepository is Trivy's Java database artifact, the same way; while it is
	// missing (or not configured) scans use an empty one.
	JavaDBRepository string
	// DBCheckInterval is how often a newer database is looked for.
	DBCheckInterval time.Duration
	// StaleAfter flags a database older than this.
	StaleAfter time.Duration
	// Token issues the engine's pull credential.
	Token TokenFunc
	// CacheTTL bounds how long a replica serves pull verdicts from memory (default 5s).
	CacheTTL time.Duration
	// Adapter, when set, is the engine instead of Trivy: a scanner behind Harbor's
	// pluggable scanner API. It keeps its own database; Berth re-scans when the
	// database build time in its metadata moves.
	Adapter *Adapter
	// RescanInterval re-scans images whose report is older than this (0: never).
	RescanInterval time.Duration
	// Referrers keeps SBOMs as referrers of images (nil: projects cannot attach or
	// use them).
	Referrers Referrers
	// OnReport runs in the transaction of every stored report, ok or failed (the
	// scan.completed event).
	OnReport ReportHook
	// Wake, when set, has this process's job runner claim at once what was just
	// queued (jobs.Runner.Wake).
	Wake func()
	// Upstream tells the names of mirror upstreams: their policies (stored under the
	// name, the first path segment of every repository mirrored from them) cover what
	// is mirrored, scanning it when it is cached.
	Upstream func(name string) bool
}

// Service scans images as jobs and answers pull verdicts.
type Service struct {
	store   *Store
	queue   *jobs.Store
	meta    *meta.Store
	trivy   *Trivy
	audit   Auditor
	opts    Options
	metrics *Metrics
	log     *slog.Logger

	dbMu      sync.Mutex
	dbDir     string    // this replica's current database copy
	dbUpdated time.Time // its build time
	dbDigest  string    // the artifact it came from, when local
	// javaDigest is the Java database artifact in that copy ("" for the empty one).
	javaDigest string
	// adapterName is the adapter's engine name, from its last metadata.
	adapterName string

	cache verdictCache
}

// New returns the scan service; audit and metrics may be nil.
func New(store *Store, queue *jobs.Store, m *meta.Store, trivy *Trivy, audit Auditor, opts Options, metrics *Metrics, log *slog.Logger) *Service {
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = 5 * time.Second
	}
	s := &Service{store: store, queue: queue, meta: m, trivy: trivy, audit: audit, opts: opts, metrics: metrics, log: log}
	s.cache.init()
	metrics.watch(s)
	return s
}

// Setup schedules the periodic database check and re-scans.
func (s *Service) Setup(ctx context.Context) error {
	if err := s.queue.Schedule(ctx, jobs.Task{Kind: KindDB, Key: "db"}); err != nil {
		return err
	}
	if s.opts.RescanInterval > 0 {
		return s.queue.Schedule(ctx, jobs.Task{Kind: KindPeriodic, Key: "periodic"})
	}
	return nil
}

// Register installs the scan handlers on r.
func (s *Service) Register(r *jobs.Runner) {
	r.Handle(KindImage, s.scanImage)
	r.Handle(KindEvaluate, s.evaluateStored)
	r.Handle(KindRescan, s.rescan)
	r.Handle(KindPeriodic, s.periodic)
	r.Handle(KindDBPushed, func(ctx context.Context, _ jobs.Task) error {
		_, err := s.CheckDB(ctx)
		return err
	})
	r.Handle(KindDB, func(ctx context.Context, _ jobs.Task) error {
		if _, err := s.CheckDB(ctx); err != nil {
			return err
		}
		return jobs.Postpone(time.Now().Add(s.opts.DBCheckInterval))
	})
}

// Request queues a scan of repo@digest (on demand, or on push).
func (s *Service) Request(ctx context.Context, repo, digest string) error {
	err := s.queue.Enqueue(ctx, jobs.Task{Kind: KindImage, Key: digest, Payload: []byte(repo), MaxAttempts: scanAttempts})
	s.wake()
	return err
}

func (s *Service) wake() {
	if s.opts.Wake != nil {
		s.opts.Wake()
	}
}

// localDB splits the database reference into a repository and tag of this registry;
// ok is false for a reference to another registry.
func (s *Service) localDB() (repo, tag string, ok bool) { return s.localRef(s.opts.DBRepository) }

// localRef splits a reference held by this registry into repository and tag: a name
// without a registry host, or one under a mirror upstream's name (ghcr.io/aquasecurity/
// trivy-db:2 through a mirror of ghcr.io). ok is false for another registry.
func (s *Service) localRef(ref string) (repo, tag string, ok bool) {
	if ref == "" {
		return "", "", false
	}
	if first, _, found := strings.Cut(ref, "/"); found && (strings.ContainsAny(first, ".:") || first == "localhost") && !s.IsUpstream(first) {
		return "", "", false
	}
	repo, tag, found := strings.Cut(ref, ":")
	if !found {
		tag = "latest"
	}
	return repo, tag, true
}

// engineRef is a database reference as the engine reads it.
func (s *Service) engineRef(ref string) string {
	if _, _, ok := s.localRef(ref); ok {
		return s.opts.Registry + "/" + ref
	}
	return ref
}

// javaDB finds the Java database artifact: its digest when in this registry, and
// whether there is one to load (a reference elsewhere is always tried).
func (s *Service) javaDB(ctx context.Context) (digest, repo string, present bool, err error) {
	ref := s.opts.JavaDBRepository
	if ref == "" {
		return "", "", false, nil
	}
	repo, tag, ok := s.localRef(ref)
	if !ok {
		return ref, "", true, nil
	}
	m, err := s.meta.GetManifest(ctx, repo, tag, false, false)
	if errors.Is(err, meta.ErrNotFound) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	return m.Digest, repo, true, nil
}

// CheckDB loads the database artifact when it changed (for one in this registry: its
// digest) or none is loaded, and queues re-evaluation of every report made with an
// older database. It returns the loaded database's build time.
func (s *Service) CheckDB(ctx context.Context) (time.Time, error) {
	if s.opts.Adapter != nil {
		return s.checkAdapterDB(ctx)
	}
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	digest := ""
	tokenRepos := []string{}
	if repo, tag, ok := s.localDB(); ok {
		m, err := s.meta.GetManifest(ctx, repo, tag, false, false)
		if errors.Is(err, meta.ErrNotFound) {
			return time.Time{}, fmt.Errorf("scan: the vulnerability database %s is not in this registry: mirror it or load it (cric, berth mirror warm)", s.opts.DBRepository)
		}
		if err != nil {
			return time.Time{}, err
		}
		digest = m.Digest
		tokenRepos = append(tokenRepos, repo)
	}
	javaDigest, javaRepo, javaPresent, err := s.javaDB(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if javaRepo != "" {
		tokenRepos = append(tokenRepos, javaRepo)
	}
	if s.dbDir != "" && digest != "" && digest == s.dbDigest && javaDigest == s.javaDigest {
		return s.dbUpdated, nil
	}
	token, err := s.opts.Token(tokenRepos...)
	if err != nil {
		return time.Time{}, fmt.Errorf("scan: token: %w", err)
	}
	dir, updated, err := s.trivy.Download(ctx, s.engineRef(s.opts.DBRepository), token)
	if err != nil {
		return time.Time{}, fmt.Errorf("scan: load the vulnerability database %s: %w", s.opts.DBRepository, err)
	}
	if javaPresent {
		err = s.trivy.DownloadJavaDB(ctx, s.engineRef(s.opts.JavaDBRepository), token, dir)
		if err != nil {
			os.RemoveAll(dir)
			return time.Time{}, fmt.Errorf("scan: load the Java database %s: %w", s.opts.JavaDBRepository, err)
		}
	} else {
		if err := EmptyJavaDB(dir); err != nil {
			os.RemoveAll(dir)
			return time.Time{}, fmt.Errorf("scan: %w", err)
		}
		javaDigest = ""
		if s.opts.JavaDBRepository != "" {
			s.log.Warn("the Java database is not in this registry: JARs without Maven metadata are not identified; mirror or load it",
				"repository", s.opts.JavaDBRepository)
		}
	}
	old := s.dbDir
	s.dbDir, s.dbUpdated, s.dbDigest, s.javaDigest = dir, updated, digest, javaDigest
	if old != "" {
		// A trivy run that started with the old copy has its database open and keeps
		// reading it after the removal (Linux); one about to start fails and is retried.
		_ = os.RemoveAll(old)
	}
	s.log.Info("vulnerability database loaded", "repository", s.opts.DBRepository, "digest", digest, "updated", updated,
		"javaDB", javaDigest)
	newer, err := s.store.RecordDB(ctx, updated)
	if err != nil {
		return updated, err
	}
	if newer {
		n, err := s.queue.EnqueueQuery(ctx, KindEvaluate, staleSBOMsQuery(updated), time.Now())
		if err != nil {
			return updated, err
		}
		if n > 0 {
			s.wake()
			s.log.Info("re-evaluating stored SBOMs against the newer database", "count", n)
		}
	}
	return updated, nil
}

// currentDB returns this replica's database, loading one first when it has none or
// another replica loaded a newer one.
func (s *Service) currentDB(ctx context.Context) (string, time.Time, error) {
	newest, err := s.store.NewestDB(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	s.dbMu.Lock()
	dir, updated := s.dbDir, s.dbUpdated
	s.dbMu.Unlock()
	if dir == "" || updated.Before(newest) {
		if _, err := s.CheckDB(ctx); err != nil {
			return "", time.Time{}, err
		}
		s.dbMu.Lock()
		dir, updated = s.dbDir, s.dbUpdated
		s.dbMu.Unlock()
	}
	return dir, updated, nil
}

// DBInfo is the state of this replica's database copy.
type DBInfo struct {
	Repository string    `json:"repository"`
	Digest     string    `json:"digest,omitempty"`
	UpdatedAt  time.Time `json:"updatedAt,omitzero"`
	Stale      bool      `json:"stale"`
	// JavaDigest is the Java database artifact loaded with it ("": an empty one).
	JavaDigest string `json:"javaDigest,omitempty"`
}

// DB reports the loaded database.
func (s *Service) DB() DBInfo {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	info := DBInfo{Repository: s.opts.DBRepository, Digest: s.dbDigest, UpdatedAt: s.dbUpdated, JavaDigest: s.javaDigest}
	if s.opts.Adapter != nil {
		info.Repository = "scanner adapter " + s.opts.Adapter.URL
	}
	info.Stale = s.dbUpdated.IsZero() || (s.opts.StaleAfter > 0 && time.Since(s.dbUpdated) > s.opts.StaleAfter)
	return info
}

func isIndex(m meta.Manifest) bool {
	return m.MediaType == oci.MediaTypeOCIIndex || m.MediaType == oci.MediaTypeDockerList
}

// isImage tells a container image (what has packages to scan) from an artifact:
// signatures, SBOMs, attestations, Helm charts and other artifacts are not scanned
// and never blocked.
func isImage(m meta.Manifest) bool {
	if m.Subject != "" || (m.MediaType != oci.MediaTypeOCIManifest && m.MediaType != oci.MediaTypeDockerManifest) {
		return false
	}
	// Images store no artifact type (their config is an image config); artifacts do.
	switch m.ArtifactType {
	case "", "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json":
		return true
	}
	return false
}

// scanImage is the KindImage handler: an index queues its children; an image is
// inventoried once into an SBOM, which is then evaluated.
func (s *Service) scanImage(ctx context.Context, t jobs.Task) error {
	repo, digest := string(t.Payload), t.Key
	m, err := s.meta.GetManifest(ctx, repo, digest, true, true)
	if errors.Is(err, meta.ErrNotFound) {
		return nil // deleted since
	}
	if err != nil {
		return err
	}
	if isIndex(m) {
		parsed, err := oci.ParseManifest(m.MediaType, m.Payload)
		if err != nil {
			return jobs.Permanent(err)
		}
		for _, d := range parsed.Manifests {
			if err := s.Request(ctx, repo, string(d.Digest)); err != nil {
				return err
			}
		}
		return nil
	}
	if !isImage(m) {
		return nil
	}
	err = s.inventory(ctx, repo, m)
	var permanent *AdapterError
	if errors.As(err, &permanent) {
		s.fail(ctx, repo, digest, err)
		return jobs.Permanent(err)
	}
	if err != nil && t.Attempts >= t.MaxAttempts {
		s.fail(ctx, repo, digest, err)
	}
	return err
}

func (s *Service) inventory(ctx context.Context, repo string, m meta.Manifest) error {
	digest := m.Digest
	if s.opts.Adapter != nil {
		return s.adapterScan(ctx, repo, digest, m.MediaType)
	}
	dir, updated, err := s.currentDB(ctx)
	if err != nil {
		return err
	}
	pol, err := s.projectPolicy(ctx, repo)
	if err != nil {
		return err
	}
	if pol.UsePushedSBOMs && s.opts.Referrers != nil {
		sbom, err := s.opts.Referrers.PushedSBOM(ctx, repo, digest)
		if err != nil {
			return err
		}
		if sbom != nil {
			if err := s.store.PutSBOM(ctx, digest, repo, sbom); err != nil {
				return err
			}
			return s.evaluate(ctx, repo, digest, sbom, dir, updated, time.Now())
		}
	}
	repos := []string{repo}
	if dbRepo, _, ok := s.localDB(); ok {
		repos = append(repos, dbRepo)
	}
	token, err := s.opts.Token(repos...)
	if err != nil {
		return fmt.Errorf("scan: token: %w", err)
	}
	start := time.Now()
	sbom, err := s.trivy.SBOM(ctx, Target{Registry: s.opts.Registry, Repository: repo, Digest: digest, Token: token}, dir)
	if err != nil {
		s.metrics.scanned("failed", time.Since(start))
		return err
	}
	if err := s.store.PutSBOM(ctx, digest, repo, sbom); err != nil {
		return err
	}
	if pol.AttachSBOM && s.opts.Referrers != nil {
		// The report does not depend on it: a failure (a full quota) is logged.
		if err := s.attachSBOM(ctx, repo, m, sbom, "trivy"); err != nil {
			s.log.Warn("attach SBOM", "repository", repo, "digest", digest, "err", err)
		}
	}
	return s.evaluate(ctx, repo, digest, sbom, dir, updated, start)
}

// evaluateStored is the KindEvaluate handler.
func (s *Service) evaluateStored(ctx context.Context, t jobs.Task) error {
	sbom, repo, err := s.store.SBOM(ctx, t.Key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	dir, updated, err := s.currentDB(ctx)
	if err != nil {
		return err
	}
	return s.evaluate(ctx, repo, t.Key, sbom, dir, updated, time.Now())
}

func (s *Service) evaluate(ctx context.Context, repo, digest string, sbom []byte, dir string, updated, start time.Time) error {
	findings, err := s.trivy.Evaluate(ctx, sbom, dir)
	if err != nil {
		s.metrics.scanned("failed", time.Since(start))
		return err
	}
	r := Report{Digest: digest, Repository: repo, Engine: "trivy", Status: StatusOK, ScannedAt: time.Now().UTC(),
		DBUpdatedAt: updated, Findings: findings}
	if err := s.store.PutReport(ctx, r, s.opts.OnReport); err != nil {
		return err
	}
	s.cache.forget(digest)
	s.metrics.scanned("ok", time.Since(start))
	sum := Summarize(findings)
	s.log.Info("scanned", "repository", repo, "digest", digest, "critical", sum.Critical, "high", sum.High,
		"medium", sum.Medium, "low", sum.Low, "db", updated)
	return nil
}

// fail records a scan that failed for good, so that the failure is visible and a
// policy blocking unscanned images keeps blocking it.
func (s *Service) fail(ctx context.Context, repo, digest string, cause error) {
	msg := cause.Error()
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	r := Report{Digest: digest, Repository: repo, Engine: s.engineName(), Status: StatusFailed, Error: msg, ScannedAt: time.Now().UTC()}
	if old, err := s.store.Report(ctx, digest); err == nil && old.Status == StatusOK {
		return // keep the last good findings
	}
	if err := s.store.PutReport(ctx, r, s.opts.OnReport); err != nil {
		s.log.Warn("record failed scan", "digest", digest, "err", err)
	}
	s.cache.forget(digest)
}

// Report returns a manifest's report.
func (s *Service) Report(ctx context.Context, digest string) (Report, error) {
	return s.store.Report(ctx, digest)
}

// Affected lists the images with vulnerability id across the registry.
func (s *Service) Affected(ctx context.Context, id string, limit int) ([]Affected, error) {
	return s.store.Affected(ctx, id, limit)
}

// IsUpstream tells whether name is a mirror upstream.
func (s *Service) IsUpstream(name string) bool {
	return s.opts.Upstream != nil && s.opts.Upstream(name)
}

// ProjectReports lists the report summaries of a project's images, worst first.
func (s *Service) ProjectReports(ctx context.Context, project string, limit int) ([]ArtifactReport, error) {
	return s.store.ProjectReports(ctx, project, limit)
}

// Policy returns a project's scan policy.
func (s *Service) Policy(ctx context.Context, project string) (Policy, error) {
	return s.store.Policy(ctx, project)
}

// PutPolicy validates and stores a project's scan policy.
func (s *Service) PutPolicy(ctx context.Context, project string, p Policy) error {
	if err := p.Validate(); err != nil {
		return &InvalidError{err}
	}
	if err := s.store.PutPolicy(ctx, project, p); err != nil {
		return err
	}
	s.cache.forgetProject(project)
	return nil
}

// DeletePolicy removes a project's scan policy.
func (s *Service) DeletePolicy(ctx context.Context, project string) error {
	err := s.store.DeletePolicy(ctx, project)
	s.cache.forgetProject(project)
	return err
}

// InvalidError is a policy the caller got wrong.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }
