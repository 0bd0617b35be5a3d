package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
)

// Delivery states.
const (
	Pending   = "pending"
	Delivered = "delivered"
	Failed    = "failed"
	// Skipped: the subscription was disabled before the delivery was sent.
	Skipped = "skipped"
)

// Payload formats a subscription receives.
const (
	FormatCloudEvents = "cloudevents"
	FormatHarbor      = "harbor"
)

// laneKind is the jobs kind of a (subscription, repository) delivery lane; dispatchKind
// the one task fanning the outbox out.
const (
	laneKind     = "webhook.deliver"
	dispatchKind = "events.dispatch"
)

// Subscription is a webhook: where to send which events, in what shape.
type Subscription struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Project string `json:"project,omitempty"` // "" : system-wide
	URL     string `json:"url"`
	Format  string `json:"format"`
	// Events and Repositories filter (empty: all). Repositories are globs on the full
	// repository name ("team/*", "*/prod/**" — path.Match per segment, ** any depth).
	Events       []string  `json:"events"`
	Repositories []string  `json:"repositories"`
	Enabled      bool      `json:"enabled"`
	CreatedBy    string    `json:"createdBy"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	// Secret is the signing secret: set on create (generated when empty) and returned
	// only then.
	Secret string `json:"secret,omitempty"`
}

// Delivery is one event sent (or to be sent) to one subscription.
type Delivery struct {
	ID           int64     `json:"id"`
	Subscription int64     `json:"subscription"`
	EventID      string    `json:"eventId"`
	EventType    string    `json:"eventType"`
	Repository   string    `json:"repository,omitempty"`
	State        string    `json:"state"`
	Attempts     int       `json:"attempts"`
	NextAttempt  time.Time `json:"nextAttempt,omitzero"`
	LastStatus   int       `json:"lastStatus"`
	LastError    string    `json:"lastError,omitempty"`
	ReplayOf     int64     `json:"replayOf,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	DoneAt       time.Time `json:"doneAt,omitzero"`
	History      []Attempt `json:"history,omitempty"`
}

// Attempt is one HTTP request of a delivery.
type Attempt struct {
	At       time.Time `json:"at"`
	Status   int       `json:"status"` // 0: no response
	Error    string    `json:"error,omitempty"`
	Duration int64     `json:"durationMs"`
}

// Store holds events, subscriptions and deliveries over the shared SQL layer.
type Store struct{ db *meta.DB }

// NewStore returns the events store.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// writeTx numbers e in its repository's lane and writes it into the outbox inside tx.
// The lane row's lock serialises the writers of one repository until they commit, so
// their outbox ids follow commit order: the dispatcher, reading in id order, sees them
// in sequence.
func writeTx(ctx context.Context, tx *sql.Tx, e *Event) error {
	if e.ID == "" {
		e.ID = newID()
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC().Truncate(time.Millisecond)
	}
	if e.Project == "" && e.Repository != "" {
		e.Project = project(e.Repository)
	}
	err := tx.QueryRowContext(ctx, `INSERT INTO event_lanes (repository, seq) VALUES ($1, 1)
		ON CONFLICT (repository) DO UPDATE SET seq = event_lanes.seq + 1 RETURNING seq`, e.Repository).Scan(&e.Sequence)
	if err != nil {
		return fmt.Errorf("events: number event: %w", err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("events: encode event: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO event_outbox (event_id, type, project, repository, seq, payload, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, e.ID, e.Type, e.Project, e.Repository, e.Sequence, string(b), ms(e.Time)); err != nil {
		return fmt.Errorf("events: write outbox: %w", err)
	}
	return nil
}

const subCols = `id, name, project, url, format, events, repositories, enabled, created_by, created_at, updated_at`

func scanSub(row interface{ Scan(...any) error }) (Subscription, error) {
	var s Subscription
	var events, repos string
	var created, updated int64
	err := row.Scan(&s.ID, &s.Name, &s.Project, &s.URL, &s.Format, &events, &repos, &s.Enabled, &s.CreatedBy, &created, &updated)
	s.Events, s.Repositories = splitList(events), splitList(repos)
	s.CreatedAt, s.UpdatedAt = fromMS(created), fromMS(updated)
	return s, err
}

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// create stores s with its sealed secret.
func (st *Store) create(ctx context.Context, s Subscription, sealed string) (Subscription, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	s.CreatedAt, s.UpdatedAt = now, now
	var exists int
	if err := st.db.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_subscriptions WHERE project = $1 AND name = $2`, s.Project, s.Name).Scan(&exists); err != nil {
		return s, fmt.Errorf("events: create subscription: %w", err)
	}
	if exists > 0 {
		return s, meta.ErrExists
	}
	err := st.db.ExecQueryRow(ctx, `INSERT INTO webhook_subscriptions (name, project, url, secret, format, events, repositories, enabled, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id`,
		s.Name, s.Project, s.URL, sealed, s.Format, strings.Join(s.Events, ","), strings.Join(s.Repositories, ","), s.Enabled, s.CreatedBy, ms(now)).Scan(&s.ID)
	if err != nil {
		return s, fmt.Errorf("events: create subscription: %w", err)
	}
	return s, nil
}

// update writes s's changeable fields (URL, format, filters, enabled); a non-empty
// sealed replaces the secret.
func (st *Store) update(ctx context.Context, s Subscription, sealed string) error {
	q := `UPDATE webhook_subscriptions SET url = $2, format = $3, events = $4, repositories = $5, enabled = $6, updated_at = $7`
	args := []any{s.ID, s.URL, s.Format, strings.Join(s.Events, ","), strings.Join(s.Repositories, ","), s.Enabled, ms(time.Now())}
	if sealed != "" {
		q += `, secret = $8`
		args = append(args, sealed)
	}
	res, err := st.db.Exec(ctx, q+` WHERE id = $1`, args...)
	if err != nil {
		return fmt.Errorf("events: update subscription: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Subscription returns one subscription (without its secret).
func (st *Store) Subscription(ctx context.Context, id int64) (Subscription, error) {
	s, err := scanSub(st.db.QueryRow(ctx, `SELECT `+subCols+` FROM webhook_subscriptions WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return s, ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("events: subscription %d: %w", id, err)
	}
	return s, nil
}

// sealedSecret returns a subscription's sealed secret.
func (st *Store) sealedSecret(ctx context.Context, id int64) (string, error) {
	var s string
	err := st.db.QueryRow(ctx, `SELECT secret FROM webhook_subscriptions WHERE id = $1`, id).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return s, err
}

// Subscriptions lists a project's subscriptions ("" : the system-wide ones; all: every
// subscription), by id.
func (st *Store) Subscriptions(ctx context.Context, project string, all bool) ([]Subscription, error) {
	q, args := `SELECT `+subCols+` FROM webhook_subscriptions WHERE project = $1 ORDER BY id`, []any{project}
	if all {
		q, args = `SELECT `+subCols+` FROM webhook_subscriptions ORDER BY id`, nil
	}
	rows, err := st.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("events: list subscriptions: %w", err)
	}
	defer rows.Close()
	out := []Subscription{}
	for rows.Next() {
		s, err := scanSub(rows)
		if err != nil {
			return nil, fmt.Errorf("events: list subscriptions: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Delete removes a subscription with its deliveries.
func (st *Store) Delete(ctx context.Context, id int64) error {
	return st.db.InTx(ctx, func(tx *sql.Tx) error {
		// Explicit: SQLite's foreign keys cascade only with the pragma on.
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE subscription_id = $1)`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE subscription_id = $1`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_subscriptions WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("events: delete subscription: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// outboxRow is an event waiting for its fan-out.
type outboxRow struct {
	id         int64
	typ        string
	project    string
	repository string
	eventID    string
	payload    string
}

// dispatch fans up to n undispatched events out to the enabled subscriptions whose
// filters match, in one transaction: each matching (subscription, event) becomes a
// pending delivery and its lane task is queued. It returns how many events it handled.
// Rows are taken in id order and locked (not skipped), so a second dispatcher waits and
// the fan-out order stays the commit order within each repository.
func (st *Store) dispatch(ctx context.Context, n int, consumers []Consumer) (events, deliveries int, err error) {
	err = st.db.InTx(ctx, func(tx *sql.Tx) error {
		events, deliveries = 0, 0
		rows, err := tx.QueryContext(ctx, `SELECT id, type, project, repository, event_id, payload FROM event_outbox
			WHERE dispatched_at = 0 ORDER BY id LIMIT $1`+st.db.ForUpdate(), n)
		if err != nil {
			return fmt.Errorf("events: read outbox: %w", err)
		}
		var batch []outboxRow
		for rows.Next() {
			var r outboxRow
			if err := rows.Scan(&r.id, &r.typ, &r.project, &r.repository, &r.eventID, &r.payload); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		subs, err := enabledSubs(ctx, tx)
		if err != nil {
			return err
		}
		now := time.Now().UnixMilli()
		lanes := map[string]bool{}
		for _, r := range batch {
			if len(consumers) > 0 && r.typ != Ping {
				var e Event
				if err := json.Unmarshal([]byte(r.payload), &e); err != nil {
					return fmt.Errorf("events: decode event %s: %w", r.eventID, err)
				}
				for _, c := range consumers {
					if err := c(ctx, tx, e); err != nil {
						return fmt.Errorf("events: consumer of %s: %w", r.eventID, err)
					}
				}
			}
			for _, s := range subs {
				if !s.matches(r.typ, r.project, r.repository) {
					continue
				}
				lane := r.repository
				if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (subscription_id, event_id, lane, state, next_at, created_at)
					VALUES ($1, $2, $3, 'pending', $4, $4)`, s.ID, r.eventID, lane, now); err != nil {
					return fmt.Errorf("events: record delivery: %w", err)
				}
				deliveries++
				lanes[laneKey(s.ID, lane)] = true
			}
			if _, err := tx.ExecContext(ctx, `UPDATE event_outbox SET dispatched_at = $1 WHERE id = $2`, now, r.id); err != nil {
				return fmt.Errorf("events: mark dispatched: %w", err)
			}
			events++
		}
		for k := range lanes {
			if err := jobs.EnqueueTx(ctx, tx, jobs.Task{Kind: laneKind, Key: k}); err != nil {
				return err
			}
		}
		return nil
	})
	return events, deliveries, err
}

// undispatched tells whether any event waits for its fan-out (a read: no write lock).
func (st *Store) undispatched(ctx context.Context) (bool, error) {
	var one int
	err := st.db.QueryRow(ctx, `SELECT 1 FROM event_outbox WHERE dispatched_at = 0 LIMIT 1`).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func laneKey(sub int64, lane string) string { return fmt.Sprintf("%d %s", sub, lane) }

func parseLaneKey(k string) (int64, string, error) {
	id, lane, ok := strings.Cut(k, " ")
	var sub int64
	if _, err := fmt.Sscan(id, &sub); !ok || err != nil {
		return 0, "", fmt.Errorf("events: bad lane key %q", k)
	}
	return sub, lane, nil
}

func enabledSubs(ctx context.Context, tx *sql.Tx) ([]Subscription, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+subCols+` FROM webhook_subscriptions WHERE enabled ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("events: subscriptions: %w", err)
	}
	defer rows.Close()
	var out []Subscription
	for rows.Next() {
		s, err := scanSub(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// head is the first pending delivery of a lane with its event.
type head struct {
	Delivery
	payload string
}

// laneHead returns the oldest pending delivery of the lane, or ok false.
func (st *Store) laneHead(ctx context.Context, sub int64, lane string) (h head, ok bool, err error) {
	var next, created int64
	err = st.db.QueryRow(ctx, `SELECT d.id, d.event_id, d.attempts, d.next_at, d.created_at, o.type, o.payload
		FROM webhook_deliveries d JOIN event_outbox o ON o.event_id = d.event_id
		WHERE d.subscription_id = $1 AND d.lane = $2 AND d.state = 'pending' ORDER BY d.id LIMIT 1`, sub, lane).
		Scan(&h.ID, &h.EventID, &h.Attempts, &next, &created, &h.EventType, &h.payload)
	if errors.Is(err, sql.ErrNoRows) {
		return h, false, nil
	}
	if err != nil {
		return h, false, fmt.Errorf("events: lane head: %w", err)
	}
	h.Subscription, h.Repository = sub, lane
	h.NextAttempt, h.CreatedAt = fromMS(next), fromMS(created)
	return h, true, nil
}

// record writes an attempt's outcome: the attempt row and the delivery's new state.
func (st *Store) record(ctx context.Context, id int64, a Attempt, state string, next time.Time) error {
	return st.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, at, status, error, duration_ms) VALUES ($1, $2, $3, $4, $5)`,
			id, ms(a.At), a.Status, truncate(a.Error, 1000), a.Duration); err != nil {
			return fmt.Errorf("events: record attempt: %w", err)
		}
		done := int64(0)
		if state != Pending {
			done = ms(a.At)
		}
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, next_at = $3,
			last_status = $4, last_error = $5, done_at = $6 WHERE id = $1`, id, state, ms(next), a.Status, truncate(a.Error, 1000), done)
		if err != nil {
			return fmt.Errorf("events: record delivery: %w", err)
		}
		return nil
	})
}

// skipLane marks a disabled subscription's pending deliveries in a lane skipped.
func (st *Store) skipLane(ctx context.Context, sub int64, lane string) error {
	_, err := st.db.Exec(ctx, `UPDATE webhook_deliveries SET state = 'skipped', done_at = $3
		WHERE subscription_id = $1 AND lane = $2 AND state = 'pending'`, sub, lane, time.Now().UnixMilli())
	return err
}

// DeliveryFilter selects deliveries of a subscription.
type DeliveryFilter struct {
	State  string // "" : any
	Before int64  // deliveries with a smaller id (paging); 0: from the newest
	Limit  int
}

// Deliveries lists a subscription's deliveries, newest first.
func (st *Store) Deliveries(ctx context.Context, sub int64, f DeliveryFilter) ([]Delivery, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	q := `SELECT d.id, d.event_id, COALESCE(o.type, ''), d.lane, d.state, d.attempts, d.next_at, d.last_status, d.last_error, d.replay_of, d.created_at, d.done_at
		FROM webhook_deliveries d LEFT JOIN event_outbox o ON o.event_id = d.event_id WHERE d.subscription_id = $1`
	args := []any{sub}
	if f.State != "" {
		args = append(args, f.State)
		q += fmt.Sprintf(` AND d.state = $%d`, len(args))
	}
	if f.Before > 0 {
		args = append(args, f.Before)
		q += fmt.Sprintf(` AND d.id < $%d`, len(args))
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(` ORDER BY d.id DESC LIMIT $%d`, len(args))
	rows, err := st.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("events: deliveries: %w", err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d := Delivery{Subscription: sub}
		var next, created, done int64
		if err := rows.Scan(&d.ID, &d.EventID, &d.EventType, &d.Repository, &d.State, &d.Attempts, &next, &d.LastStatus, &d.LastError, &d.ReplayOf, &created, &done); err != nil {
			return nil, fmt.Errorf("events: deliveries: %w", err)
		}
		d.CreatedAt, d.DoneAt = fromMS(created), fromMS(done)
		if d.State == Pending {
			d.NextAttempt = fromMS(next)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Delivery returns one delivery of a subscription with its attempts.
func (st *Store) Delivery(ctx context.Context, sub, id int64) (Delivery, error) {
	d := Delivery{Subscription: sub}
	var next, created, done int64
	err := st.db.QueryRow(ctx, `SELECT d.id, d.event_id, COALESCE(o.type, ''), d.lane, d.state, d.attempts, d.next_at, d.last_status, d.last_error, d.replay_of, d.created_at, d.done_at
		FROM webhook_deliveries d LEFT JOIN event_outbox o ON o.event_id = d.event_id WHERE d.subscription_id = $1 AND d.id = $2`, sub, id).
		Scan(&d.ID, &d.EventID, &d.EventType, &d.Repository, &d.State, &d.Attempts, &next, &d.LastStatus, &d.LastError, &d.ReplayOf, &created, &done)
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("events: delivery: %w", err)
	}
	d.CreatedAt, d.DoneAt = fromMS(created), fromMS(done)
	if d.State == Pending {
		d.NextAttempt = fromMS(next)
	}
	rows, err := st.db.Query(ctx, `SELECT at, status, error, duration_ms FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id`, id)
	if err != nil {
		return d, fmt.Errorf("events: attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a Attempt
		var at int64
		if err := rows.Scan(&at, &a.Status, &a.Error, &a.Duration); err != nil {
			return d, err
		}
		a.At = fromMS(at)
		d.History = append(d.History, a)
	}
	return d, rows.Err()
}

// replay queues the event of each given delivery again for its subscription, as new
// deliveries at the end of their lanes. ids nil replays every failed delivery of sub.
func (st *Store) replay(ctx context.Context, sub int64, ids []int64) ([]int64, error) {
	var out []int64
	err := st.db.InTx(ctx, func(tx *sql.Tx) error {
		out = nil
		if ids == nil {
			rows, err := tx.QueryContext(ctx, `SELECT id FROM webhook_deliveries WHERE subscription_id = $1 AND state = 'failed' ORDER BY id`, sub)
			if err != nil {
				return err
			}
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		now := time.Now().UnixMilli()
		lanes := map[string]bool{}
		for _, id := range ids {
			var eventID, lane string
			var payloadKept int
			err := tx.QueryRowContext(ctx, `SELECT d.event_id, d.lane, (SELECT COUNT(*) FROM event_outbox o WHERE o.event_id = d.event_id)
				FROM webhook_deliveries d WHERE d.subscription_id = $1 AND d.id = $2`, sub, id).Scan(&eventID, &lane, &payloadKept)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
			if payloadKept == 0 {
				return &InvalidError{Msg: fmt.Sprintf("delivery %d: its event is past the retention period and cannot be sent again", id)}
			}
			var nid int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO webhook_deliveries (subscription_id, event_id, lane, state, next_at, replay_of, created_at)
				VALUES ($1, $2, $3, 'pending', $4, $5, $4) RETURNING id`, sub, eventID, lane, now, id).Scan(&nid); err != nil {
				return fmt.Errorf("events: replay: %w", err)
			}
			out = append(out, nid)
			lanes[laneKey(sub, lane)] = true
		}
		for k := range lanes {
			if err := jobs.EnqueueTx(ctx, tx, jobs.Task{Kind: laneKind, Key: k}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// prune deletes events, deliveries and attempts older than before (pending deliveries
// and undispatched events stay).
func (st *Store) prune(ctx context.Context, before time.Time) error {
	b := ms(before)
	for _, q := range []string{
		`DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE created_at < $1 AND state <> 'pending')`,
		`DELETE FROM webhook_deliveries WHERE created_at < $1 AND state <> 'pending'`,
		`DELETE FROM event_outbox WHERE created_at < $1 AND dispatched_at <> 0
			AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = event_outbox.event_id)`,
	} {
		if _, err := st.db.Exec(ctx, q, b); err != nil {
			return fmt.Errorf("events: prune: %w", err)
		}
	}
	return nil
}

// pendingDeliveries counts deliveries not yet sent or given up.
func (st *Store) pendingDeliveries(ctx context.Context) (int64, error) {
	var n int64
	err := st.db.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'`).Scan(&n)
	return n, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
