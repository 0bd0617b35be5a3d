package scan

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
)

// verdictCache keeps policies and reports a replica read recently: a manifest GET
// costs no query while they are fresh. A replica learns of another's new report or
// policy within CacheTTL; its own changes apply at once.
type verdictCache struct {
	mu       sync.Mutex
	policies map[string]cachedPolicy
	reports  map[string]cachedReport
	warned   map[string]time.Time // repo@digest → last warn audit
}

type cachedPolicy struct {
	p  *Policy // nil: none
	at time.Time
}

type cachedReport struct {
	r  *Report // nil: none
	at time.Time
}

func (c *verdictCache) init() {
	c.policies, c.reports, c.warned = map[string]cachedPolicy{}, map[string]cachedReport{}, map[string]time.Time{}
}

func (c *verdictCache) forget(digest string) {
	c.mu.Lock()
	delete(c.reports, digest)
	c.mu.Unlock()
}

func (c *verdictCache) forgetProject(project string) {
	c.mu.Lock()
	delete(c.policies, project)
	c.mu.Unlock()
}

// maxCached bounds the caches: past it they start afresh (a burst of distinct digests
// cannot grow memory without bound).
const maxCached = 20000

func (s *Service) policyOf(ctx context.Context, project string) (*Policy, error) {
	now := time.Now()
	s.cache.mu.Lock()
	c, ok := s.cache.policies[project]
	s.cache.mu.Unlock()
	if ok && now.Sub(c.at) < s.opts.CacheTTL {
		return c.p, nil
	}
	p, err := s.store.Policy(ctx, project)
	var pp *Policy
	switch {
	case err == nil:
		pp = &p
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	s.cache.mu.Lock()
	if len(s.cache.policies) > maxCached {
		s.cache.policies = map[string]cachedPolicy{}
	}
	s.cache.policies[project] = cachedPolicy{p: pp, at: now}
	s.cache.mu.Unlock()
	return pp, nil
}

func (s *Service) reportOf(ctx context.Context, digest string) (*Report, error) {
	now := time.Now()
	s.cache.mu.Lock()
	c, ok := s.cache.reports[digest]
	s.cache.mu.Unlock()
	if ok && now.Sub(c.at) < s.opts.CacheTTL {
		return c.r, nil
	}
	r, err := s.store.Report(ctx, digest)
	var rp *Report
	switch {
	case err == nil:
		rp = &r
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	s.cache.mu.Lock()
	if len(s.cache.reports) > maxCached {
		s.cache.reports = map[string]cachedReport{}
	}
	s.cache.reports[digest] = cachedReport{r: rp, at: now}
	s.cache.mu.Unlock()
	return rp, nil
}

// Pushed queues a scan of a pushed manifest when its project scans on push. Referrers
// (signatures, SBOMs) are not scanned.
func (s *Service) Pushed(ctx context.Context, repo, digest, subject string) {
	if subject != "" {
		return
	}
	dbRepo, _, isDB := s.localDB()
	javaRepo, _, isJava := s.localRef(s.opts.JavaDBRepository)
	if s.opts.Adapter == nil && ((isDB && repo == dbRepo) || (isJava && repo == javaRepo)) {
		// A database pushed or mirrored into this registry is loaded now, not at the
		// next periodic check.
		if err := s.queue.Enqueue(context.WithoutCancel(ctx), jobs.Task{Kind: KindDBPushed, Key: "db"}); err != nil {
			s.log.Warn("queue database check", "err", err)
		}
		s.wake()
		return
	}
	p, err := s.policyOf(ctx, oci.Project(repo))
	if err != nil || p == nil || !p.ScanOnPush {
		return
	}
	if err := s.Request(context.WithoutCancel(ctx), repo, digest); err != nil {
		s.log.Warn("queue scan on push", "repository", repo, "digest", digest, "err", err)
	}
}

// Check decides whether manifest m may be served from repo under its project's scan
// policy: nil, or 403 DENIED naming the policy and the worst findings. Indexes pass
// (their images are checked when the client fetches them), artifacts pass, and so do
// callers exempt() says may write the repository (signing tools read what they sign).
func (s *Service) Check(ctx context.Context, repo string, m meta.Manifest, exempt func() bool) error {
	if !isImage(m) {
		return nil
	}
	project := oci.Project(repo)
	p, err := s.policyOf(ctx, project)
	if err != nil {
		return errcode.Unavailable.Wrap(err, "the scan policy could not be read; retry shortly")
	}
	if p == nil || (p.Mode != ModeWarn && p.Mode != ModeEnforce) {
		return nil
	}
	r, err := s.reportOf(ctx, m.Digest)
	if err != nil {
		return errcode.Unavailable.Wrap(err, "the scan report could not be read; retry shortly")
	}
	var reason string
	switch {
	case r == nil || r.Status != StatusOK:
		if !p.BlockUnscanned {
			return nil
		}
		if r == nil {
			if err := s.Request(context.WithoutCancel(ctx), repo, m.Digest); err != nil {
				s.log.Warn("queue scan of unscanned image", "digest", m.Digest, "err", err)
			}
			reason = "it has not been scanned yet (a scan is queued; retry when it is done)"
		} else {
			reason = "its scan failed: " + r.Error
		}
	default:
		blocked := p.blocks(r.Findings, time.Now())
		if len(blocked) == 0 {
			return nil
		}
		reason = fmt.Sprintf("%d vulnerabilities at %s or above: %s", len(blocked), p.Severity, describeBlocked(blocked))
	}
	if exempt != nil && exempt() {
		return nil
	}
	msg := fmt.Sprintf("%s@%s is blocked by the scan policy of project %s: %s", repo, m.Digest, project, reason)
	if p.Mode == ModeWarn {
		s.warn(ctx, repo, m.Digest, msg)
		return nil
	}
	s.metrics.blocked(ModeEnforce)
	return errcode.Denied.New(msg)
}

// warn logs, counts and audits (once per image per 10 minutes) what enforce would block.
func (s *Service) warn(ctx context.Context, repo, digest, msg string) {
	s.metrics.blocked(ModeWarn)
	key := repo + "@" + digest
	now := time.Now()
	s.cache.mu.Lock()
	last, seen := s.cache.warned[key]
	if !seen || now.Sub(last) > 10*time.Minute {
		if len(s.cache.warned) > maxCached {
			s.cache.warned = map[string]time.Time{}
		}
		s.cache.warned[key] = now
	}
	s.cache.mu.Unlock()
	if seen && now.Sub(last) <= 10*time.Minute {
		return
	}
	s.log.Warn("scan policy (warn mode) would block a pull", "detail", msg)
	if s.audit == nil {
		return
	}
	err := s.audit.AppendAudit(context.WithoutCancel(ctx), []meta.AuditEntry{{At: now, Actor: "scan", ActorType: "system",
		Action: "scan.warn", Resource: key, Result: "warned", Detail: msg}})
	if err != nil {
		s.log.Warn("scan warn audit", "err", err)
	}
}
