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
}

// NewRunner returns a runner over store; metrics may be nil.
func NewRunner(store *Store, opts Options, metrics *Metrics, log *slog.Logger) *Runner {
	opts.defaults()
	return &Runner{store: store, opts: opts, log: log, metrics: metrics, handlers: map[string]Handler{}}
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
func (r *Runner) Run(ctx context.Context) {
	slots := make(chan struct{}, r.opts.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	lastPrune := time.Time{}
	for ctx.Err() == nil {
		if time.Since(lastPrune) > 10*time.Minute {
			lastPrune = time.Now()
			if _, err := r.store.Prune(ctx, lastPrune.Add(-r.opts.KeepDone), lastPrune.Add(-r.opts.KeepFailed)); err != nil && ctx.Err() == nil {
				r.log.Warn("prune finished jobs", "err", err)
			}
		}
		free := r.opts.Concurrency - len(slots)
		if free == 0 { // every slot busy: wait for one, not for the poll interval
			select {
			case slots <- struct{}{}:
				<-slots
			case <-ctx.Done():
			}
			continue
		}
		tasks, err := r.store.Claim(ctx, r.opts.Worker, r.kinds(), free, r.opts.Lease)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("claim jobs", "err", err)
		}
		for _, t := range tasks {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				r.run(ctx, t)
			}()
		}
		if len(tasks) == free {
			continue // maybe more are due
		}
		wait := r.opts.Poll + time.Duration(rand.Int64N(int64(r.opts.Poll)/4+1)) // jitter spreads replicas
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// Drain runs due tasks of the given kinds (default: every registered kind) in this
// process until none is due or running anywhere, or ctx ends. Tasks other replicas hold
// are waited for. It is how `berth gc run` and tests work the queue to the end.
func (r *Runner) Drain(ctx context.Context, kinds ...string) error {
	if len(kinds) == 0 {
		kinds = r.kinds()
	}
	for {
		tasks, err := r.store.Claim(ctx, r.opts.Worker, kinds, r.opts.Concurrency, r.opts.Lease)
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		for _, t := range tasks {
			wg.Add(1)
			go func() { defer wg.Done(); r.run(ctx, t) }()
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

// run runs one claimed task with its lease renewed, and records the outcome.
func (r *Runner) run(ctx context.Context, t Task) {
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
	// The outcome is written even when ctx ended (shutdown): a short detached context.
	octx, ocancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer ocancel()
	var postpone *postponeError
	result := "ok"
	var werr error
	switch {
	case err == nil:
		werr = r.store.finish(octx, t, r.opts.Worker)
	case errors.As(err, &postpone):
		result = "postponed"
		werr = r.store.postpone(octx, t, r.opts.Worker, postpone.at)
	default:
		final := t.Attempts >= t.MaxAttempts || errors.Is(err, errPermanent)
		result = "retry"
		if final {
			result = "failed"
		}
		due := time.Now().Add(backoff(r.opts.Backoff, r.opts.MaxBackoff, t.Attempts))
		werr = r.store.retry(octx, t, r.opts.Worker, due, final, err.Error())
		if ctx.Err() == nil {
			r.log.Warn("job failed", "kind", t.Kind, "key", t.Key, "attempt", t.Attempts, "final", final, "err", err)
		}
	}
	r.metrics.result(t.Kind, result)
	if werr != nil && !errors.Is(werr, errLeaseLost) {
		r.log.Warn("record job outcome", "kind", t.Kind, "key", t.Key, "err", werr)
	}
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
