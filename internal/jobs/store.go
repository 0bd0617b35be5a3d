// Package jobs is the one durable home for Berth's background work (garbage collection
// now; webhooks, replication and scans later). Tasks are rows in the metadata database:
// any replica enqueues, any replica runs. A worker claims due tasks with FOR UPDATE SKIP
// LOCKED on PostgreSQL (inside SQLite's single write transaction on SQLite), holds a
// lease while it runs them and renews it; a worker that dies leaves the lease to expire
// and the task is taken again. Failures retry with exponential backoff up to a maximum
// number of attempts, then the task stays visible as failed with its last error.
//
// Tasks are deduplicated by (kind, key): enqueueing a task that is already queued moves
// its due time, one that is running is queued again once the run ends (so an event that
// happens during a run is never lost), and a done or failed one starts afresh.
package jobs

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// States a task is in.
const (
	Queued  = "queued"
	Running = "running"
	Failed  = "failed"
	Done    = "done"
)

// DefaultMaxAttempts bounds the runs of a task enqueued without MaxAttempts.
const DefaultMaxAttempts = 10

// Task is one unit of background work.
type Task struct {
	ID      int64
	Kind    string
	Key     string // deduplication key within Kind
	Payload []byte
	// Due is when the task may run first (zero: now).
	Due         time.Time
	MaxAttempts int
	// Filled in when read back.
	State     string
	Attempts  int // runs started, this one included while running
	LastError string
	Created   time.Time
}

// Store holds the task rows. It is safe for concurrent use.
type Store struct{ db *meta.DB }

// NewStore returns the task store over the shared SQL layer.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

// Execer is what EnqueueTx needs of a transaction (a *sql.Tx).
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// enqueueSQL inserts a task or re-queues the existing one of the same kind and key (see
// the package comment). A later enqueue of a queued task wins the due time: reviews are
// counted from the latest event.
const enqueueSQL = `INSERT INTO jobs (kind, dedupe_key, payload, state, due_at, max_attempts, created_at, updated_at)
	VALUES ($1, $2, $3, 'queued', $4, $5, $6, $6)` + upsertSQL

// upsertSQL is the dedupe rule shared by every enqueue (migration 00008's triggers
// repeat it in SQL).
const upsertSQL = `
	ON CONFLICT (kind, dedupe_key) DO UPDATE SET
		payload = excluded.payload,
		max_attempts = excluded.max_attempts,
		rerun_at = CASE WHEN jobs.state = 'running' THEN excluded.due_at ELSE NULL END,
		due_at = CASE WHEN jobs.state = 'running' THEN jobs.due_at ELSE excluded.due_at END,
		attempts = CASE WHEN jobs.state = 'running' THEN jobs.attempts ELSE 0 END,
		state = CASE WHEN jobs.state = 'running' THEN 'running' ELSE 'queued' END,
		updated_at = excluded.updated_at`

// Enqueue adds t (or re-queues the task of the same kind and key).
func (s *Store) Enqueue(ctx context.Context, t Task) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error { return EnqueueTx(ctx, tx, t) })
}

// EnqueueTx is Enqueue inside the caller's transaction, so a change and the work it
// causes commit together or not at all.
func EnqueueTx(ctx context.Context, tx Execer, t Task) error {
	if t.Kind == "" || t.Key == "" {
		return fmt.Errorf("jobs: enqueue needs a kind and a key (got %q, %q)", t.Kind, t.Key)
	}
	now := time.Now()
	if t.Due.IsZero() {
		t.Due = now
	}
	if t.MaxAttempts <= 0 {
		t.MaxAttempts = DefaultMaxAttempts
	}
	if _, err := tx.ExecContext(ctx, enqueueSQL, t.Kind, t.Key, t.Payload, t.Due.UnixMilli(), t.MaxAttempts, now.UnixMilli()); err != nil {
		return fmt.Errorf("jobs: enqueue %s %s: %w", t.Kind, t.Key, err)
	}
	return nil
}

// EnqueueQuery queues, in one statement, a task of kind for every key keysQuery returns
// (a SELECT naming its one text column k), due at due. It returns how many were queued.
func (s *Store) EnqueueQuery(ctx context.Context, kind, keysQuery string, due time.Time) (int64, error) {
	now := time.Now().UnixMilli()
	res, err := s.db.Exec(ctx, `INSERT INTO jobs (kind, dedupe_key, payload, state, due_at, max_attempts, created_at, updated_at)
		SELECT $1, src.k, NULL, 'queued', $2, $3, $4, $4 FROM (`+keysQuery+`) src WHERE true`+upsertSQL,
		kind, due.UnixMilli(), DefaultMaxAttempts, now)
	if err != nil {
		return 0, fmt.Errorf("jobs: enqueue %s for every row: %w", kind, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Schedule queues t unless a task of its kind and key is already queued or running: a
// periodic task that reschedules itself (with Postpone) is set up once, and a restart
// does not move it.
func (s *Store) Schedule(ctx context.Context, t Task) error {
	if t.Due.IsZero() {
		t.Due = time.Now()
	}
	if t.MaxAttempts <= 0 {
		t.MaxAttempts = DefaultMaxAttempts
	}
	now := time.Now().UnixMilli()
	_, err := s.db.Exec(ctx, `INSERT INTO jobs (kind, dedupe_key, payload, state, due_at, max_attempts, created_at, updated_at)
		VALUES ($1, $2, $3, 'queued', $4, $5, $6, $6)
		ON CONFLICT (kind, dedupe_key) DO UPDATE SET state = 'queued', due_at = excluded.due_at, attempts = 0, updated_at = excluded.updated_at
		WHERE jobs.state IN ('done', 'failed')`, t.Kind, t.Key, t.Payload, t.Due.UnixMilli(), t.MaxAttempts, now)
	if err != nil {
		return fmt.Errorf("jobs: schedule %s %s: %w", t.Kind, t.Key, err)
	}
	return nil
}

// Claim marks up to n due tasks of the given kinds as running for worker until the
// lease ends and returns them, the longest-waiting first. A running task whose lease
// expired is due again. Runner is the usual caller; a claim left unfinished is taken
// again once its lease expires.
//
// The cost of a claim does not grow with the queue: each kind's candidates come from an
// index walk that starts at its oldest due task and stops after n rows (jobs_claim, on
// (kind, due_at, id) of the queued rows, migration 00021), expired leases from
// jobs_running; not-yet-due, done and failed rows are never read. One statement over
// every kind with the two states OR-ed would make both engines read every row of the
// kinds and sort them, which made a large GC backlog quadratic.
func (s *Store) Claim(ctx context.Context, worker string, kinds []string, n int, lease time.Duration) ([]Task, error) {
	return s.claimAfter(ctx, worker, kinds, n, lease, nil)
}

// claimAfter is Claim that first records the outcomes of worker's finished runs in the
// same transaction: a runner's steady state is one write transaction (one fsync) per
// batch of finished and newly claimed tasks instead of one per outcome and one per
// claim. An outcome whose lease was lost is skipped (fenced, see claimWhere) without
// failing the others. When the transaction fails, the outcomes are recorded one by one
// before the error returns, so none is lost.
func (s *Store) claimAfter(ctx context.Context, worker string, kinds []string, n int, lease time.Duration, done []outcome) ([]Task, error) {
	if len(kinds) == 0 {
		n = 0
	}
	if n <= 0 && len(done) == 0 {
		return nil, nil
	}
	now := time.Now().UnixMilli()
	var out []Task
	var lost []error
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		out, lost = out[:0], lost[:0]
		for _, o := range done {
			if err := s.record(ctx, tx, worker, o); errors.Is(err, errLeaseLost) {
				lost = append(lost, fmt.Errorf("%s %s: %w", o.t.Kind, o.t.Key, err))
			} else if err != nil {
				return err
			}
		}
		if n <= 0 {
			return nil
		}
		// A task whose last allowed run died with its worker cannot be claimed again:
		// it fails here, visibly, instead of sitting in running forever.
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'failed', updated_at = $1,
			last_error = 'lease expired: the worker running the last allowed attempt stopped'
			WHERE state = 'running' AND lease_until < $1 AND attempts >= max_attempts`, now); err != nil {
			return fmt.Errorf("jobs: fail expired: %w", err)
		}
		cands, err := s.candidates(ctx, tx, kinds, n, now)
		if err != nil {
			return err
		}
		if len(cands) == 0 {
			return nil
		}
		args := []any{now + lease.Milliseconds(), worker, now}
		marks := make([]string, len(cands))
		for i, c := range cands {
			args = append(args, c.id)
			marks[i] = fmt.Sprintf("$%d", len(args))
		}
		rows, err := tx.QueryContext(ctx, `UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $1, worker = $2, updated_at = $3
			WHERE id IN (`+strings.Join(marks, ", ")+`) AND attempts < max_attempts
				AND ((state = 'queued' AND due_at <= $3) OR (state = 'running' AND lease_until < $3))
			RETURNING id, kind, dedupe_key, payload, attempts, max_attempts, due_at, created_at`, args...)
		if err != nil {
			return fmt.Errorf("jobs: claim: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			t := Task{State: Running}
			var due, created int64
			if err := rows.Scan(&t.ID, &t.Kind, &t.Key, &t.Payload, &t.Attempts, &t.MaxAttempts, &due, &created); err != nil {
				return fmt.Errorf("jobs: claim: %w", err)
			}
			t.Due, t.Created = time.UnixMilli(due), time.UnixMilli(created)
			out = append(out, t)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		slices.SortFunc(out, func(a, b Task) int { return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.ID, b.ID)) })
		return nil
	})
	if err != nil && len(done) > 0 {
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, o := range done {
			if rerr := s.record(octx, dbExecer{s.db}, worker, o); rerr != nil && !errors.Is(rerr, errLeaseLost) {
				err = errors.Join(err, fmt.Errorf("jobs: record %s %s: %w", o.t.Kind, o.t.Key, rerr))
			}
		}
		return nil, err
	}
	if err == nil && len(lost) > 0 {
		return out, &lostError{errors.Join(lost...)}
	}
	return out, err
}

// lostError reports outcomes that were not recorded because their lease was lost (the
// claimed tasks came back all the same).
type lostError struct{ err error }

func (e *lostError) Error() string { return e.err.Error() }
func (e *lostError) Unwrap() error { return e.err }

// An outcome is how a run ended, to be written to the task's row.
type outcome struct {
	t      Task
	result string    // ok, postponed, retry or failed (the metric's label)
	at     time.Time // postponed: queued again for; retry: next due
	msg    string    // retry, failed: the error
}

// record writes o to the row through ex (the database or a transaction).
func (s *Store) record(ctx context.Context, ex Execer, worker string, o outcome) error {
	switch o.result {
	case "ok":
		return s.finishEx(ctx, ex, o.t, worker)
	case "postponed":
		return s.postpone(ctx, ex, o.t, worker, o.at)
	default:
		return s.retry(ctx, ex, o.t, worker, o.at, o.result == "failed", o.msg)
	}
}

type candidate struct{ id, due int64 }

// candidates picks, inside the claim's transaction, the n longest-waiting claimable
// tasks of kinds: up to n of each kind's due queued tasks in due order and up to n
// expired leases, each an index range read, merged by (due_at, id). On PostgreSQL the
// rows are locked (rows other claims hold are skipped); the few read but not picked
// stay locked only until this short transaction ends.
func (s *Store) candidates(ctx context.Context, tx *sql.Tx, kinds []string, n int, now int64) ([]candidate, error) {
	var out []candidate
	scan := func(query string, args ...any) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("jobs: claim: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var c candidate
			if err := rows.Scan(&c.id, &c.due); err != nil {
				return fmt.Errorf("jobs: claim: %w", err)
			}
			out = append(out, c)
		}
		return rows.Err()
	}
	for _, k := range kinds {
		if err := scan(`SELECT id, due_at FROM jobs WHERE kind = $1 AND state = 'queued' AND due_at <= $2
			AND attempts < max_attempts ORDER BY due_at, id LIMIT $3`+s.db.SkipLocked(), k, now, n); err != nil {
			return nil, err
		}
	}
	// kind || '' keeps the planners off the (kind, dedupe_key) index, which would read
	// every row of the kinds: the few running rows come from jobs_running.
	args := []any{now, n}
	marks := make([]string, len(kinds))
	for i, k := range kinds {
		args = append(args, k)
		marks[i] = fmt.Sprintf("$%d", len(args))
	}
	if err := scan(`SELECT id, due_at FROM jobs WHERE state = 'running' AND lease_until < $1
		AND attempts < max_attempts AND kind || '' IN (`+strings.Join(marks, ", ")+`)
		ORDER BY lease_until LIMIT $2`+s.db.SkipLocked(), args...); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b candidate) int { return cmp.Or(cmp.Compare(a.due, b.due), cmp.Compare(a.id, b.id)) })
	return out[:min(n, len(out))], nil
}

// errLeaseLost reports that a worker's claim on a task ended: its lease expired and
// another worker took the task (the claim is fenced by worker and attempt number).
var errLeaseLost = errors.New("jobs: lease lost")

// claimWhere fences a statement to one claim: the worker that made it, at that attempt.
const claimWhere = ` WHERE id = $1 AND worker = $2 AND attempts = $3 AND state = 'running'`

// dbExecer runs a statement on its own, outside a transaction.
type dbExecer struct{ db *meta.DB }

func (d dbExecer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.db.Exec(ctx, query, args...)
}

func exec(ctx context.Context, ex Execer, query string, args ...any) error {
	res, err := ex.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLeaseLost
	}
	return nil
}

// renew extends the lease of a task the worker runs.
func (s *Store) renew(ctx context.Context, t Task, worker string, lease time.Duration) error {
	return exec(ctx, dbExecer{s.db}, `UPDATE jobs SET lease_until = $4`+claimWhere,
		t.ID, worker, t.Attempts, time.Now().Add(lease).UnixMilli())
}

// finish ends a run successfully: done, or queued again when it was enqueued meanwhile.
func (s *Store) finish(ctx context.Context, t Task, worker string) error {
	return s.finishEx(ctx, dbExecer{s.db}, t, worker)
}

func (s *Store) finishEx(ctx context.Context, ex Execer, t Task, worker string) error {
	return exec(ctx, ex, `UPDATE jobs SET
		state = CASE WHEN rerun_at IS NULL THEN 'done' ELSE 'queued' END,
		due_at = COALESCE(rerun_at, due_at), attempts = CASE WHEN rerun_at IS NULL THEN attempts ELSE 0 END,
		rerun_at = NULL, last_error = '', lease_until = 0, updated_at = $4`+claimWhere,
		t.ID, worker, t.Attempts, time.Now().UnixMilli())
}

// retry ends a failed run: queued again at due, or failed for good when final.
func (s *Store) retry(ctx context.Context, ex Execer, t Task, worker string, due time.Time, final bool, msg string) error {
	state := Queued
	if final {
		state = Failed
	}
	return exec(ctx, ex, `UPDATE jobs SET state = CASE WHEN rerun_at IS NULL THEN $4 ELSE 'queued' END,
		due_at = CASE WHEN rerun_at IS NULL THEN $5 ELSE rerun_at END,
		attempts = CASE WHEN rerun_at IS NULL THEN attempts ELSE 0 END,
		rerun_at = NULL, last_error = $6, lease_until = 0, updated_at = $7`+claimWhere,
		t.ID, worker, t.Attempts, state, due.UnixMilli(), truncate(msg, 2000), time.Now().UnixMilli())
}

// postpone queues the task again for at without counting the run as an attempt.
func (s *Store) postpone(ctx context.Context, ex Execer, t Task, worker string, at time.Time) error {
	return exec(ctx, ex, `UPDATE jobs SET state = 'queued', due_at = CASE WHEN rerun_at IS NULL OR rerun_at < $4 THEN $4 ELSE rerun_at END,
		attempts = attempts - 1, rerun_at = NULL, lease_until = 0, updated_at = $5`+claimWhere,
		t.ID, worker, t.Attempts, at.UnixMilli(), time.Now().UnixMilli())
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Get returns the task of kind and key.
func (s *Store) Get(ctx context.Context, kind, key string) (Task, error) {
	t := Task{Kind: kind, Key: key}
	var due, created int64
	err := s.db.QueryRow(ctx, `SELECT id, payload, state, due_at, attempts, max_attempts, last_error, created_at
		FROM jobs WHERE kind = $1 AND dedupe_key = $2`, kind, key).
		Scan(&t.ID, &t.Payload, &t.State, &due, &t.Attempts, &t.MaxAttempts, &t.LastError, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Task{}, meta.ErrNotFound
	}
	if err != nil {
		return Task{}, fmt.Errorf("jobs: get %s %s: %w", kind, key, err)
	}
	t.Due, t.Created = time.UnixMilli(due), time.UnixMilli(created)
	return t, nil
}

// KindStats summarises one kind's tasks.
type KindStats struct {
	Kind   string
	States map[string]int64 // tasks per state
	// OldestDue is the due time of the longest-waiting queued task that is due (zero:
	// none due): now minus it is how far the workers lag behind.
	OldestDue time.Time
}

// Stats summarises the queue per kind.
func (s *Store) Stats(ctx context.Context) ([]KindStats, error) {
	rows, err := s.db.Query(ctx, `SELECT kind, state, COUNT(*), MIN(CASE WHEN state = 'queued' AND due_at <= $1 THEN due_at END)
		FROM jobs GROUP BY kind, state ORDER BY kind, state`, time.Now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("jobs: stats: %w", err)
	}
	defer rows.Close()
	var out []KindStats
	for rows.Next() {
		var kind, state string
		var n int64
		var oldest sql.NullInt64
		if err := rows.Scan(&kind, &state, &n, &oldest); err != nil {
			return nil, fmt.Errorf("jobs: stats: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Kind != kind {
			out = append(out, KindStats{Kind: kind, States: map[string]int64{}})
		}
		k := &out[len(out)-1]
		k.States[state] = n
		if oldest.Valid {
			k.OldestDue = time.UnixMilli(oldest.Int64)
		}
	}
	return out, rows.Err()
}

// Failures lists up to n failed tasks, most recent first, with their last errors.
func (s *Store) Failures(ctx context.Context, n int) ([]Task, error) {
	rows, err := s.db.Query(ctx, `SELECT id, kind, dedupe_key, attempts, last_error, created_at FROM jobs
		WHERE state = 'failed' ORDER BY updated_at DESC, id DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("jobs: failures: %w", err)
	}
	defer rows.Close()
	var out []Task
	for rows.Next() {
		t := Task{State: Failed}
		var created int64
		if err := rows.Scan(&t.ID, &t.Kind, &t.Key, &t.Attempts, &t.LastError, &created); err != nil {
			return nil, fmt.Errorf("jobs: failures: %w", err)
		}
		t.Created = time.UnixMilli(created)
		out = append(out, t)
	}
	return out, rows.Err()
}

// Prune deletes done tasks finished before doneBefore and failed ones before
// failedBefore, returning how many went.
func (s *Store) Prune(ctx context.Context, doneBefore, failedBefore time.Time) (int64, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM jobs WHERE (state = 'done' AND updated_at < $1) OR (state = 'failed' AND updated_at < $2)`,
		doneBefore.UnixMilli(), failedBefore.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("jobs: prune: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Pending counts tasks of the given kinds that are queued or running (due or not).
func (s *Store) Pending(ctx context.Context, kinds []string, dueBy time.Time) (int64, error) {
	if len(kinds) == 0 {
		return 0, nil
	}
	args := []any{dueBy.UnixMilli()}
	marks := make([]string, len(kinds))
	for i, k := range kinds {
		args = append(args, k)
		marks[i] = fmt.Sprintf("$%d", len(args))
	}
	var n int64
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM jobs WHERE kind IN (`+strings.Join(marks, ", ")+`)
		AND ((state = 'queued' AND due_at <= $1) OR state = 'running')`, args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("jobs: pending: %w", err)
	}
	return n, nil
}
