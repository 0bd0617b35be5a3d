// Package replication copies artifacts between this registry and another one: push
// rules send local repositories to a remote registry, pull rules fetch remote ones into
// this registry. A copy is the whole graph — an index with every platform, its
// manifests and blobs, and (by default) everything that refers to them (signatures,
// attestations, SBOMs) through the referrers API or its tag-schema fallback — with
// digests unchanged, done by cric's transfer engine (only missing blobs are sent: it
// HEADs and mounts first). Rules run by hand, on a schedule, or on push (package events
// hands every push to the rules whose filters match); each run is an execution with a
// result per artifact. Runs are jobs (package jobs): retried with backoff, taken over by
// another replica when one dies, resumed where the destination stopped.
package replication

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// Directions.
const (
	Push = "push"
	Pull = "pull"
)

// Execution and item states.
const (
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
)

// Remote is the other registry.
type Remote struct {
	// URL is the registry: host[:port], optionally with https:// or http://.
	URL string `json:"url"`
	// Insecure skips TLS verification and allows plain http.
	Insecure bool   `json:"insecure,omitempty"`
	Username string `json:"username,omitempty"`
	// Password is write-only: set on create, never returned.
	Password string `json:"password,omitempty"`
}

// Rule says what to copy where and when.
type Rule struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	Direction string `json:"direction"`
	Remote    Remote `json:"remote"`
	// Repositories are globs on full repository names, local ones for push, remote
	// ones for pull (path.Match per segment, ** any depth). A pull rule of literal
	// names needs no catalog access on the remote.
	Repositories []string `json:"repositories"`
	// Tags are globs on tag names (empty: every tag).
	Tags []string `json:"tags"`
	// TagVersions, when set, also requires a tag to be a semantic version (a leading v
	// allowed) within this range (">=1.2, <2", "~1.4", "^2"); other tags are skipped.
	TagVersions string `json:"tagVersions,omitempty"`
	// ArtifactTypes, when set, copies only artifacts of these types (globs): a
	// manifest's artifactType, or without one its config media type (images:
	// application/vnd.oci.image.config.v1+json, Helm charts:
	// application/vnd.cncf.helm.config.v1+json); an index's artifactType, or its media
	// type. Deletes follow the repository and tag filters only.
	ArtifactTypes []string `json:"artifactTypes,omitempty"`
	// Platform, when set ("linux/arm64"), copies only that platform of a multi-platform
	// image: its manifest (digest unchanged) is what the tag names at the destination,
	// and the index is not copied (keeping only some of its platforms would change its
	// digest). A multi-platform image without it is skipped; a single-platform image
	// is copied as it is.
	Platform string `json:"platform,omitempty"`
	// DestinationPrefix is put before each repository name at the destination
	// ("mirror/" copies team/app to mirror/team/app).
	DestinationPrefix string `json:"destinationPrefix,omitempty"`
	// Referrers copies what refers to each artifact, recursively (default true).
	Referrers *bool `json:"referrers,omitempty"`
	// Schedule runs the rule every interval (0: by hand only).
	Schedule Duration `json:"schedule,omitempty"`
	// Cron runs the rule at the times a five-field cron expression names, in UTC
	// ("0 3 * * *": daily at 03:00); not with Schedule.
	Cron string `json:"cron,omitempty"`
	// OnPush replicates each matching push within seconds (push rules).
	OnPush bool `json:"onPush,omitempty"`
	// BandwidthLimit bounds the bytes per second a run exchanges with the remote
	// (uploads for push rules, downloads for pull rules; 0: unlimited).
	BandwidthLimit int64 `json:"bandwidthLimit,omitempty"`
	// PropagateDeletes deletes at the remote what is deleted here: a tag, or a
	// manifest by digest (push rules).
	PropagateDeletes bool      `json:"propagateDeletes,omitempty"`
	Enabled          bool      `json:"enabled"`
	CreatedBy        string    `json:"createdBy"`
	CreatedAt        time.Time `json:"createdAt"`
	UpdatedAt        time.Time `json:"updatedAt"`
}

func (r Rule) referrers() bool { return r.Referrers == nil || *r.Referrers }

// Duration is a time.Duration written as "1h30m" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1h30m" (or a number of nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("a duration such as 1h or 30m")
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("a duration such as 1h or 30m: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Execution is one run of a rule.
type Execution struct {
	ID       int64     `json:"id"`
	Rule     int64     `json:"rule"`
	Cause    string    `json:"cause"` // manual, schedule, event
	State    string    `json:"state"`
	Started  time.Time `json:"startedAt"`
	Finished time.Time `json:"finishedAt,omitzero"`
	Copied   int       `json:"copied"`
	Failed   int       `json:"failed"`
	Bytes    int64     `json:"bytes"`
	Error    string    `json:"error,omitempty"`
	Items    []Item    `json:"items,omitempty"`
}

// Item is one artifact of an execution.
type Item struct {
	Source      string    `json:"source"`
	Destination string    `json:"destination"`
	Digest      string    `json:"digest,omitempty"`
	State       string    `json:"state"`
	Referrers   int       `json:"referrers"`
	Bytes       int64     `json:"bytes"`
	Error       string    `json:"error,omitempty"`
	At          time.Time `json:"at"`
}

// ErrNotFound reports a rule or execution that does not exist.
var ErrNotFound = errors.New("replication: not found")

// Store holds rules and executions over the shared SQL layer.
type Store struct{ db *meta.DB }

// NewStore returns the replication store.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func (s *Store) create(ctx context.Context, r Rule, sealed string) (Rule, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	r.CreatedAt, r.UpdatedAt = now, now
	r.Remote.Password = ""
	spec, err := json.Marshal(r)
	if err != nil {
		return r, err
	}
	var n int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM replication_rules WHERE name = $1`, r.Name).Scan(&n); err != nil {
		return r, fmt.Errorf("replication: create rule: %w", err)
	}
	if n > 0 {
		return r, meta.ErrExists
	}
	err = s.db.ExecQueryRow(ctx, `INSERT INTO replication_rules (name, spec, password, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`, r.Name, string(spec), sealed, r.CreatedBy, ms(now)).Scan(&r.ID)
	if err != nil {
		return r, fmt.Errorf("replication: create rule: %w", err)
	}
	return r, nil
}

func (s *Store) setEnabled(ctx context.Context, r Rule) error {
	r.Remote.Password = ""
	r.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	spec, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `UPDATE replication_rules SET spec = $2, updated_at = $3 WHERE id = $1`, r.ID, string(spec), ms(r.UpdatedAt))
	return err
}

func scanRule(row interface{ Scan(...any) error }) (Rule, string, error) {
	var id int64
	var spec, sealed string
	if err := row.Scan(&id, &spec, &sealed); err != nil {
		return Rule{}, "", err
	}
	var r Rule
	if err := json.Unmarshal([]byte(spec), &r); err != nil {
		return r, "", fmt.Errorf("replication: rule %d: %w", id, err)
	}
	r.ID = id
	return r, sealed, nil
}

// Rule returns one rule (without its password) and the sealed password.
func (s *Store) rule(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) (Rule, string, error) {
	r, sealed, err := scanRule(q.QueryRowContext(ctx, `SELECT id, spec, password FROM replication_rules WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, "", ErrNotFound
	}
	return r, sealed, err
}

type readRow struct{ db *meta.DB }

func (r readRow) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return r.db.QueryRow(ctx, q, args...)
}

// Rules lists every rule by id.
func (s *Store) Rules(ctx context.Context) ([]Rule, error) {
	rows, err := s.db.Query(ctx, `SELECT id, spec, password FROM replication_rules ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("replication: rules: %w", err)
	}
	return collectRules(rows)
}

func collectRules(rows *sql.Rows) ([]Rule, error) {
	defer rows.Close()
	out := []Rule{}
	for rows.Next() {
		r, _, err := scanRule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *Store) delete(ctx context.Context, id int64) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM replication_rules WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		for _, q := range []string{
			`DELETE FROM replication_items WHERE execution_id IN (SELECT id FROM replication_executions WHERE rule_id = $1)`,
			`DELETE FROM replication_executions WHERE rule_id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) startExecution(ctx context.Context, rule int64, cause string) (int64, error) {
	var id int64
	err := s.db.ExecQueryRow(ctx, `INSERT INTO replication_executions (rule_id, cause, state, started_at) VALUES ($1, $2, 'running', $3) RETURNING id`,
		rule, cause, time.Now().UnixMilli()).Scan(&id)
	return id, err
}

func (s *Store) addItem(ctx context.Context, exec int64, it Item) error {
	_, err := s.db.Exec(ctx, `INSERT INTO replication_items (execution_id, source, destination, digest, state, referrers, bytes, error, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, exec, it.Source, it.Destination, it.Digest, it.State, it.Referrers, it.Bytes, truncate(it.Error, 1000), ms(it.At))
	return err
}

func (s *Store) finishExecution(ctx context.Context, e Execution) error {
	_, err := s.db.Exec(ctx, `UPDATE replication_executions SET state = $2, finished_at = $3, copied = $4, failed = $5, bytes = $6, error = $7 WHERE id = $1`,
		e.ID, e.State, time.Now().UnixMilli(), e.Copied, e.Failed, e.Bytes, truncate(e.Error, 1000))
	return err
}

const execCols = `id, rule_id, cause, state, started_at, finished_at, copied, failed, bytes, error`

func scanExec(row interface{ Scan(...any) error }) (Execution, error) {
	var e Execution
	var started, finished int64
	err := row.Scan(&e.ID, &e.Rule, &e.Cause, &e.State, &started, &finished, &e.Copied, &e.Failed, &e.Bytes, &e.Error)
	e.Started, e.Finished = fromMS(started), fromMS(finished)
	return e, err
}

// Executions lists a rule's executions, newest first.
func (s *Store) Executions(ctx context.Context, rule int64, n int) ([]Execution, error) {
	if n <= 0 || n > 1000 {
		n = 50
	}
	rows, err := s.db.Query(ctx, `SELECT `+execCols+` FROM replication_executions WHERE rule_id = $1 ORDER BY id DESC LIMIT $2`, rule, n)
	if err != nil {
		return nil, fmt.Errorf("replication: executions: %w", err)
	}
	defer rows.Close()
	out := []Execution{}
	for rows.Next() {
		e, err := scanExec(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Execution returns one execution with its items.
func (s *Store) Execution(ctx context.Context, id int64) (Execution, error) {
	e, err := scanExec(s.db.QueryRow(ctx, `SELECT `+execCols+` FROM replication_executions WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, ErrNotFound
	}
	if err != nil {
		return e, fmt.Errorf("replication: execution %d: %w", id, err)
	}
	rows, err := s.db.Query(ctx, `SELECT source, destination, digest, state, referrers, bytes, error, at FROM replication_items WHERE execution_id = $1 ORDER BY id`, id)
	if err != nil {
		return e, err
	}
	defer rows.Close()
	for rows.Next() {
		var it Item
		var at int64
		if err := rows.Scan(&it.Source, &it.Destination, &it.Digest, &it.State, &it.Referrers, &it.Bytes, &it.Error, &at); err != nil {
			return e, err
		}
		it.At = fromMS(at)
		e.Items = append(e.Items, it)
	}
	return e, rows.Err()
}

// prune deletes executions (with their items) that finished before before.
func (s *Store) prune(ctx context.Context, before time.Time) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		b := ms(before)
		if _, err := tx.ExecContext(ctx, `DELETE FROM replication_items WHERE execution_id IN
			(SELECT id FROM replication_executions WHERE finished_at <> 0 AND finished_at < $1)`, b); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM replication_executions WHERE finished_at <> 0 AND finished_at < $1`, b)
		return err
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
