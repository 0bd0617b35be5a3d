package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
)

// Options configure the service; zero values take the defaults.
type Options struct {
	// Timeout bounds one delivery request (default 10s).
	Timeout time.Duration
	// RetryFor is how long a failing delivery is retried before it is marked failed and
	// its lane moves on (default 24h).
	RetryFor time.Duration
	// Backoff is the wait after a first failed attempt, doubled per attempt up to
	// MaxBackoff (defaults 2s and 10m).
	Backoff, MaxBackoff time.Duration
	// Keep is how long events and finished deliveries stay visible (default 7 days).
	Keep time.Duration
	// Workers is how many lanes this process sends at once (default 4).
	Workers int
	// AllowPrivateTargets lets project webhooks reach loopback, private and link-local
	// addresses. System-wide webhooks (created by system administrators) always may.
	AllowPrivateTargets bool
	// Source is the CloudEvents source attribute (default "berth").
	Source string
	// Host prefixes Harbor payloads' resource URLs (the registry's address).
	Host string
	// Mirrored reports projects a mirror serves: their cache fills are not events.
	Mirrored func(project string) bool
	// RepoType reports "public" or "private" for a project (Harbor's repo_type).
	RepoType func(ctx context.Context, project string) string
	// Worker names this process among replicas (job leases).
	Worker string
	// now is the clock (tests).
	now func() time.Time
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Timeout, 10*time.Second)
	def(&o.RetryFor, 24*time.Hour)
	def(&o.Backoff, 2*time.Second)
	def(&o.MaxBackoff, 10*time.Minute)
	def(&o.Keep, 7*24*time.Hour)
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Source == "" {
		o.Source = "berth"
	}
	if o.Mirrored == nil {
		o.Mirrored = func(string) bool { return false }
	}
	if o.now == nil {
		o.now = time.Now
	}
}

// Service records events and delivers webhooks. It is safe for concurrent use.
type Service struct {
	store   *Store
	db      *meta.DB
	queue   *jobs.Store
	sealer  *Sealer
	opts    Options
	metrics *Metrics
	log     *slog.Logger
	runner  *jobs.Runner
	sender  *sender

	pruneMu   sync.Mutex
	lastPrune time.Time

	consumersMu sync.Mutex
	consumers   []Consumer
}

// Consumer sees every event (pings aside) once, in the dispatcher's transaction and in
// commit order per repository: what it writes with tx (jobs it queues) commits with the
// fan-out, so an event is never lost to it nor handed to it twice. It must be quick; an
// error leaves the batch for the next round.
type Consumer func(ctx context.Context, tx *sql.Tx, e Event) error

// Consume registers c (package replication's on-event trigger).
func (s *Service) Consume(c Consumer) {
	s.consumersMu.Lock()
	defer s.consumersMu.Unlock()
	s.consumers = append(s.consumers, c)
}

func (s *Service) consumerList() []Consumer {
	s.consumersMu.Lock()
	defer s.consumersMu.Unlock()
	return slices.Clone(s.consumers)
}

var _ Publisher = (*Service)(nil)

// New returns the service. metrics may be nil.
func New(db *meta.DB, sealer *Sealer, opts Options, metrics *Metrics, log *slog.Logger) *Service {
	opts.defaults()
	queue := jobs.NewStore(db)
	s := &Service{store: NewStore(db), db: db, queue: queue, sealer: sealer, opts: opts, metrics: metrics, log: log,
		sender: newSender(opts.Timeout, opts.AllowPrivateTargets)}
	// Webhook lanes run on their own workers over the shared job queue: a slow receiver
	// never holds up garbage collection. A short lease hands a crashed replica's lanes
	// to another within seconds.
	s.runner = jobs.NewRunner(queue, jobs.Options{Worker: opts.Worker, Concurrency: opts.Workers + 1, Poll: 500 * time.Millisecond,
		Lease: 10 * time.Second}, nil, log)
	s.runner.Handle(dispatchKind, s.runDispatch)
	s.runner.Handle(laneKind, s.runLane)
	return s
}

// Store returns the events store (listings).
func (s *Service) Store() *Store { return s.store }

// Hook is meta's change hook: it writes each change to a repository as an event in the
// change's transaction.
func (s *Service) Hook(ctx context.Context, tx *sql.Tx, c meta.Change) error {
	p := project(c.Repository)
	if s.opts.Mirrored(p) {
		return nil
	}
	e := Event{Project: p, Repository: c.Repository, Digest: c.Digest, Tags: c.Tags, Actor: c.Actor}
	switch c.Kind {
	case meta.ManifestPut:
		e.Type, e.MediaType, e.ArtifactType, e.Subject, e.Size = ArtifactPushed, c.MediaType, c.ArtifactType, c.Subject, c.Size
	case meta.ManifestDeleted:
		e.Type = ArtifactDeleted
	case meta.TagDeleted:
		e.Type = TagDeleted
	default:
		return nil
	}
	return writeTx(ctx, tx, &e)
}

// Publish writes e in its own transaction.
func (s *Service) Publish(ctx context.Context, e Event) error {
	if e.Type == "" {
		return errors.New("events: an event needs a type")
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error { return writeTx(ctx, tx, &e) })
}

// PublishTx writes e inside the caller's transaction.
func (s *Service) PublishTx(ctx context.Context, tx *sql.Tx, e Event) error {
	if e.Type == "" {
		return errors.New("events: an event needs a type")
	}
	return writeTx(ctx, tx, &e)
}

// Run dispatches and delivers on this replica until ctx ends.
func (s *Service) Run(ctx context.Context) {
	if err := s.queue.Schedule(ctx, jobs.Task{Kind: dispatchKind, Key: "outbox"}); err != nil && ctx.Err() == nil {
		s.log.Warn("schedule the events dispatcher", "err", err)
	}
	s.runner.Run(ctx)
}

// Drain dispatches and delivers everything due now in this process (tests, tools).
func (s *Service) Drain(ctx context.Context) error {
	if _, _, err := s.store.dispatch(ctx, 1000, s.consumerList()); err != nil {
		return err
	}
	return s.runner.Drain(ctx, laneKind)
}

// dispatchInterval is how often the outbox is checked for new events; dispatchRun how
// long one run of the dispatcher task keeps checking before it yields (its lease is
// renewed meanwhile, so another replica takes over within a lease if this one dies).
const (
	dispatchInterval = 250 * time.Millisecond
	dispatchRun      = time.Minute
)

// runDispatch fans new events out as they come, prunes old ones now and then, and hands
// the task back after dispatchRun. The outbox is checked with a read, so an idle
// registry takes no write lock for it. It never fails: a database outage is logged and
// tried again.
func (s *Service) runDispatch(ctx context.Context, _ jobs.Task) error {
	end := s.opts.now().Add(dispatchRun)
	for ctx.Err() == nil && s.opts.now().Before(end) {
		if err := s.dispatchPending(ctx); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("dispatch events", "err", err)
			}
			return jobs.Postpone(s.opts.now().Add(5 * time.Second))
		}
		s.pruneMu.Lock()
		due := s.opts.now().Sub(s.lastPrune) > 10*time.Minute
		if due {
			s.lastPrune = s.opts.now()
		}
		s.pruneMu.Unlock()
		if due {
			if err := s.store.prune(ctx, s.opts.now().Add(-s.opts.Keep)); err != nil && ctx.Err() == nil {
				s.log.Warn("prune events", "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(dispatchInterval):
		}
	}
	return jobs.Postpone(s.opts.now())
}

// dispatchPending fans out every undispatched event, in batches.
func (s *Service) dispatchPending(ctx context.Context) error {
	for {
		pending, err := s.store.undispatched(ctx)
		if err != nil || !pending {
			return err
		}
		n, d, err := s.store.dispatch(ctx, 500, s.consumerList())
		if err != nil {
			return err
		}
		s.metrics.dispatched(n, d)
		if d > 0 {
			s.runner.Wake() // the lanes just queued run now, not at the next poll
		}
		if n < 500 {
			return nil
		}
	}
}

// laneBatch bounds the deliveries one run of a lane sends before yielding its worker.
const laneBatch = 100

// runLane sends a lane's pending deliveries in order. A failure schedules the retry of
// the head delivery and holds the rest behind it; past the retry window the head is
// failed and the lane goes on.
func (s *Service) runLane(ctx context.Context, t jobs.Task) error {
	subID, lane, err := parseLaneKey(t.Key)
	if err != nil {
		return jobs.Permanent(err)
	}
	sub, err := s.store.Subscription(ctx, subID)
	if errors.Is(err, ErrNotFound) {
		return nil // deleted with its deliveries
	}
	if err != nil {
		return err
	}
	if !sub.Enabled {
		if err := s.store.skipLane(ctx, subID, lane); err != nil {
			return err
		}
		return nil
	}
	sealed, err := s.store.sealedSecret(ctx, subID)
	if err != nil {
		return err
	}
	secret, secretErr := s.sealer.Open(sealed)
	for range laneBatch {
		h, ok, err := s.store.laneHead(ctx, subID, lane)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if now := s.opts.now(); h.NextAttempt.After(now) {
			return jobs.Postpone(h.NextAttempt)
		}
		var a Attempt
		var e Event
		if err := json.Unmarshal([]byte(h.payload), &e); err != nil {
			a = Attempt{At: s.opts.now(), Error: "stored event unreadable: " + err.Error()}
		} else if secretErr != nil {
			a = Attempt{At: s.opts.now(), Error: secretErr.Error()}
		} else {
			a = s.attempt(ctx, sub, secret, e)
		}
		if ctx.Err() != nil {
			// Stopping or lease lost: the outcome is unknown to the lane, which sends
			// again (at least once; the webhook-id lets the receiver drop the copy).
			return ctx.Err()
		}
		state, next := Pending, time.Time{}
		switch {
		case a.Status >= 200 && a.Status < 300:
			state = Delivered
		case a.At.Sub(h.CreatedAt) >= s.opts.RetryFor:
			state = Failed
		default:
			next = a.At.Add(backoff(s.opts.Backoff, s.opts.MaxBackoff, h.Attempts+1))
		}
		if err := s.store.record(ctx, h.ID, a, state, next); err != nil {
			return err
		}
		s.metrics.attempted(state, a, e.Time)
		if state == Pending {
			s.log.Info("webhook delivery failed; will retry", "subscription", sub.ID, "name", sub.Name, "delivery", h.ID,
				"status", a.Status, "err", a.Error, "retry_at", next.Format(time.RFC3339))
			return jobs.Postpone(next)
		}
		if state == Failed {
			s.log.Warn("webhook delivery given up after the retry window", "subscription", sub.ID, "name", sub.Name,
				"delivery", h.ID, "attempts", h.Attempts+1, "status", a.Status, "err", a.Error)
		}
	}
	return jobs.Postpone(s.opts.now()) // more queued: come back at once
}

// attempt sends one delivery of e to sub.
func (s *Service) attempt(ctx context.Context, sub Subscription, secret string, e Event) Attempt {
	repoType := ""
	if s.opts.RepoType != nil && e.Project != "" && sub.Format == FormatHarbor {
		repoType = s.opts.RepoType(ctx, e.Project)
	}
	body, err := encode(sub.Format, e, s.opts.Source, s.opts.Host, repoType)
	if err != nil {
		return Attempt{At: s.opts.now(), Error: "encode: " + err.Error()}
	}
	return s.sender.send(ctx, sub, secret, e.ID, body, s.opts.now)
}

// backoff is base·2^(attempt-1), capped, with ±10 % jitter.
func backoff(base, limit time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// validate checks a subscription's fields (creation and update).
func (s *Service) validate(sub *Subscription) error {
	if !nameRE.MatchString(sub.Name) {
		return &InvalidError{Msg: "name: 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"}
	}
	if err := s.checkURL(sub.URL, sub.Project != ""); err != nil {
		return err
	}
	if sub.Format == "" {
		sub.Format = FormatCloudEvents
	}
	if sub.Format != FormatCloudEvents && sub.Format != FormatHarbor {
		return &InvalidError{Msg: fmt.Sprintf("format %q: want %s or %s", sub.Format, FormatCloudEvents, FormatHarbor)}
	}
	if sub.Events == nil {
		sub.Events = []string{}
	}
	for _, e := range sub.Events {
		if !slices.Contains(Types, e) || e == Ping {
			return &InvalidError{Msg: fmt.Sprintf("event %q: want one of %s", e, strings.Join(Types[:len(Types)-1], ", "))}
		}
	}
	if sub.Repositories == nil {
		sub.Repositories = []string{}
	}
	for _, g := range sub.Repositories {
		if !ValidGlob(g) || strings.Contains(g, ",") {
			return &InvalidError{Msg: fmt.Sprintf("repository glob %q is not valid", g)}
		}
	}
	return nil
}

// checkURL validates a target; project webhooks may not name private addresses unless
// allowed (the dial-time guard enforces it for names that resolve there).
func (s *Service) checkURL(raw string, project bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || len(raw) > 2048:
		return &InvalidError{Msg: "url: not a valid URL of at most 2048 characters"}
	case u.Scheme != "http" && u.Scheme != "https":
		return &InvalidError{Msg: "url: the scheme must be http or https"}
	case u.Host == "" || u.Hostname() == "":
		return &InvalidError{Msg: "url: a host is required"}
	case u.User != nil:
		return &InvalidError{Msg: "url: credentials in the URL are not allowed (they would be shown to readers of the subscription); the signature authenticates Berth"}
	case u.Fragment != "":
		return &InvalidError{Msg: "url: a fragment is not allowed"}
	}
	if project && !s.opts.AllowPrivateTargets && literalPrivate(u.Hostname()) {
		return &InvalidError{Msg: "url: project webhooks may not target loopback, private or link-local addresses on this server (events.webhooks.allowPrivateTargets)"}
	}
	return nil
}

// Create stores a subscription and returns it with its secret (generated when empty):
// the only time the secret is shown.
func (s *Service) Create(ctx context.Context, sub Subscription) (Subscription, error) {
	if err := s.validate(&sub); err != nil {
		return sub, err
	}
	if sub.Secret == "" {
		sub.Secret = NewSecret()
	} else if err := checkSecret(sub.Secret); err != nil {
		return sub, err
	}
	secret := sub.Secret
	out, err := s.store.create(ctx, sub, s.sealer.Seal(secret))
	if err != nil {
		return out, err
	}
	out.Secret = secret
	return out, nil
}

// Patch is a change to a subscription; nil fields stay.
type Patch struct {
	URL          *string   `json:"url,omitempty"`
	Format       *string   `json:"format,omitempty"`
	Events       *[]string `json:"events,omitempty"`
	Repositories *[]string `json:"repositories,omitempty"`
	Enabled      *bool     `json:"enabled,omitempty"`
	// RotateSecret replaces the secret with a fresh one, returned in the answer.
	RotateSecret bool `json:"rotateSecret,omitempty"`
}

// Update applies p to subscription id and returns it (with the new secret when rotated).
func (s *Service) Update(ctx context.Context, id int64, p Patch) (Subscription, error) {
	sub, err := s.store.Subscription(ctx, id)
	if err != nil {
		return sub, err
	}
	if p.URL != nil {
		sub.URL = *p.URL
	}
	if p.Format != nil {
		sub.Format = *p.Format
	}
	if p.Events != nil {
		sub.Events = *p.Events
	}
	if p.Repositories != nil {
		sub.Repositories = *p.Repositories
	}
	if p.Enabled != nil {
		sub.Enabled = *p.Enabled
	}
	if err := s.validate(&sub); err != nil {
		return sub, err
	}
	sealed := ""
	if p.RotateSecret {
		sub.Secret = NewSecret()
		sealed = s.sealer.Seal(sub.Secret)
	}
	if err := s.store.update(ctx, sub, sealed); err != nil {
		return sub, err
	}
	out, err := s.store.Subscription(ctx, id)
	out.Secret = sub.Secret
	return out, err
}

// Delete removes a subscription and its delivery history.
func (s *Service) Delete(ctx context.Context, id int64) error { return s.store.Delete(ctx, id) }

// Replay sends the events of the given deliveries of subscription id again (nil: every
// failed one), as new deliveries; it returns their ids.
func (s *Service) Replay(ctx context.Context, id int64, deliveries []int64) ([]int64, error) {
	if _, err := s.store.Subscription(ctx, id); err != nil {
		return nil, err
	}
	out, err := s.store.replay(ctx, id, deliveries)
	if err == nil {
		s.runner.Wake()
	}
	return out, err
}

// Ping sends a ping event to subscription id alone and returns its delivery id.
func (s *Service) Ping(ctx context.Context, id int64, actor string) (int64, error) {
	sub, err := s.store.Subscription(ctx, id)
	if err != nil {
		return 0, err
	}
	var did int64
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		e := Event{Type: Ping, Project: sub.Project, Actor: actor, Data: map[string]any{"subscription": sub.Name}}
		if err := writeTx(ctx, tx, &e); err != nil {
			return err
		}
		now := s.opts.now().UnixMilli()
		if _, err := tx.ExecContext(ctx, `UPDATE event_outbox SET dispatched_at = $1 WHERE event_id = $2`, now, e.ID); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO webhook_deliveries (subscription_id, event_id, lane, state, next_at, created_at)
			VALUES ($1, $2, '', 'pending', $3, $3) RETURNING id`, id, e.ID, now).Scan(&did); err != nil {
			return err
		}
		return jobs.EnqueueTx(ctx, tx, jobs.Task{Kind: laneKind, Key: laneKey(id, "")})
	})
	if err == nil {
		s.runner.Wake()
	}
	return did, err
}

// Subscription returns one subscription (never its secret).
func (s *Service) Subscription(ctx context.Context, id int64) (Subscription, error) {
	return s.store.Subscription(ctx, id)
}

// Subscriptions lists a project's subscriptions ("" : the system-wide ones; all: every one).
func (s *Service) Subscriptions(ctx context.Context, project string, all bool) ([]Subscription, error) {
	return s.store.Subscriptions(ctx, project, all)
}

// Deliveries lists a subscription's deliveries, newest first.
func (s *Service) Deliveries(ctx context.Context, id int64, f DeliveryFilter) ([]Delivery, error) {
	return s.store.Deliveries(ctx, id, f)
}

// Delivery returns one delivery with its attempts.
func (s *Service) Delivery(ctx context.Context, id, delivery int64) (Delivery, error) {
	return s.store.Delivery(ctx, id, delivery)
}
