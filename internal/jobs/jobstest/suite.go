// Package jobstest is the contract every database backend of the job queue must meet:
// the same suite runs on SQLite and on PostgreSQL.
package jobstest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
)

// Run runs the suite; open returns a store over a fresh, empty database.
func Run(t *testing.T, open func(t *testing.T) *meta.Store) {
	cases := []struct {
		name string
		fn   func(*testing.T, *jobs.Store, *meta.DB)
	}{
		{"RunOnceAndDone", testRunOnce},
		{"DedupeMovesDue", testDedupe},
		{"NotBeforeDue", testNotBeforeDue},
		{"EnqueuedWhileRunningRunsAgain", testRerun},
		{"RetryBackoffThenFailed", testRetry},
		{"PermanentFailsAtOnce", testPermanent},
		{"PostponeDoesNotCountAttempt", testPostpone},
		{"InTransactionRollsBack", testEnqueueTx},
		{"TwoWorkersNeverRunTheSameTask", testTwoWorkers},
		{"KilledWorkersTaskRetakenAfterLease", testLeaseExpiry},
		{"LastAttemptDiedFails", testLeaseExpiryFinal},
		{"StatsAndPrune", testStats},
		{"RunLoopsRunEveryTaskOnce", testRunLoops},
		{"RunStopReturnsClaimedAhead", testRunStop},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := open(t).DB()
			c.fn(t, jobs.NewStore(db), db)
		})
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func runner(s *jobs.Store, worker string) *jobs.Runner {
	return jobs.NewRunner(s, jobs.Options{Worker: worker, Concurrency: 4, Poll: 20 * time.Millisecond,
		Lease: 2 * time.Second, Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}, nil, quiet)
}

func drain(t *testing.T, r *jobs.Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := r.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
}

// drainUntil works the queue until the task reaches state (a retried or postponed task
// is not due at once, so one Drain does not finish it).
func drainUntil(t *testing.T, r *jobs.Runner, s *jobs.Store, kind, key, state string) jobs.Task {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		drain(t, r)
		task := mustGet(t, s, kind, key)
		if task.State == state || time.Now().After(deadline) {
			return task
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustEnqueue(t *testing.T, s *jobs.Store, task jobs.Task) {
	t.Helper()
	if err := s.Enqueue(t.Context(), task); err != nil {
		t.Fatal(err)
	}
}

// enqueueKeys queues tasks of kind k keyed 0 … n-1.
func enqueueKeys(t *testing.T, s *jobs.Store, n int) {
	t.Helper()
	for i := range n {
		mustEnqueue(t, s, jobs.Task{Kind: "k", Key: fmt.Sprint(i)})
	}
}

func mustGet(t *testing.T, s *jobs.Store, kind, key string) jobs.Task {
	t.Helper()
	task, err := s.Get(t.Context(), kind, key)
	if err != nil {
		t.Fatalf("get %s %s: %v", kind, key, err)
	}
	return task
}

func testRunOnce(t *testing.T, s *jobs.Store, _ *meta.DB) {
	mustEnqueue(t, s, jobs.Task{Kind: "k", Key: "a", Payload: []byte("p")})
	r := runner(s, "w")
	var got []string
	var mu sync.Mutex
	r.Handle("k", func(_ context.Context, task jobs.Task) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, task.Key+"="+string(task.Payload))
		return nil
	})
	drain(t, r)
	drain(t, r) // nothing left: a done task does not run again
	if len(got) != 1 || got[0] != "a=p" {
		t.Fatalf("runs = %v, want [a=p]", got)
	}
	if task := mustGet(t, s, "k", "a"); task.State != jobs.Done || task.Attempts != 1 {
		t.Fatalf("task = %+v, want done after 1 attempt", task)
	}
	// Enqueued again after it finished: a fresh run.
	mustEnqueue(t, s, jobs.Task{Kind: "k", Key: "a", Payload: []byte("q")})
	drain(t, r)
	if len(got) != 2 || got[1] != "a=q" {
		t.Fatalf("runs = %v, want a second run with the new payload", got)
	}
}

func testDedupe(t *testing.T, s *jobs.Store, _ *meta.DB) {
	later := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	mustEnqueue(t, s, jobs.Task{Kind: "k", Key: "a", Due: time.Now().Add(time.Minute)})
	mustEnqueue(t, s, jobs.Task{Kind: "k", Key: "a", Due: later})
	task := mustGet(t, s, "k", "a")
	if task.State != jobs.Queued || !task.Due.Equal(later) {
		t.Fatalf("task = %+v, want one queued task due %v (the latest enqueue)", task, later)
	}
	stats, err := s.Stats(t.Context())
	if err != nil || len(stats) != 1 || stats[0].States[jobs.Queued] != 1 {
		t.Fatalf("stats = %+v, %v: want exactly one queued task", stats, err)
	}
}

func testNotBeforeDue(t *testing.T, s *jobs.Store, _ *meta.DB) {
	mustEnqueue(t, s, jobs.Task{Kind: "k", Key: "later", Due: time.Now().Add(time.Hour)})
	r := runner(s, "w")
	var runs atomic.Int32
	r.Handle("k", func(context.Context, jobs.Task) error { runs.Add(1); return nil })
	drain(t, r)
	if runs.Load() != 0 {
		t.Fatal("a task ran before it was due")
	}
}

func testRerun(t *testing.T, s *jobs.Store, _ *meta.DB) {
	mustEnqueue(t, s, jobs.Task{Kind: "k", Key: "a"})
	r := runner(s, "w")
	var runs atomic.Int32
	r.Handle("k", func(ctx context.Context, task jobs.Task) error {
		if runs.Add(1) == 1 {
			// An event during the run: the run may have read the old state already.
			return s.Enqueue(ctx, jobs.Task{Kind: "k", Key: "a"})
		}
		return nil
	})
	drain(t, r)
	if runs.Load() != 2 {
		t.Fatalf("runs = %d, want 2: a task enqueued while running must run again", runs.Load())
	}
}

func testRetry(t *testing.T, s *jobs.Store, _ *meta.DB) {
	mustEnqueue(t, s, jobs.Task{Kind: "k", Key: "a", MaxAttempts: 3})
	r := runner(s, "w")
	var runs atomic.Int32
	var stamps []time.Time
	r.Handle("k", func(context.Context, jobs.Task) error {
		runs.Add(1)
		stamps = append(stamps, time.Now())
		return fmt.Errorf("boom %d", runs.Load())
	})
	task := drainUntil(t, r, s, "k", "a", jobs.Failed)
	if runs.Load() != 3 || task.State != jobs.Failed || task.Attempts != 3 || task.LastError != "boom 3" {
		t.Fatalf("after %d runs task = %+v, want failed after 3 attempts with the last error", runs.Load(), task)
	}
	// Backoff doubles: 10ms then 20ms (±20 %).
	if gap := stamps[2].Sub(stamps[1]); gap < 15*time.Millisecond {
		t.Fatalf("second retry after %v, want ≥ 16ms (doubled backoff)", gap)
	}
	failed, err := s.Failures(t.Context(), 10)
	if err != nil || len(failed) != 1 || failed[0].Key != "a" {
		t.Fatalf("failures = %+v, %v", failed, err)
	}
}

func testPermanent(t *testing.T, s *jobs.Store, _ *meta.DB) {
	mustEnqueue(t, s, jobs.Task{Kind: "k", Key: "a"})
	r := runner(s, "w")
	r.Handle("k", func(context.Context, jobs.Task) error { return jobs.Permanent(errors.New("bad payload")) })
	drain(t, r)
	if task := mustGet(t, s, "k", "a"); task.State != jobs.Failed || task.Attempts != 1 {
		t.Fatalf("task = %+v, want failed after one attempt", task)
	}
}

func testPostpone(t *testing.T, s *jobs.Store, _ *meta.DB) {
	mustEnqueue(t, s, jobs.Task{Kind: "k", Key: "a", MaxAttempts: 1})
	r := runner(s, "w")
	var runs atomic.Int32
	r.Handle("k", func(context.Context, jobs.Task) error {
		if runs.Add(1) < 3 {
			return jobs.Postpone(time.Now().Add(20 * time.Millisecond))
		}
		return nil
	})
	if task := drainUntil(t, r, s, "k", "a", jobs.Done); runs.Load() != 3 || task.State != jobs.Done {
		t.Fatalf("task = %+v, want done: postponed runs must not use up its single attempt", task)
	}
}

func testEnqueueTx(t *testing.T, s *jobs.Store, db *meta.DB) {
	// A task enqueued in a transaction that rolls back never existed.
	boom := errors.New("roll back")
	err := db.InTx(t.Context(), func(tx *sql.Tx) error {
		if err := jobs.EnqueueTx(t.Context(), tx, jobs.Task{Kind: "k", Key: "gone"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "k", "gone"); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("get after rollback = %v, want not found", err)
	}
	if err := db.InTx(t.Context(), func(tx *sql.Tx) error {
		return jobs.EnqueueTx(t.Context(), tx, jobs.Task{Kind: "k", Key: "kept"})
	}); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, "k", "kept")
}

func testTwoWorkers(t *testing.T, s *jobs.Store, _ *meta.DB) {
	const n = 200
	enqueueKeys(t, s, n)
	var mu sync.Mutex
	runs := map[string]int{}
	handler := func(_ context.Context, task jobs.Task) error {
		mu.Lock()
		runs[task.Key]++
		mu.Unlock()
		time.Sleep(time.Millisecond)
		return nil
	}
	a, b := runner(s, "a"), runner(s, "b")
	a.Handle("k", handler)
	b.Handle("k", handler)
	var wg sync.WaitGroup
	for _, r := range []*jobs.Runner{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); drain(t, r) }()
	}
	wg.Wait()
	if len(runs) != n {
		t.Fatalf("%d tasks ran, want %d", len(runs), n)
	}
	for k, c := range runs {
		if c != 1 {
			t.Fatalf("task %s ran %d times", k, c)
		}
	}
}

func testLeaseExpiry(t *testing.T, s *jobs.Store, _ *meta.DB) {
	mustEnqueue(t, s, jobs.Task{Kind: "k", Key: "a"})
	// A worker claims the task and dies: nobody finishes or renews it.
	claimed, err := s.Claim(t.Context(), "dead", []string{"k"}, 1, 300*time.Millisecond)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %v, %v", claimed, err)
	}
	r := runner(s, "alive")
	var at time.Time
	r.Handle("k", func(_ context.Context, task jobs.Task) error { at = time.Now(); return nil })
	start := time.Now()
	if got, _ := s.Claim(t.Context(), "alive", []string{"k"}, 1, time.Second); len(got) != 0 {
		t.Fatal("a task under an unexpired lease was claimed again")
	}
	drain(t, r) // waits for the running task, then takes it when the lease expires
	if at.IsZero() || at.Sub(start) < 200*time.Millisecond {
		t.Fatalf("retaken after %v, want after the lease (300ms)", at.Sub(start))
	}
	if task := mustGet(t, s, "k", "a"); task.State != jobs.Done || task.Attempts != 2 {
		t.Fatalf("task = %+v, want done on the second attempt", task)
	}
}

func testLeaseExpiryFinal(t *testing.T, s *jobs.Store, _ *meta.DB) {
	mustEnqueue(t, s, jobs.Task{Kind: "k", Key: "a", MaxAttempts: 1})
	if got, err := s.Claim(t.Context(), "dead", []string{"k"}, 1, 50*time.Millisecond); err != nil || len(got) != 1 {
		t.Fatalf("claim = %v, %v", got, err)
	}
	time.Sleep(80 * time.Millisecond)
	r := runner(s, "alive")
	r.Handle("k", func(context.Context, jobs.Task) error { t.Error("ran past its last attempt"); return nil })
	drain(t, r)
	if task := mustGet(t, s, "k", "a"); task.State != jobs.Failed || task.LastError == "" {
		t.Fatalf("task = %+v, want failed with the lease expiry as its error", task)
	}
}

func testStats(t *testing.T, s *jobs.Store, _ *meta.DB) {
	mustEnqueue(t, s, jobs.Task{Kind: "a", Key: "1", Due: time.Now().Add(-time.Minute)})
	mustEnqueue(t, s, jobs.Task{Kind: "a", Key: "2", Due: time.Now().Add(time.Hour)})
	mustEnqueue(t, s, jobs.Task{Kind: "b", Key: "1"})
	r := runner(s, "w")
	r.Handle("b", func(context.Context, jobs.Task) error { return nil })
	drain(t, r)
	stats, err := s.Stats(t.Context())
	if err != nil || len(stats) != 2 {
		t.Fatalf("stats = %+v, %v", stats, err)
	}
	a, b := stats[0], stats[1]
	if a.Kind != "a" || a.States[jobs.Queued] != 2 || time.Since(a.OldestDue) < 50*time.Second {
		t.Fatalf("kind a = %+v, want 2 queued, oldest due a minute ago", a)
	}
	if b.Kind != "b" || b.States[jobs.Done] != 1 || !b.OldestDue.IsZero() {
		t.Fatalf("kind b = %+v, want 1 done and nothing due", b)
	}
	n, err := s.Prune(t.Context(), time.Now().Add(time.Second), time.Now())
	if err != nil || n != 1 {
		t.Fatalf("prune = %d, %v; want the done task gone", n, err)
	}
}

// runLoop starts r.Run until the test ends or stop is called; stop waits for Run to return.
func runLoop(t *testing.T, r *jobs.Runner) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	ended := make(chan struct{})
	go func() { defer close(ended); r.Run(ctx) }()
	stop = func() { cancel(); <-ended }
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds (a generous deadline only to end a hung test).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testRunLoops runs two replicas' Run loops (batched claims, outcomes recorded with the
// next claim, tasks claimed ahead of a free slot) over one queue: every task runs exactly
// once and ends done, and one enqueued again while running runs once more.
func testRunLoops(t *testing.T, s *jobs.Store, _ *meta.DB) {
	const n = 120
	enqueueKeys(t, s, n)
	var mu sync.Mutex
	runs := map[string]int{}
	handle := func(ctx context.Context, task jobs.Task) error {
		mu.Lock()
		runs[task.Key]++
		again := task.Key == "7" && runs[task.Key] == 1
		mu.Unlock()
		if again {
			return s.Enqueue(ctx, jobs.Task{Kind: "k", Key: task.Key})
		}
		return nil
	}
	for _, w := range []string{"a", "b"} {
		r := runner(s, w)
		r.Handle("k", handle)
		runLoop(t, r)
	}
	waitFor(t, "every task done", func() bool {
		stats, err := s.Stats(t.Context())
		return err == nil && len(stats) == 1 && stats[0].States[jobs.Done] == n
	})
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		want := 1
		if i == 7 {
			want = 2
		}
		if got := runs[fmt.Sprint(i)]; got != want {
			t.Errorf("task %d ran %d times, want %d", i, got, want)
		}
	}
}

// testRunStop stops a Run loop while it holds tasks claimed ahead of a free slot: they go
// back to the queue unrun, with no attempt counted, and the running ones end recorded.
func testRunStop(t *testing.T, s *jobs.Store, _ *meta.DB) {
	const n = 12
	enqueueKeys(t, s, n)
	r := runner(s, "w") // 4 slots, up to 8 claimed
	started := make(chan struct{}, n)
	release := make(chan struct{})
	r.Handle("k", func(ctx context.Context, task jobs.Task) error {
		started <- struct{}{}
		<-release
		return nil
	})
	stop := runLoop(t, r)
	for range 4 {
		<-started
	}
	waitFor(t, "tasks claimed ahead", func() bool {
		stats, err := s.Stats(t.Context())
		return err == nil && len(stats) == 1 && stats[0].States[jobs.Running] > 4
	})
	close(release)
	stop()
	stats, err := s.Stats(t.Context())
	if err != nil || len(stats) != 1 || stats[0].States[jobs.Running] != 0 {
		t.Fatalf("stats after stop = %+v, %v: want nothing left running", stats, err)
	}
	if st := stats[0].States; st[jobs.Done]+st[jobs.Queued] != n || st[jobs.Done] < 4 {
		t.Fatalf("states after stop = %v, want the started tasks done and the rest queued", st)
	}
	for i := range n {
		if task := mustGet(t, s, "k", fmt.Sprint(i)); task.State == jobs.Queued && task.Attempts != 0 {
			t.Fatalf("task %d back in the queue with %d attempts, want 0", i, task.Attempts)
		}
	}
}
