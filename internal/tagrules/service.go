package tagrules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
)

// KindRetention is the job that runs a project's retention policy on its schedule; its
// key is the project.
const KindRetention = "retention.run"

// ErrMirrored refuses rules on a mirror's namespace: a mirror's cache is bounded by its
// own eviction, and its tags follow the upstream.
var ErrMirrored = errors.New("tagrules: mirrored repositories follow their upstream; they take no retention or immutable rules")

// Auditor records retention's deletions in the audit trail.
type Auditor interface {
	AppendAudit(ctx context.Context, entries []meta.AuditEntry) error
}

// Options configure a Service.
type Options struct {
	// Mirrored tells whether a project name is a mirror's.
	Mirrored func(project string) bool
}

// Service runs retention and answers immutability for the registry and the admin API.
type Service struct {
	store   *Store
	queue   *jobs.Store
	audit   Auditor
	opts    Options
	metrics *Metrics
	log     *slog.Logger
}

// New returns the service; audit and metrics may be nil.
func New(store *Store, queue *jobs.Store, audit Auditor, opts Options, metrics *Metrics, log *slog.Logger) *Service {
	return &Service{store: store, queue: queue, audit: audit, opts: opts, metrics: metrics, log: log}
}

func (s *Service) mirrored(project string) bool {
	return s.opts.Mirrored != nil && s.opts.Mirrored(project)
}

// PutPolicy validates and stores a project's retention policy, and (re)schedules its
// job: the next run is one schedule from now.
func (s *Service) PutPolicy(ctx context.Context, project string, p Policy) (StoredPolicy, error) {
	if s.mirrored(project) {
		return StoredPolicy{}, ErrMirrored
	}
	if err := p.Validate(); err != nil {
		return StoredPolicy{}, &InvalidError{err}
	}
	if err := s.store.PutPolicy(ctx, project, p); err != nil {
		return StoredPolicy{}, err
	}
	if p.Schedule > 0 {
		t := jobs.Task{Kind: KindRetention, Key: project, Due: time.Now().Add(time.Duration(p.Schedule))}
		if err := s.queue.Enqueue(ctx, t); err != nil {
			return StoredPolicy{}, fmt.Errorf("tagrules: schedule retention of %s: %w", project, err)
		}
	}
	return s.store.Policy(ctx, project)
}

// Policy returns a project's retention policy.
func (s *Service) Policy(ctx context.Context, project string) (StoredPolicy, error) {
	return s.store.Policy(ctx, project)
}

// DeletePolicy removes a project's policy; a queued run finds none and ends.
func (s *Service) DeletePolicy(ctx context.Context, project string) error {
	return s.store.DeletePolicy(ctx, project)
}

// InvalidError is a rule the caller got wrong.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// Report is what a retention run deleted (or, dry, would delete) and kept, with reasons.
type Report struct {
	Project string     `json:"project"`
	DryRun  bool       `json:"dryRun"`
	At      time.Time  `json:"at"`
	Kept    []Decision `json:"kept"`
	Deleted []Decision `json:"deleted"`
	// Skipped are tags pushed again between the decision and the deletion: newer than
	// the decision, they stay.
	Skipped []Decision `json:"skipped,omitempty"`
}

// Summary is the one-line outcome stored as the policy's last result.
func (r Report) Summary() string {
	verb := "deleted"
	if r.DryRun {
		verb = "would delete"
	}
	s := fmt.Sprintf("%s %d of %d tags in scope", verb, len(r.Deleted), len(r.Deleted)+len(r.Kept)+len(r.Skipped))
	if len(r.Skipped) > 0 {
		s += fmt.Sprintf(", %d pushed again meanwhile kept", len(r.Skipped))
	}
	return s
}

// Run evaluates the project's policy now and, unless dryRun, deletes the tags no rule
// keeps. actor names who ran it in the audit trail.
func (s *Service) Run(ctx context.Context, project string, dryRun bool, actor string) (Report, error) {
	sp, err := s.store.Policy(ctx, project)
	if err != nil {
		return Report{}, err
	}
	return s.run(ctx, sp, dryRun, actor)
}

func (s *Service) run(ctx context.Context, sp StoredPolicy, dryRun bool, actor string) (Report, error) {
	project := sp.Project
	tags, err := s.store.ProjectTags(ctx, project)
	if err != nil {
		return Report{}, err
	}
	rules, err := s.store.ImmutableRules(ctx, project)
	if err != nil {
		return Report{}, err
	}
	now := time.Now().UTC()
	guard := func(t TagInfo) string {
		if r := protecting(rules, repoPath(project, t.Repository), t.Tag); r != nil {
			return r.String()
		}
		return ""
	}
	keep, del, err := sp.Policy.Evaluate(project, tags, now, guard)
	if err != nil {
		return Report{}, &InvalidError{err}
	}
	rep := Report{Project: project, DryRun: dryRun, At: now, Kept: keep, Deleted: []Decision{}}
	if dryRun {
		rep.Deleted = del
		return rep, nil
	}
	var audit []meta.AuditEntry
	ctx = meta.WithActor(ctx, actor) // the tag.deleted events name who ran retention
	for _, d := range del {
		ok, err := s.store.DeleteTag(ctx, d.Repository, d.Tag, d.Digest)
		if err != nil {
			return rep, err // what was deleted stays deleted; the next run finishes
		}
		if !ok {
			d.Reason = "pushed again after the decision"
			rep.Skipped = append(rep.Skipped, d)
			continue
		}
		rep.Deleted = append(rep.Deleted, d)
		audit = append(audit, meta.AuditEntry{At: now, Actor: actor, ActorType: "system", Action: "retention.delete",
			Resource: d.Repository + ":" + d.Tag, Result: "ok", Detail: d.Digest + ": " + d.Reason})
	}
	s.metrics.ran(len(rep.Deleted))
	if len(audit) > 0 && s.audit != nil {
		if err := s.audit.AppendAudit(ctx, audit); err != nil {
			s.log.Warn("retention audit", "project", project, "err", err) // the deletions stand
		}
	}
	if err := s.store.RecordRun(ctx, project, rep.Summary(), now); err != nil {
		return rep, err
	}
	s.log.Info("retention ran", "project", project, "result", rep.Summary())
	return rep, nil
}

// Register installs the scheduled retention handler on r.
func (s *Service) Register(r *jobs.Runner) {
	r.Handle(KindRetention, func(ctx context.Context, t jobs.Task) error {
		sp, err := s.store.Policy(ctx, t.Key)
		if errors.Is(err, ErrNotFound) {
			return nil // the policy was removed since
		}
		if err != nil {
			return err
		}
		if sp.Policy.Schedule <= 0 {
			return nil // now run by hand only
		}
		if _, err := s.run(ctx, sp, false, "retention"); err != nil {
			s.metrics.failed()
			return err
		}
		return jobs.Postpone(time.Now().Add(time.Duration(sp.Policy.Schedule)))
	})
}

// AddImmutable validates and records an immutable rule.
func (s *Service) AddImmutable(ctx context.Context, r ImmutableRule) (ImmutableRule, error) {
	if s.mirrored(r.Project) {
		return ImmutableRule{}, ErrMirrored
	}
	if r.Repositories == "" {
		r.Repositories = "**"
	}
	if err := r.Validate(); err != nil {
		return ImmutableRule{}, &InvalidError{err}
	}
	return s.store.AddImmutable(ctx, r)
}

// DeleteImmutable removes a project's immutable rule.
func (s *Service) DeleteImmutable(ctx context.Context, project string, id int64) error {
	return s.store.DeleteImmutable(ctx, project, id)
}

// ImmutableRules lists a project's immutable rules.
func (s *Service) ImmutableRules(ctx context.Context, project string) ([]ImmutableRule, error) {
	return s.store.ImmutableRules(ctx, project)
}

// Immutable returns, for each of tags in repo that an immutable rule protects, the
// rule's description (the registry's TagGuard). Mirrored repositories have none.
func (s *Service) Immutable(ctx context.Context, repo string, tags []string) (map[string]string, error) {
	project := oci.Project(repo)
	if len(tags) == 0 || s.mirrored(project) {
		return nil, nil
	}
	rules, err := s.store.ImmutableRules(ctx, project)
	if err != nil || len(rules) == 0 {
		return nil, err
	}
	out := map[string]string{}
	for _, t := range tags {
		if r := protecting(rules, repoPath(project, repo), t); r != nil {
			out[t] = r.String()
		}
	}
	return out, nil
}

// repoPath is a repository's name after its project, which rules match.
func repoPath(project, repo string) string { return strings.TrimPrefix(repo, project+"/") }
