package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Handler runs one task. Returning nil ends it as done; an error retries it with backoff
// (see Permanent and Postpone for the other outcomes). ctx ends when the runner stops or
// the worker loses the task's lease.
type Handler func(ctx context.Context, t Task) error

// Options tune a Runner; zero values take the defaults.
type Options struct {
	// Worker names this process among replicas (lease holder, logs).
	Worker string
	// Concurrency is how many tasks run at once in this process (default 2).
	Concurrency int
	// Poll is how often the queue is checked for due tasks when idle (default 1s).
	Poll time.Duration
	// Lease is how long a claimed task is reserved for this worker before another may
	// take it; it is renewed every third of it while the handler runs (default 30s).
	Lease time.Duration
	// Backoff is the delay after a first failure, doubled per attempt up to MaxBackoff
	// (defaults 5s and 1h).
	Backoff, MaxBackoff time.Duration
	// KeepDone and KeepFailed are how long finished tasks stay visible (24h, 7 days).
	KeepDone, KeepFailed time.Duration
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Poll, time.Second)
	def(&o.Lease, 30*time.Second)
	def(&o.Backoff, 5*time.Second)
	def(&o.MaxBackoff, time.Hour)
	def(&o.KeepDone, 24*time.Hour)
	def(&o.KeepFailed, 7*24*time.Hour)
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.Worker == "" {
		o.Worker = fmt.Sprintf("worker-%08x", rand.Uint32())
	}
}

// Runner claims due tasks and runs their handlers. Every replica may run one; the
// database decides which takes which task.
type Runner struct {
	store    *Store
	opts     Options
	log      *slog.Logger
	metrics  *Metrics
	mu       sync.Mutex
	handlers map[string]Handler
	// wake cuts an idle wait short: work was queued in this process.
	wake chan struct{}
}

// NewRunner returns a runner over store; metrics may be nil.
func NewRunner(store *Store, opts Options, metrics *Metrics, log *slog.Logger) *Runner {
	opts.defaults()
	return &Runner{store: store, opts: opts, log: log, metrics: metrics, handlers: map[string]Handler{}, wake: make(chan struct{}, 1)}
}

// Wake tells the runner that this process just queued a task due now, so that it claims
// at once instead of at its next poll (other replicas still find it by polling).
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Handle registers the handler of a kind; only registered kinds are claimed.
func (r *Runner) Handle(kind string, h Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handlers[kind] = h
}

func (r *Runner) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ks := make([]string, 0, len(r.handlers))
	for k := range r.handlers {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (r *Runner) handler(kind string) Handler {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.handlers[kind]
}

// Run works the queue until ctx ends, then waits for the tasks in flight (whose ctx is
// cancelled too: a handler that stops early leaves its task to be retried).
//
// The loop owns every write but the handlers' own: outcomes of finished runs are
// recorded in the transaction of the next claim (Store.claimAfter), and each claim takes
// up to Concurrency tasks more than there are free slots, started as slots free up, so
// that a busy queue costs about one transaction per Concurrency tasks besides the
// handlers'. A task claimed a while ago has its lease renewed before it starts.
func (r *Runner) Run(ctx context.Context) {
	c := r.opts.Concurrency
	results := make(chan outcome, c) // at most c runs: sends never block
	running := 0
	var done []outcome
	var ahead []claimed // claimed, waiting for a slot
	defer func() {
		for ; running > 0; running-- {
			done = append(done, <-results)
		}
		// Tasks claimed ahead go back to the queue as they were, due at once.
		for _, a := range ahead {
			done = append(done, outcome{t: a.t, result: "postponed", at: time.Now()})
		}
		r.record(context.WithoutCancel(ctx), done)
	}()
	var since time.Time // when the oldest outcome in done arrived
	got := func(o outcome) {
		if len(done) == 0 {
			since = time.Now()
		}
		done, running = append(done, o), running-1
	}
	// collect takes the outcomes of ended runs; block waits for one (or ctx, or wait).
	collect := func(block bool, wait <-chan time.Time) {
		if block {
			select {
			case o := <-results:
				got(o)
			case <-ctx.Done():
				return
			case <-wait:
				return
			case <-r.wake:
				return
			}
		}
		for {
			select {
			case o := <-results:
				got(o)
			default:
				return
			}
		}
	}
	start := func(t Task) {
		running++
		go func() { results <- r.run(ctx, t) }()
	}
	// An ended run's task keeps its lease, no longer renewed, until its outcome is
	// recorded: outcomes wait for the next claim at most a sixth of the lease.
	flushAfter := r.opts.Lease / 6
	lastPrune := time.Time{}
	for ctx.Err() == nil {
		if time.Since(lastPrune) > 10*time.Minute {
			lastPrune = time.Now()
			if _, err := r.store.Prune(ctx, lastPrune.Add(-r.opts.KeepDone), lastPrune.Add(-r.opts.KeepFailed)); err != nil && ctx.Err() == nil {
				r.log.Warn("prune finished jobs", "err", err)
			}
		}
		collect(false, nil)
		for running < c && len(ahead) > 0 {
			a := ahead[0]
			ahead = ahead[1:]
			if r.fresh(ctx, a) {
				start(a.t)
			}
		}
		overdue := len(done) > 0 && time.Since(since) >= flushAfter
		if running == c && !overdue { // every slot busy: wait for one, not for the poll interval
			var wait <-chan time.Time
			if len(done) > 0 {
				wait = time.After(flushAfter - time.Since(since))
			}
			collect(true, wait)
			continue
		}
		want := 0
		if len(ahead) == 0 {
			want = c - running + c
		}
		tasks, err := r.store.claimAfter(ctx, r.opts.Worker, r.kinds(), want, r.opts.Lease, done)
		done = done[:0]
		r.logClaim(ctx, err)
		now := time.Now()
		for _, t := range tasks {
			if running < c {
				start(t)
			} else {
				ahead = append(ahead, claimed{t, now})
			}
		}
		if want == 0 {
			continue // outcomes recorded; the tasks claimed ahead come first
		}
		if len(tasks) == want {
			continue // maybe more are due
		}
		// Idle or nearly: wake at the poll interval, or when a run ends (its outcome
		// is recorded at once, and its slot may take the next task).
		wait := r.opts.Poll + time.Duration(rand.Int64N(int64(r.opts.Poll)/4+1)) // jitter spreads replicas
		if len(ahead) == 0 {
			collect(true, time.After(wait))
		}
	}
}

// claimed is a task claimed ahead of a free slot.
type claimed struct {
	t  Task
	at time.Time
}

// fresh reports whether a task claimed ahead may start: its lease is renewed first when
// a third of it has passed since the claim, and a task whose lease was lost is dropped.
func (r *Runner) fresh(ctx context.Context, a claimed) bool {
	if time.Since(a.at) < r.opts.Lease/3 {
		return true
	}
	err := r.store.renew(ctx, a.t, r.opts.Worker, r.opts.Lease)
	if err != nil && ctx.Err() == nil {
		r.log.Warn("renew job lease before its run", "kind", a.t.Kind, "key", a.t.Key, "err", err)
	}
	return err == nil
}

func (r *Runner) logClaim(ctx context.Context, err error) {
	var lost *lostError
	switch {
	case errors.As(err, &lost):
		r.log.Warn("job outcome not recorded: lease lost, another worker took the task", "err", lost.err)
	case err != nil && ctx.Err() == nil:
		r.log.Warn("claim jobs", "err", err)
	}
}

// record writes outcomes that no claim will carry (shutdown), with a short detached
// deadline.
func (r *Runner) record(ctx context.Context, done []outcome) {
	if len(done) == 0 {
		return
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := r.store.claimAfter(octx, r.opts.Worker, nil, 0, r.opts.Lease, done)
	r.logClaim(octx, err)
}

// Drain runs due tasks of the given kinds (default: every registered kind) in this
// process until none is due or running anywhere, or ctx ends. Tasks other replicas hold
// are waited for. It is how `berth gc run` and tests work the queue to the end.
func (r *Runner) Drain(ctx context.Context, kinds ...string) error {
	if len(kinds) == 0 {
		kinds = r.kinds()
	}
	var done []outcome
	for {
		tasks, err := r.store.claimAfter(ctx, r.opts.Worker, kinds, r.opts.Concurrency, r.opts.Lease, done)
		done = done[:0]
		var lost *lostError
		if errors.As(err, &lost) {
			r.logClaim(ctx, err)
		} else if err != nil {
			return err
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, t := range tasks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := r.run(ctx, t)
				mu.Lock()
				done = append(done, o)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if len(tasks) > 0 {
			continue
		}
		n, err := r.store.Pending(ctx, kinds, time.Now())
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// run runs one claimed task with its lease renewed and returns its outcome, for the
// caller to record.
func (r *Runner) run(ctx context.Context, t Task) outcome {
	h := r.handler(t.Kind)
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		tick := time.NewTicker(r.opts.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-tick.C:
				if err := r.store.renew(hctx, t, r.opts.Worker, r.opts.Lease); errors.Is(err, errLeaseLost) {
					r.log.Warn("job lease lost; another worker took the task", "kind", t.Kind, "key", t.Key)
					cancel()
					return
				} else if err != nil && hctx.Err() == nil {
					r.log.Warn("renew job lease", "kind", t.Kind, "key", t.Key, "err", err)
				}
			}
		}
	}()
	start := time.Now()
	err := safeCall(hctx, h, t)
	cancel()
	<-renewed
	r.metrics.observe(t.Kind, time.Since(start))
	var postpone *postponeError
	o := outcome{t: t, result: "ok"}
	switch {
	case err == nil:
	case errors.As(err, &postpone):
		o.result, o.at = "postponed", postpone.at
	default:
		final := t.Attempts >= t.MaxAttempts || errors.Is(err, errPermanent)
		o.result, o.msg = "retry", err.Error()
		if final {
			o.result = "failed"
		}
		o.at = time.Now().Add(backoff(r.opts.Backoff, r.opts.MaxBackoff, t.Attempts))
		if ctx.Err() == nil {
			r.log.Warn("job failed", "kind", t.Kind, "key", t.Key, "attempt", t.Attempts, "final", final, "err", err)
		}
	}
	r.metrics.result(t.Kind, o.result)
	return o
}

// safeCall runs h, turning a panic into a failed attempt instead of a dead process.
func safeCall(ctx context.Context, h Handler, t Task) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	if h == nil {
		return Permanent(fmt.Errorf("no handler for kind %q", t.Kind))
	}
	return h(ctx, t)
}

// backoff is base·2^(attempt-1), capped, with ±20 % jitter so retries of many tasks that
// failed together (an outage) spread out.
func backoff(base, limit time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

var errPermanent = errors.New("permanent")

// Permanent marks err as not worth retrying: the task fails at once.
func Permanent(err error) error { return fmt.Errorf("%w: %w", errPermanent, err) }

type postponeError struct{ at time.Time }

func (e *postponeError) Error() string { return "postponed until " + e.at.Format(time.RFC3339) }

// Postpone is what a handler returns when its task is not due yet after all (a review
// whose subject changed): it is queued again for at, and the run does not count as an
// attempt.
func Postpone(at time.Time) error { return &postponeError{at: at} }
