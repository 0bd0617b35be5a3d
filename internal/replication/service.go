package replication

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/cric"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
)

// Job kinds.
const (
	kindRun      = "replication.run"      // a manual run of a rule (key: rule id)
	kindSchedule = "replication.schedule" // a rule's periodic run (key: rule id)
	kindPush     = "replication.push"     // one pushed artifact (key: "rule repo<ref>")
	kindPrune    = "replication.prune"    // drops old executions (key: "executions")
	kindDelete   = "replication.delete"   // one propagated delete (key: "rule repo<ref>")
)

// Options configure the service.
type Options struct {
	// Local is this registry as the replicator reaches it (host:port on loopback).
	Local string
	// LocalToken returns a bearer token for the rule's creator with the given actions
	// on repos of this registry ("" with auth off).
	LocalToken func(user string, repos []string, actions ...string) (string, error)
	// Worker names this process among replicas (job leases).
	Worker string
	// Workers is how many replications this process runs at once (default 2).
	Workers int
	// Keep is how long finished executions stay in the history (default 30 days).
	Keep time.Duration
}

// Service runs replication rules. It is safe for concurrent use.
type Service struct {
	store   *Store
	db      *meta.DB
	meta    *meta.Store
	queue   *jobs.Store
	sealer  *events.Sealer
	pub     events.Publisher
	opts    Options
	log     *slog.Logger
	runner  *jobs.Runner
	metrics *metrics
}

// New returns the service; pub may be nil (no replication events).
func New(m *meta.Store, sealer *events.Sealer, pub events.Publisher, opts Options, reg prometheus.Registerer, log *slog.Logger) *Service {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Keep <= 0 {
		opts.Keep = 30 * 24 * time.Hour
	}
	queue := jobs.NewStore(m.DB())
	s := &Service{store: NewStore(m.DB()), db: m.DB(), meta: m, queue: queue, sealer: sealer, pub: pub, opts: opts, log: log, metrics: newMetrics(reg)}
	// Transfers run on their own workers over the shared queue: long copies never hold
	// up garbage collection or webhooks.
	s.runner = jobs.NewRunner(queue, jobs.Options{Worker: opts.Worker, Concurrency: opts.Workers, Lease: 30 * time.Second,
		Backoff: 2 * time.Second, MaxBackoff: 5 * time.Minute}, nil, log)
	s.runner.Handle(kindRun, s.runJob)
	s.runner.Handle(kindSchedule, s.scheduleJob)
	s.runner.Handle(kindPush, s.pushJob)
	s.runner.Handle(kindDelete, s.deleteJob)
	s.runner.Handle(kindPrune, func(ctx context.Context, _ jobs.Task) error {
		if err := s.store.prune(ctx, time.Now().Add(-s.opts.Keep)); err != nil && ctx.Err() == nil {
			s.log.Warn("prune replication executions", "err", err)
		}
		return jobs.Postpone(time.Now().Add(time.Hour))
	})
	return s
}

// Run works replication jobs on this replica until ctx ends.
func (s *Service) Run(ctx context.Context) {
	if err := s.queue.Schedule(ctx, jobs.Task{Kind: kindPrune, Key: "executions"}); err != nil && ctx.Err() == nil {
		s.log.Warn("schedule the replication history pruning", "err", err)
	}
	s.runner.Run(ctx)
}

// Drain runs every due replication job in this process (tests).
func (s *Service) Drain(ctx context.Context) error { return s.runner.Drain(ctx) }

// InvalidError reports a rule that cannot be stored as given.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// fallbackTag is the referrers tag schema's list of a subject's referrers.
var fallbackTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}$`)

// remoteHost parses a remote URL into its host[:port] and whether it is plain http.
func remoteHost(raw string) (host string, plain bool, err error) {
	s := raw
	switch {
	case strings.HasPrefix(s, "https://"):
		s = strings.TrimPrefix(s, "https://")
	case strings.HasPrefix(s, "http://"):
		s, plain = strings.TrimPrefix(s, "http://"), true
	case strings.Contains(s, "://"):
		return "", false, fmt.Errorf("remote.url %q: the scheme must be http or https", raw)
	}
	s = strings.TrimSuffix(s, "/")
	u, perr := url.Parse("https://" + s)
	if perr != nil || u.Host != s || u.Hostname() == "" || u.User != nil {
		return "", false, fmt.Errorf("remote.url %q: want a registry host[:port], optionally with http:// or https://", raw)
	}
	return s, plain, nil
}

func anyMatch(globs []string, name string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if events.GlobMatch(g, name) {
			return true
		}
	}
	return false
}

// tagSelected tells whether the rule copies tag t: it matches a tag glob and, with
// TagVersions, is a version in that range.
func (r *Rule) tagSelected(t string) bool {
	if !anyMatch(r.Tags, t) {
		return false
	}
	if r.TagVersions == "" {
		return true
	}
	c, err := semver.NewConstraint(r.TagVersions)
	if err != nil {
		return false // validate refused it; a rule stored before cannot match
	}
	v, err := semver.StrictNewVersion(strings.TrimPrefix(t, "v"))
	return err == nil && c.Check(v)
}

func (r *Rule) validate() error {
	if !nameRE.MatchString(r.Name) {
		return &InvalidError{"name: 1 to 64 characters of a-z, 0-9, '.', '_' and '-'"}
	}
	if r.Direction != Push && r.Direction != Pull {
		return &InvalidError{"direction must be push or pull"}
	}
	if _, _, err := remoteHost(r.Remote.URL); err != nil {
		return &InvalidError{err.Error()}
	}
	if len(r.Repositories) == 0 {
		return &InvalidError{"repositories: at least one repository glob (team/**, team/app)"}
	}
	for _, g := range append(append(append([]string{}, r.Repositories...), r.Tags...), r.ArtifactTypes...) {
		if !events.ValidGlob(g) {
			return &InvalidError{fmt.Sprintf("glob %q is not valid", g)}
		}
	}
	if r.Tags == nil {
		r.Tags = []string{}
	}
	if r.Platform != "" {
		if _, err := cric.ParsePlatform(r.Platform); err != nil {
			return &InvalidError{fmt.Sprintf("platform %q: want os/arch[/variant]", r.Platform)}
		}
	}
	if r.TagVersions != "" {
		if _, err := semver.NewConstraint(r.TagVersions); err != nil {
			return &InvalidError{fmt.Sprintf("tagVersions %q: %v", r.TagVersions, err)}
		}
	}
	if p := r.DestinationPrefix; p != "" && (!strings.HasSuffix(p, "/") || strings.HasPrefix(p, "/") || strings.Contains(p, "//")) {
		return &InvalidError{"destinationPrefix must be a path ending in / (mirror/)"}
	}
	if r.Schedule < 0 || (r.Schedule > 0 && r.Schedule < Duration(time.Second)) {
		return &InvalidError{"schedule must be at least 1s (or 0: by hand)"}
	}
	if r.Cron != "" {
		if r.Schedule != 0 {
			return &InvalidError{"give schedule (an interval) or cron, not both"}
		}
		c, err := parseCron(r.Cron)
		if err != nil {
			return &InvalidError{err.Error()}
		}
		if c.next(time.Now()).IsZero() {
			return &InvalidError{fmt.Sprintf("cron %q never runs", r.Cron)}
		}
	}
	if r.OnPush && r.Direction != Push {
		return &InvalidError{"onPush is for push rules (a pull rule cannot see the remote's pushes; give it a schedule)"}
	}
	if r.BandwidthLimit < 0 || (r.BandwidthLimit > 0 && r.BandwidthLimit < 64<<10) {
		return &InvalidError{"bandwidthLimit must be at least 64 KiB/s (or 0: unlimited)"}
	}
	if r.PropagateDeletes && r.Direction != Push {
		return &InvalidError{"propagateDeletes is for push rules"}
	}
	return nil
}

// Create stores a rule (its password sealed) and schedules it.
func (s *Service) Create(ctx context.Context, r Rule) (Rule, error) {
	if err := r.validate(); err != nil {
		return r, err
	}
	sealed := ""
	if r.Remote.Password != "" {
		sealed = s.sealer.Seal(r.Remote.Password)
	}
	out, err := s.store.create(ctx, r, sealed)
	if err != nil {
		return out, err
	}
	if err := s.schedule(ctx, out); err != nil {
		return out, err
	}
	return out, nil
}

func (s *Service) schedule(ctx context.Context, r Rule) error {
	next := nextRun(r, time.Now())
	if next.IsZero() || !r.Enabled {
		return nil
	}
	return s.queue.Schedule(ctx, jobs.Task{Kind: kindSchedule, Key: strconv.FormatInt(r.ID, 10), Due: next})
}

// nextRun is when a scheduled rule runs next after t (zero: not scheduled).
func nextRun(r Rule, t time.Time) time.Time {
	if r.Cron != "" {
		if c, err := parseCron(r.Cron); err == nil {
			return c.next(t)
		}
		return time.Time{}
	}
	if r.Schedule > 0 {
		return t.Add(time.Duration(r.Schedule))
	}
	return time.Time{}
}

// Rule returns one rule (never its password).
func (s *Service) Rule(ctx context.Context, id int64) (Rule, error) {
	r, _, err := s.store.rule(ctx, readRow{s.db}, id)
	return r, err
}

// Rules lists every rule.
func (s *Service) Rules(ctx context.Context) ([]Rule, error) { return s.store.Rules(ctx) }

// SetEnabled turns a rule on or off.
func (s *Service) SetEnabled(ctx context.Context, id int64, on bool) (Rule, error) {
	r, err := s.Rule(ctx, id)
	if err != nil {
		return r, err
	}
	r.Enabled = on
	if err := s.store.setEnabled(ctx, r); err != nil {
		return r, err
	}
	return r, s.schedule(ctx, r)
}

// Delete removes a rule and its history; its queued runs end when they see it gone.
func (s *Service) Delete(ctx context.Context, id int64) error { return s.store.delete(ctx, id) }

// Start queues a manual run of the rule.
func (s *Service) Start(ctx context.Context, id int64) error {
	if _, err := s.Rule(ctx, id); err != nil {
		return err
	}
	return s.queue.Enqueue(ctx, jobs.Task{Kind: kindRun, Key: strconv.FormatInt(id, 10), MaxAttempts: 5})
}

// Executions lists a rule's executions, newest first.
func (s *Service) Executions(ctx context.Context, id int64, n int) ([]Execution, error) {
	return s.store.Executions(ctx, id, n)
}

// Execution returns one execution with its per-artifact results.
func (s *Service) Execution(ctx context.Context, id int64) (Execution, error) {
	return s.store.Execution(ctx, id)
}

// Consume is the events consumer: a push matching an enabled onPush rule queues its
// replication, a delete matching a propagateDeletes rule its repetition at the remote,
// in the dispatcher's transaction.
func (s *Service) Consume(ctx context.Context, tx *sql.Tx, e events.Event) error {
	if e.Type != events.ArtifactPushed && e.Type != events.ArtifactDeleted && e.Type != events.TagDeleted {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, spec, password FROM replication_rules`)
	if err != nil {
		return err
	}
	rules, err := collectRules(rows)
	if err != nil {
		return err
	}
	for _, r := range rules {
		kind, refs := triggered(r, e)
		for _, ref := range refs {
			p, _ := json.Marshal(pushTask{Rule: r.ID, Repository: e.Repository, Ref: ref})
			if err := jobs.EnqueueTx(ctx, tx, jobs.Task{Kind: kind, Key: fmt.Sprintf("%d %s%s", r.ID, e.Repository, ref), Payload: p}); err != nil {
				return err
			}
		}
	}
	return nil
}

// triggered is the work an event makes for a rule: the job kind and the references
// (":tag" or "@digest") to copy or delete. A push copies its tags the rule selects (a
// signature or SBOM pushed by digest: its subject's graph, with it); with
// propagateDeletes, a deleted tag the rule selects, or a manifest deleted by digest, is
// deleted at the remote.
func triggered(r Rule, e events.Event) (string, []string) {
	if !r.Enabled || r.Direction != Push || !anyMatch(r.Repositories, e.Repository) {
		return "", nil
	}
	var refs []string
	tagged := func() {
		for _, t := range e.Tags {
			if r.tagSelected(t) {
				refs = append(refs, ":"+t)
			}
		}
	}
	switch {
	case e.Type == events.ArtifactPushed && r.OnPush:
		switch {
		case len(e.Tags) > 0:
			tagged()
		case e.Subject != "":
			refs = append(refs, "@"+e.Subject)
		default:
			refs = append(refs, "@"+e.Digest)
		}
		return kindPush, refs
	case e.Type == events.TagDeleted && r.PropagateDeletes:
		tagged()
		return kindDelete, refs
	case e.Type == events.ArtifactDeleted && r.PropagateDeletes:
		return kindDelete, []string{"@" + e.Digest}
	}
	return "", nil
}

// deleteJob repeats a delete at the rule's remote; already gone there counts as done.
func (s *Service) deleteJob(ctx context.Context, t jobs.Task) error {
	p, rp, sealed, err := s.taskRule(ctx, t)
	if err != nil || rp == nil {
		return err
	}
	r := *rp
	if !r.Enabled || !r.PropagateDeletes {
		return nil
	}
	password := ""
	if sealed != "" {
		if password, err = s.sealer.Open(sealed); err != nil {
			return jobs.Permanent(err)
		}
	}
	c, host, err := s.client(r, password, nil)
	if err != nil {
		return err
	}
	id, err := s.store.startExecution(ctx, r.ID, "delete")
	if err != nil {
		return err
	}
	target := host + "/" + r.DestinationPrefix + p.Repository + p.Ref
	it := Item{Source: s.opts.Local + "/" + p.Repository + p.Ref, Destination: target, State: Succeeded, At: time.Now().UTC()}
	if strings.HasPrefix(p.Ref, "@") {
		it.Digest = p.Ref[1:]
	}
	ex := Execution{ID: id, Rule: r.ID, Cause: "delete", State: Succeeded, Copied: 1}
	if _, derr := c.Delete(ctx, target, false); derr != nil && !strings.Contains(derr.Error(), "NOT_FOUND") && !strings.Contains(derr.Error(), "UNKNOWN") {
		it.State, it.Error = Failed, derr.Error()
		ex.State, ex.Copied, ex.Failed, ex.Error = Failed, 0, 1, derr.Error()
	}
	if err := s.store.addItem(ctx, id, it); err != nil {
		s.log.Warn("record replication item", "err", err)
	}
	if err := s.store.finishExecution(context.WithoutCancel(ctx), ex); err != nil {
		s.log.Warn("record replication execution", "err", err)
	}
	if ex.State == Failed {
		return fmt.Errorf("replication %s: delete %s: %s", r.Name, target, ex.Error)
	}
	return nil
}

type pushTask struct {
	Rule       int64  `json:"rule"`
	Repository string `json:"repository"`
	Ref        string `json:"ref"` // ":tag" or "@digest"
}

// taskRule reads a push or delete task and its rule; a nil rule was deleted since.
func (s *Service) taskRule(ctx context.Context, t jobs.Task) (pushTask, *Rule, string, error) {
	var p pushTask
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		return p, nil, "", jobs.Permanent(err)
	}
	r, sealed, err := s.store.rule(ctx, readRow{s.db}, p.Rule)
	if errors.Is(err, ErrNotFound) {
		return p, nil, "", nil
	}
	if err != nil {
		return p, nil, "", err
	}
	return p, &r, sealed, nil
}

func (s *Service) pushJob(ctx context.Context, t jobs.Task) error {
	p, rp, sealed, err := s.taskRule(ctx, t)
	if err != nil || rp == nil {
		return err
	}
	r := *rp
	if !r.Enabled {
		return nil
	}
	return s.execute(ctx, r, sealed, "event", []artifact{{repo: p.Repository, ref: p.Ref}})
}

func (s *Service) runJob(ctx context.Context, t jobs.Task) error {
	id, err := strconv.ParseInt(t.Key, 10, 64)
	if err != nil {
		return jobs.Permanent(err)
	}
	r, sealed, err := s.store.rule(ctx, readRow{s.db}, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.execute(ctx, r, sealed, "manual", nil)
}

// scheduleJob runs a rule and comes back after its schedule; a failed run is recorded
// and the next one tries again.
func (s *Service) scheduleJob(ctx context.Context, t jobs.Task) error {
	id, err := strconv.ParseInt(t.Key, 10, 64)
	if err != nil {
		return jobs.Permanent(err)
	}
	r, sealed, err := s.store.rule(ctx, readRow{s.db}, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !r.Enabled || nextRun(r, time.Now()).IsZero() {
		return nil
	}
	if err := s.execute(ctx, r, sealed, "schedule", nil); err != nil && ctx.Err() == nil {
		s.log.Warn("scheduled replication incomplete", "rule", r.Name, "err", err)
	}
	return jobs.Postpone(nextRun(r, time.Now()))
}

type artifact struct{ repo, ref string }

// keychain answers credentials per registry host.
type keychain map[string]authn.Authenticator

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := k[r.RegistryStr()]; ok {
		return a, nil
	}
	return authn.Anonymous, nil
}

// client returns a cric client for the rule, with a local token for localRepos (if
// any). One client serves a batch of artifacts: it remembers which destination
// repository received each blob and mounts it into the next instead of sending it again.
func (s *Service) client(r Rule, password string, localRepos []string) (*cric.Client, string, error) {
	return s.limitedClient(r, password, localRepos, nil)
}

// limitedClient is client with the remote's traffic paced by l (nil: unlimited).
func (s *Service) limitedClient(r Rule, password string, localRepos []string, l *limiter) (*cric.Client, string, error) {
	host, plain, err := remoteHost(r.Remote.URL)
	if err != nil {
		return nil, "", err
	}
	kc := keychain{}
	if r.Remote.Username != "" {
		kc[host] = authn.FromConfig(authn.AuthConfig{Username: r.Remote.Username, Password: password})
	}
	if len(localRepos) > 0 && s.opts.LocalToken != nil {
		actions := []string{"pull"}
		if r.Direction == Pull {
			actions = append(actions, "push")
		}
		tok, err := s.opts.LocalToken(r.CreatedBy, localRepos, actions...)
		if err != nil {
			return nil, "", fmt.Errorf("token for this registry: %w", err)
		}
		if tok != "" {
			kc[s.opts.Local] = authn.FromConfig(authn.AuthConfig{RegistryToken: tok})
		}
	}
	o := cric.Options{Quiet: true, Progress: "none", Stdout: io.Discard, Stderr: io.Discard, Keychain: kc, Retries: 3,
		Insecure: []string{s.opts.Local}}
	if r.Remote.Insecure {
		o.Insecure = append(o.Insecure, host)
	}
	if plain {
		o.PlainHTTP = []string{host}
	}
	if l != nil {
		o.WrapTransport = func(next http.RoundTripper) http.RoundTripper { return &limitTransport{next: next, host: host, l: l} }
	}
	c, err := cric.New(o)
	return c, host, err
}

// list finds the rule's artifacts: local repositories and tags for push, the remote's
// for pull (its catalog unless every repository is named literally).
func (s *Service) list(ctx context.Context, r Rule, password string) ([]artifact, error) {
	var out []artifact
	if r.Direction == Push {
		for last := ""; ; {
			repos, err := s.meta.Repositories(ctx, last, 500)
			if err != nil {
				return nil, err
			}
			for _, repo := range repos {
				if !anyMatch(r.Repositories, repo) {
					continue
				}
				for tl := ""; ; {
					tags, err := s.meta.Tags(ctx, repo, tl, 1000)
					if err != nil {
						return nil, err
					}
					for _, t := range tags {
						if r.tagSelected(t) {
							out = append(out, artifact{repo: repo, ref: ":" + t})
						}
					}
					if len(tags) < 1000 {
						break
					}
					tl = tags[len(tags)-1]
				}
			}
			if len(repos) < 500 {
				return out, nil
			}
			last = repos[len(repos)-1]
		}
	}
	c, host, err := s.client(r, password, nil)
	if err != nil {
		return nil, err
	}
	var repos []string
	literal := true
	for _, g := range r.Repositories {
		if strings.ContainsAny(g, "*?[") {
			literal = false
		}
	}
	if literal {
		repos = r.Repositories
	} else {
		cat, err := c.Catalog(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("catalog of %s: %w", host, err)
		}
		for _, repo := range cat.Repositories {
			if anyMatch(r.Repositories, repo) {
				repos = append(repos, repo)
			}
		}
	}
	for _, repo := range repos {
		tl, err := c.Tags(ctx, host+"/"+repo)
		if err != nil {
			return nil, fmt.Errorf("tags of %s/%s: %w", host, repo, err)
		}
		for _, t := range tl.Tags {
			if r.tagSelected(t) && !fallbackTag.MatchString(t) { // tag-schema referrer lists travel with their subject
				out = append(out, artifact{repo: repo, ref: ":" + t})
			}
		}
	}
	return out, nil
}

// execute runs the rule over the artifacts (nil: everything it selects) as one
// execution, recording each artifact's result. It returns an error when any failed, so
// the job is retried; a retry sends only what the destination still lacks.
func (s *Service) execute(ctx context.Context, r Rule, sealed, cause string, only []artifact) error {
	password := ""
	if sealed != "" {
		var err error
		if password, err = s.sealer.Open(sealed); err != nil {
			return jobs.Permanent(err)
		}
	}
	id, err := s.store.startExecution(ctx, r.ID, cause)
	if err != nil {
		return err
	}
	ex := Execution{ID: id, Rule: r.ID, Cause: cause, State: Succeeded}
	arts := only
	if arts == nil {
		if arts, err = s.list(ctx, r, password); err != nil {
			ex.State, ex.Error = Failed, err.Error()
		}
	}
	var c *cric.Client
	var host string
	var lim *limiter // one bucket for the whole run
	if r.BandwidthLimit > 0 {
		lim = newLimiter(r.BandwidthLimit)
	}
	end := 0
	for i, a := range arts {
		if ctx.Err() != nil {
			break
		}
		if i == end { // a client (and token) per batch of artifacts
			end = batchEnd(arts, i)
			if c, host, err = s.limitedClient(r, password, s.localRepos(r, arts[i:end]), lim); err != nil {
				ex.State, ex.Error = Failed, err.Error()
				break
			}
		}
		if len(r.ArtifactTypes) > 0 {
			typ, err := s.artifactType(ctx, c, host, r, a)
			if err == nil && !anyMatch(r.ArtifactTypes, typ) {
				continue // another kind of artifact: not this rule's
			}
			// An error is the copy's to report (not found, the remote down).
		}
		it := s.copyOne(ctx, c, host, r, a)
		if it.State == skipped {
			continue
		}
		if err := s.store.addItem(ctx, id, it); err != nil {
			s.log.Warn("record replication item", "err", err)
		}
		if it.State == Succeeded {
			ex.Copied++
			ex.Bytes += it.Bytes
		} else {
			ex.Failed++
			if ex.Error == "" {
				ex.Error = it.Error
			}
		}
	}
	if ctx.Err() != nil && ex.Error == "" {
		ex.Error = "stopped: " + ctx.Err().Error()
	}
	if ex.Failed > 0 || ex.Error != "" {
		ex.State = Failed
	}
	fctx := context.WithoutCancel(ctx)
	if err := s.store.finishExecution(fctx, ex); err != nil {
		s.log.Warn("record replication execution", "err", err)
	}
	s.metrics.executions.WithLabelValues(ex.State).Inc()
	if s.pub != nil {
		typ := events.ReplicationCompleted
		if ex.State == Failed {
			typ = events.ReplicationFailed
		}
		e := events.Event{Type: typ, Data: map[string]any{"rule": r.Name, "execution": id, "cause": cause, "copied": ex.Copied, "failed": ex.Failed, "error": ex.Error}}
		if len(only) == 1 {
			e.Repository = only[0].repo
		}
		if err := s.pub.Publish(fctx, e); err != nil {
			s.log.Warn("publish replication event", "err", err)
		}
	}
	if ex.State == Failed {
		return fmt.Errorf("replication %s (execution %d): %d of %d artifacts failed: %s", r.Name, id, ex.Failed, len(arts), ex.Error)
	}
	return nil
}

// batchRepos is how many local repositories one client serves: its token names each
// of them, and within it a blob sent to one destination repository is mounted into the
// others instead of sent again.
const batchRepos = 100

// batchEnd is the end of the batch starting at arts[i]: as many artifacts as span at
// most batchRepos local repositories (listings come grouped by repository).
func batchEnd(arts []artifact, i int) int {
	seen := map[string]bool{}
	for j := i; j < len(arts); j++ {
		if !seen[arts[j].repo] && len(seen) == batchRepos {
			return j
		}
		seen[arts[j].repo] = true
	}
	return len(arts)
}

// localRepos lists the distinct local repositories of arts.
func (s *Service) localRepos(r Rule, arts []artifact) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range arts {
		repo := a.repo
		if r.Direction == Pull {
			repo = r.DestinationPrefix + a.repo
		}
		if !seen[repo] {
			seen[repo] = true
			out = append(out, repo)
		}
	}
	return out
}

// artifactType is what an artifact is, as ArtifactTypes matches it: read from the local
// manifest for push rules, from the remote for pull rules.
func (s *Service) artifactType(ctx context.Context, c *cric.Client, host string, r Rule, a artifact) (string, error) {
	if r.Direction == Pull {
		in, err := c.Inspect(ctx, host+"/"+a.repo+a.ref, nil)
		if err != nil {
			return "", err
		}
		switch {
		case in.ArtifactType != "":
			return in.ArtifactType, nil
		case in.Config != nil && in.Config.MediaType != "":
			return in.Config.MediaType, nil
		}
		return in.MediaType, nil
	}
	ref, byDigest := strings.TrimPrefix(a.ref, ":"), strings.HasPrefix(a.ref, "@")
	if byDigest {
		ref = strings.TrimPrefix(a.ref, "@")
	}
	m, err := s.meta.GetManifest(ctx, a.repo, ref, byDigest, true)
	if err != nil {
		return "", err
	}
	return manifestType(m.MediaType, m.Payload), nil
}

// manifestType is a manifest's artifactType, its config media type, or (an index
// without one) its media type.
func manifestType(mediaType string, payload []byte) string {
	var doc struct {
		ArtifactType string `json:"artifactType"`
		Config       *struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
	}
	_ = json.Unmarshal(payload, &doc)
	switch {
	case doc.ArtifactType != "":
		return doc.ArtifactType
	case doc.Config != nil && doc.Config.MediaType != "":
		return doc.Config.MediaType
	}
	return mediaType
}

// skipped is the state of an item the rule turned out not to select (never stored).
const skipped = "skipped"

// copyOne copies one artifact's graph with its referrers.
func (s *Service) copyOne(ctx context.Context, c *cric.Client, host string, r Rule, a artifact) Item {
	dstRepo := r.DestinationPrefix + a.repo
	it := Item{At: time.Now().UTC(), State: Failed}
	if r.Direction == Push {
		it.Source, it.Destination = s.opts.Local+"/"+a.repo+a.ref, host+"/"+dstRepo+a.ref
	} else {
		it.Source, it.Destination = host+"/"+a.repo+a.ref, s.opts.Local+"/"+dstRepo+a.ref
	}
	opts := cric.CopyOptions{Referrers: r.referrers()}
	if r.Platform != "" {
		opts.Platform, _ = cric.ParsePlatform(r.Platform) // validated at create
	}
	res, err := c.Copy(ctx, it.Source, it.Destination, opts)
	if errors.Is(err, cric.ErrNoPlatform) {
		it.State = skipped // an image without the rule's platform: not this rule's
		return it
	}
	if err != nil {
		it.Error = err.Error()
		s.metrics.artifacts.WithLabelValues("failed").Inc()
		return it
	}
	it.State, it.Digest, it.Bytes, it.Referrers = Succeeded, res.Digest, res.Size, res.Referrers
	s.metrics.artifacts.WithLabelValues("copied").Inc()
	s.metrics.bytes.Add(float64(res.Size))
	return it
}

type metrics struct {
	executions *prometheus.CounterVec
	artifacts  *prometheus.CounterVec
	bytes      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_replication_executions_total",
			Help: "Replication executions by outcome (succeeded, failed)."}, []string{"result"}),
		artifacts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_replication_artifacts_total",
			Help: "Artifacts (with their graph and referrers) replicated, by outcome (copied, failed)."}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_replication_graph_bytes_total",
			Help: "Bytes of the artifact graphs replicated (manifests and blobs, each once per graph; blobs the destination had are not sent again)."}),
	}
	if reg != nil {
		reg.MustRegister(m.executions, m.artifacts, m.bytes)
	}
	return m
}
