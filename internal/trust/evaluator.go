package trust

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/prometheus/client_golang/prometheus"
)

// Evaluator decides whether a manifest may be served. It is safe for concurrent use.
type Evaluator struct {
	store   *Store
	content Content
	log     *slog.Logger
	audit   func(meta.AuditEntry)
	metrics *metrics
	fetch   SignatureSource

	// fromConfig are upstream policies from the configuration file, by upstream name.
	fromConfig map[string]*compiled

	mu       sync.RWMutex
	gen      int64
	projects map[string]*compiled // by project
	upstream map[string]*compiled // stored upstream policies, by upstream name
	stored   []Policy
	verdicts map[verdictKey]cachedVerdict
}

type verdictKey struct{ repo, digest string }

type cachedVerdict struct {
	gen int64
	at  time.Time
	v   Verdict
}

// SignatureSource copies a mirrored manifest's signatures from its upstream into the
// cache (package proxy), so that they are checked along with the image.
type SignatureSource interface {
	FetchSignatures(ctx context.Context, upstream, repo, digest string) error
}

// upstreamRecheck is how long a failed verdict on mirrored content stands before the
// upstream is asked again for signatures: one added there later is picked up.
const upstreamRecheck = 10 * time.Second

// maxCachedVerdicts bounds the in-memory cache; past it the cache starts over (the
// database keeps every verdict, so a restart costs a read, not a verification).
const maxCachedVerdicts = 200_000

// Options configure an Evaluator.
type Options struct {
	// Upstreams maps mirror upstream names to their configured policies.
	Upstreams map[string]config.TrustPolicy
	// Audit records warn-mode failures and denials; nil drops them.
	Audit func(meta.AuditEntry)
	// Registerer receives the metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Signatures fetches mirrored content's signatures from its upstream; nil checks
	// only what the cache holds.
	Signatures SignatureSource
}

// NewEvaluator loads the stored policies and compiles the configured ones.
func NewEvaluator(ctx context.Context, store *Store, content Content, o Options, log *slog.Logger) (*Evaluator, error) {
	e := &Evaluator{store: store, content: content, log: log, audit: o.Audit, fromConfig: map[string]*compiled{},
		verdicts: map[verdictKey]cachedVerdict{}, metrics: newMetrics(o.Registerer), fetch: o.Signatures}
	if e.audit == nil {
		e.audit = func(meta.AuditEntry) {}
	}
	for up, spec := range o.Upstreams {
		c, err := compile("upstream-"+sanitize(up), 0, spec)
		if err != nil {
			return nil, fmt.Errorf("mirror upstream %s trust: %w", up, err)
		}
		e.fromConfig[up] = c
	}
	if err := e.reload(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

var unsafeName = regexp.MustCompile(`[^a-z0-9._-]+`)

func sanitize(s string) string { return unsafeName.ReplaceAllString(s, "-") }

// reload reads the generation and the stored policies. A stored policy that no longer
// compiles (a trusted-root file removed) fails closed: it denies under enforce.
func (e *Evaluator) reload(ctx context.Context) error {
	g, err := e.store.Generation(ctx)
	if err != nil {
		return err
	}
	list, err := e.store.List(ctx)
	if err != nil {
		return err
	}
	projects, upstream := map[string]*compiled{}, map[string]*compiled{}
	for _, p := range list {
		c, err := compile(p.Name, p.Revision, p.Spec)
		if err != nil {
			e.log.Error("signature policy does not load; it denies everything it covers", "policy", p.Name, "err", err)
			c = &compiled{name: p.Name, mode: p.Spec.Mode, revision: p.Revision, reqs: []*requirement{{name: "loadable policy (" + err.Error() + ")"}}}
		}
		if p.ScopeKind == ScopeUpstream {
			upstream[p.Scope] = c
		} else {
			projects[p.Scope] = c
		}
	}
	e.mu.Lock()
	e.gen, e.projects, e.upstream, e.stored = g, projects, upstream, list
	e.mu.Unlock()
	return nil
}

// Run polls the shared generation so that changes made through another replica (a
// policy edit, a signature pushed there) reach this one within interval.
func (e *Evaluator) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g, err := e.store.Generation(ctx)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("trust generation poll", "err", err)
			}
			continue
		}
		e.mu.RLock()
		same := g == e.gen
		e.mu.RUnlock()
		if !same {
			if err := e.reload(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("trust policy reload", "err", err)
			}
		}
	}
}

// Changed makes every cached verdict stale on every replica: a policy changed or a
// signature arrived. This replica sees it at once, the others at their next poll.
func (e *Evaluator) Changed(ctx context.Context) error {
	if _, err := e.store.Bump(ctx); err != nil {
		return err
	}
	return e.reload(ctx)
}

// Policies lists stored and configured policies.
func (e *Evaluator) Policies() []Policy {
	e.mu.RLock()
	out := append([]Policy(nil), e.stored...)
	e.mu.RUnlock()
	for up, c := range e.fromConfig {
		out = append(out, Policy{Name: c.name, ScopeKind: ScopeUpstream, Scope: up, FromConfig: true, Spec: c.spec})
	}
	return out
}

// policyFor picks the policy covering a repository: its mirror upstream's (stored ones
// win over the configuration file) or its project's.
func (e *Evaluator) policyFor(repo, upstream string) (*compiled, int64) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if upstream != "" {
		if c := e.upstream[upstream]; c != nil {
			return c, e.gen
		}
		return e.fromConfig[upstream], e.gen
	}
	return e.projects[oci.Project(repo)], e.gen
}

// Check decides whether m, read from repo (a mirror's cache repository when upstream
// is set), may be served. Under enforce a failure is errcode.Denied naming the policy
// and what was missing; under warn it is logged, counted and audited, and served.
//
// signer, when not nil, tells whether the caller may push to repo and asked by digest.
// Such a caller is served a failing manifest (audited as "signer"): signing tools must
// read the manifest they sign (cosign GETs it, notation HEADs it), so without this
// nothing could ever be signed inside an enforced project, and whoever may push could
// replace the content anyway. Pull-only callers never are.
func (e *Evaluator) Check(ctx context.Context, repo, upstream string, m meta.Manifest, signer func() bool) error {
	p, gen := e.policyFor(repo, upstream)
	if p == nil || p.mode == ModeOff {
		return nil
	}
	v, err := e.verdict(ctx, p, gen, scope{repo, upstream}, m, 0)
	if err != nil {
		return errcode.Unavailable.Wrap(err, "signature policy "+p.name+" could not be evaluated")
	}
	if v.Passed {
		return nil
	}
	entry := meta.AuditEntry{Action: "verify", Resource: repo + "@" + m.Digest, Detail: v.Message(), ActorType: "policy", Actor: p.name}
	if p.mode == ModeWarn {
		e.metrics.outcome(p.name, "warned")
		e.log.WarnContext(ctx, "signature policy failed (warn mode: served)", "policy", p.name, "repository", repo, "digest", m.Digest, "missing", v.Missing)
		entry.Result = "warned"
		e.audit(entry)
		return nil
	}
	if signer != nil && signer() {
		e.metrics.outcome(p.name, "signer")
		entry.Result = "signer"
		e.audit(entry)
		return nil
	}
	e.metrics.outcome(p.name, "denied")
	entry.Result = "denied"
	e.audit(entry)
	return errcode.Denied.New(v.Message())
}

// scope is where a manifest is read: a repository, cached from upstream when set.
type scope struct{ repo, upstream string }

// verdict returns the cached verdict or reaches a new one. depth bounds the walk up
// through indexes that list the manifest.
func (e *Evaluator) verdict(ctx context.Context, p *compiled, gen int64, sc scope, m meta.Manifest, depth int) (Verdict, error) {
	k := verdictKey{sc.repo, m.Digest}
	e.mu.RLock()
	c, ok := e.verdicts[k]
	e.mu.RUnlock()
	if ok && c.gen == gen && c.v.Policy == p.name && c.v.Revision == p.revision && e.fresh(sc, c) {
		e.metrics.outcome(p.name, "cached")
		return c.v, nil
	}
	var sv storedVerdict
	if sc.upstream == "" || (ok && c.v.Passed) {
		var err error
		if sv, ok, err = e.store.Verdict(ctx, sc.repo, m.Digest); err != nil {
			return Verdict{}, err
		}
	} else {
		ok = false // mirrored and not known to pass: ask the upstream for signatures
	}
	if !ok || sv.Generation != gen || sv.Verdict.Policy != p.name || sv.Verdict.Revision != p.revision {
		start := time.Now()
		var err error
		if sv.Verdict, err = e.reach(ctx, p, gen, sc, m, depth); err != nil {
			return Verdict{}, err
		}
		e.metrics.verified(p.name, time.Since(start))
		if err := e.store.SaveVerdict(ctx, sc.repo, m.Digest, gen, sv.Verdict); err != nil {
			e.log.WarnContext(ctx, "saving verdict", "err", err)
		}
	}
	e.mu.Lock()
	if len(e.verdicts) >= maxCachedVerdicts {
		e.verdicts = map[verdictKey]cachedVerdict{}
	}
	e.verdicts[k] = cachedVerdict{gen: gen, at: time.Now(), v: sv.Verdict}
	e.mu.Unlock()
	return sv.Verdict, nil
}

// fresh tells whether a cached verdict still stands: always, except a failure on
// mirrored content, which is rechecked against the upstream after upstreamRecheck.
func (e *Evaluator) fresh(sc scope, c cachedVerdict) bool {
	return c.v.Passed || sc.upstream == "" || time.Since(c.at) < upstreamRecheck
}

func (e *Evaluator) reach(ctx context.Context, p *compiled, gen int64, sc scope, m meta.Manifest, depth int) (Verdict, error) {
	repo := sc.repo
	if len(m.Payload) == 0 {
		full, err := e.content.GetManifest(ctx, repo, registry.Reference{Digest: oci.Digest(m.Digest)}, true)
		if err != nil {
			return Verdict{}, err
		}
		m = full
	}
	if why := exempt(m); why != "" {
		return Verdict{Passed: true, Policy: p.name, Mode: p.mode, Revision: p.revision, Digest: m.Digest, Exempt: why, Signatures: []SignatureResult{}}, nil
	}
	if sc.upstream != "" && e.fetch != nil {
		if err := e.fetch.FetchSignatures(ctx, sc.upstream, repo, m.Digest); err != nil {
			// Checked on what the cache holds: an unreachable upstream must not
			// turn a verified image into a denial, nor an unsigned one into a pass.
			e.log.WarnContext(ctx, "fetching signatures from upstream", "upstream", sc.upstream, "repository", repo, "digest", m.Digest, "err", err)
		}
	}
	v, err := p.evaluate(ctx, e.content, Target{Repo: repo, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size})
	if err != nil || v.Passed || depth >= 2 {
		return v, err
	}
	// How containerd and CRI-O pull: the signed index by tag, then the platform's
	// child by digest. A child passes when an index listing it in this repository does.
	parents, err := e.store.Parents(ctx, repo, m.Digest)
	if err != nil {
		return v, err
	}
	for _, d := range parents {
		pm, err := e.content.GetManifest(ctx, repo, registry.Reference{Digest: oci.Digest(d)}, false)
		if errors.Is(err, errcode.ManifestUnknown) {
			continue
		}
		if err != nil {
			return v, err
		}
		pv, err := e.verdict(ctx, p, gen, sc, pm, depth+1)
		if err != nil {
			return v, err
		}
		if pv.Passed && pv.Exempt == "" {
			v.Passed, v.Via, v.Missing = true, d, nil
			return v, nil
		}
	}
	return v, nil
}

// Verify reaches a fresh verdict for the admin API and `berth admin verify`, without
// the cache, listing every signature found.
func (e *Evaluator) Verify(ctx context.Context, repo, upstream string, ref registry.Reference) (Verdict, error) {
	m, err := e.content.GetManifest(ctx, repo, ref, true)
	if err != nil {
		return Verdict{}, err
	}
	p, gen := e.policyFor(repo, upstream)
	if p == nil {
		return Verdict{Passed: true, Mode: ModeOff, Digest: m.Digest, Signatures: []SignatureResult{}}, nil
	}
	return e.reach(ctx, p, gen, scope{repo, upstream}, m, 0)
}

// Stored is told about each manifest push: a signature, attestation or referrers
// index arriving makes every cached verdict stale, here and on the other replicas.
func (e *Evaluator) Stored(ctx context.Context, repo string, res registry.PutResult) {
	arrived := res.Subject != ""
	for _, t := range res.Tags {
		arrived = arrived || ExemptTag(t)
	}
	if !arrived {
		return
	}
	if err := e.Changed(context.WithoutCancel(ctx)); err != nil {
		e.log.WarnContext(ctx, "trust: recording a new signature", "repository", repo, "err", err)
	}
}
