package gc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
)

// Task kinds. Reviews are queued by the database triggers of migration 00008 (see the
// package comment); bytes and sweep by this package.
const (
	KindManifest = "gc.manifest" // key "<repository id> <digest>"
	KindLink     = "gc.link"     // key "<repository id> <digest>": a repository's blob link
	KindBlob     = "gc.blob"     // key "<digest>": the stored blob row
	KindBytes    = "gc.bytes"    // key "<location>", payload the size: delete bytes after commit
	KindSweep    = "gc.sweep"    // periodic orphan sweep
)

// Store holds garbage collection's queries over the shared SQL layer.
type Store struct{ db *meta.DB }

// NewStore returns the GC store.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

// Rules are what a review needs besides the rows.
type Rules struct {
	ReviewAfter time.Duration
	// Mirrored tells whether a repository belongs to a mirror, whose cache is managed by
	// eviction (size limit, last pull), never by GC: digest-pulled mirror content is
	// untagged by nature.
	Mirrored func(repo string) bool
}

// Policy is a project's rule for untagged manifests.
type Policy struct {
	Project string
	// UntaggedAfter keeps an untagged manifest until this long after its push.
	UntaggedAfter time.Duration
	// KeepPulledWithin keeps an untagged manifest pulled within this long (digest-pinned
	// deployments keep their image).
	KeepPulledWithin time.Duration
}

// Outcome is what one review did.
type Outcome struct {
	Kept      string    // why it stays ("" when deleted or gone)
	Postpone  time.Time // not due yet: review again then
	Manifests int       // rows deleted
	Links     int
	Blobs     int
	Bytes     int64  // size of deleted blob rows (bytes go after commit)
	Deleted   string // what was deleted, for the audit trail
}

func parseKey(key string) (int64, string, error) {
	id, digest, ok := strings.Cut(key, " ")
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil || digest == "" {
		return 0, "", fmt.Errorf("gc: malformed review key %q", key)
	}
	return n, digest, nil
}

// reviewKeyed runs fn in a write transaction for a "<repository id> <digest>" key.
func (s *Store) reviewKeyed(ctx context.Context, key string, fn func(tx *sql.Tx, repoID int64, digest string, out *Outcome) error) (Outcome, error) {
	repoID, digest, err := parseKey(key)
	if err != nil {
		return Outcome{}, jobs.Permanent(err)
	}
	var out Outcome
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		out = Outcome{} // a retried transaction starts over
		return fn(tx, repoID, digest, &out)
	})
	return out, err
}

// exists runs a query that returns a row when something holds the reviewed item.
func exists(ctx context.Context, tx *sql.Tx, query string, args ...any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("gc: check: %w", err)
	}
	return true, nil
}

func repoName(ctx context.Context, tx *sql.Tx, id int64) (string, error) {
	var name string
	err := tx.QueryRowContext(ctx, `SELECT name FROM repositories WHERE id = $1`, id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("gc: repository %d: %w", id, err)
	}
	return name, nil
}

// policy returns the project's untagged policy (zero when none is set).
func policy(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, repo string) (Policy, error) {
	project, _, _ := strings.Cut(repo, "/")
	p := Policy{Project: project}
	var untagged, pulled int64
	err := q.QueryRowContext(ctx, `SELECT untagged_after_ms, keep_pulled_ms FROM gc_policies WHERE project = $1`, project).Scan(&untagged, &pulled)
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("gc: policy of %s: %w", project, err)
	}
	p.UntaggedAfter, p.KeepPulledWithin = time.Duration(untagged)*time.Millisecond, time.Duration(pulled)*time.Millisecond
	return p, nil
}

// ReviewManifest deletes the manifest if nothing keeps it: no tag, no index in the
// repository listing it, no stored subject (a referrer lives as long as its subject), no
// tagged referrer, and neither its age nor its project's policy protect it. Its row is
// locked first, so a push re-tagging it or an index listing it (which lock it too) either
// commits before the checks and keeps it, or waits and then finds it gone and stores it
// anew. Deleting its references queues reviews of its blobs' links and children.
func (s *Store) ReviewManifest(ctx context.Context, key string, r Rules) (Outcome, error) {
	return s.reviewKeyed(ctx, key, func(tx *sql.Tx, repoID int64, digest string, out *Outcome) error {
		var id, created, pulled int64
		err := tx.QueryRowContext(ctx, `SELECT id, created_at, last_pulled_at FROM manifests
			WHERE repository_id = $1 AND digest = $2`+s.db.ForUpdate(), repoID, digest).Scan(&id, &created, &pulled)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // already gone
		}
		if err != nil {
			return fmt.Errorf("gc: lock manifest: %w", err)
		}
		// Fresh statements from here on see everything committed before the lock.
		repo, err := repoName(ctx, tx, repoID)
		if err != nil {
			return err
		}
		if r.Mirrored != nil && r.Mirrored(repo) {
			out.Kept = "mirrored"
			return nil
		}
		for _, c := range []struct{ why, query string }{
			{"tagged", `SELECT 1 FROM tags WHERE repository_id = $1 AND manifest_digest = $2`},
			{"index child", `SELECT 1 FROM manifest_references mr JOIN manifests p ON p.id = mr.manifest_id
				WHERE p.repository_id = $1 AND mr.digest = $2 AND mr.kind = 2`},
			{"referrer of a stored subject", `SELECT 1 FROM manifests m JOIN manifests s ON s.repository_id = m.repository_id AND s.digest = m.subject_digest
				WHERE m.repository_id = $1 AND m.digest = $2`},
			{"subject of a tagged referrer", `SELECT 1 FROM manifests m JOIN tags t ON t.repository_id = m.repository_id AND t.manifest_digest = m.digest
				WHERE m.repository_id = $1 AND m.subject_digest = $2`},
		} {
			held, err := exists(ctx, tx, c.query+` LIMIT 1`, repoID, digest)
			if err != nil {
				return err
			}
			if held {
				out.Kept = c.why
				return nil
			}
		}
		p, err := policy(ctx, tx, repo)
		if err != nil {
			return err
		}
		now := time.Now()
		createdAt, pulledAt := time.UnixMilli(created), time.UnixMilli(pulled)
		for _, until := range []time.Time{createdAt.Add(r.ReviewAfter), createdAt.Add(p.UntaggedAfter), pulledAt.Add(p.KeepPulledWithin)} {
			if until.After(now) && until.After(out.Postpone) {
				out.Postpone = until
			}
		}
		if !out.Postpone.IsZero() {
			out.Kept = "protected by review_after or the project's untagged policy"
			return nil
		}
		// References first: the trigger on them finds the manifest row for its repository.
		for _, q := range []string{`DELETE FROM manifest_references WHERE manifest_id = $1`, `DELETE FROM manifests WHERE id = $1`} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("gc: delete manifest: %w", err)
			}
		}
		out.Manifests, out.Deleted = 1, repo+"@"+digest
		return addTotals(ctx, tx, *out)
	})
}

// ReviewLink removes a repository's link to a blob that no manifest in the repository
// references, once the link is older than review_after (an upload completed but never
// used). The link row is locked first; a manifest put referencing the blob locks the same
// row (meta.PutManifest), so one of the two waits for the other: the put either commits
// its reference first and the link stays, or finds the link gone and fails with
// MANIFEST_BLOB_UNKNOWN before it is acknowledged. Removing the link queues a review of
// the blob.
func (s *Store) ReviewLink(ctx context.Context, key string, r Rules) (Outcome, error) {
	return s.reviewKeyed(ctx, key, func(tx *sql.Tx, repoID int64, digest string, out *Outcome) error {
		var created int64
		err := tx.QueryRowContext(ctx, `SELECT created_at FROM repository_blobs WHERE repository_id = $1 AND digest = $2`+s.db.ForUpdate(),
			repoID, digest).Scan(&created)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("gc: lock blob link: %w", err)
		}
		repo, err := repoName(ctx, tx, repoID)
		if err != nil {
			return err
		}
		if r.Mirrored != nil && r.Mirrored(repo) {
			out.Kept = "mirrored"
			return nil
		}
		if until := time.UnixMilli(created).Add(r.ReviewAfter); until.After(time.Now()) {
			out.Kept, out.Postpone = "younger than review_after", until
			return nil
		}
		used, err := exists(ctx, tx, `SELECT 1 FROM manifest_references mr JOIN manifests m ON m.id = mr.manifest_id
			WHERE m.repository_id = $1 AND mr.digest = $2 AND mr.kind = 1 LIMIT 1`, repoID, digest)
		if err != nil || used {
			out.Kept = "referenced"
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM repository_blobs WHERE repository_id = $1 AND digest = $2`, repoID, digest); err != nil {
			return fmt.Errorf("gc: delete blob link: %w", err)
		}
		out.Links, out.Deleted = 1, repo+"@"+digest
		return addTotals(ctx, tx, *out)
	})
}

// ReviewBlob deletes the blob's row when no repository links it and no manifest anywhere
// references it, and queues the deletion of its bytes in the same transaction: rows first,
// bytes after commit. Linking a blob (upload commit, mount) checks the row through the
// links' foreign key, which the lock here excludes, so a link either commits first and
// keeps the blob or fails after the row went.
func (s *Store) ReviewBlob(ctx context.Context, digest string) (Outcome, error) {
	var out Outcome
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		out = Outcome{}
		var size int64
		var location string
		err := tx.QueryRowContext(ctx, `SELECT size, location FROM blobs WHERE digest = $1`+s.db.ForUpdate(), digest).Scan(&size, &location)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("gc: lock blob: %w", err)
		}
		for _, q := range []string{
			`SELECT 1 FROM repository_blobs WHERE digest = $1 LIMIT 1`,
			`SELECT 1 FROM manifest_references WHERE digest = $1 AND kind = 1 LIMIT 1`,
		} {
			used, err := exists(ctx, tx, q, digest)
			if err != nil || used {
				out.Kept = "in use"
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM blobs WHERE digest = $1`, digest); err != nil {
			return fmt.Errorf("gc: delete blob: %w", err)
		}
		if err := jobs.EnqueueTx(ctx, tx, jobs.Task{Kind: KindBytes, Key: location, Payload: []byte(strconv.FormatInt(size, 10))}); err != nil {
			return err
		}
		out.Blobs, out.Bytes, out.Deleted = 1, size, digest
		return addTotals(ctx, tx, out)
	})
	return out, err
}

func addTotals(ctx context.Context, tx *sql.Tx, o Outcome) error {
	_, err := tx.ExecContext(ctx, `UPDATE gc_totals SET manifests_deleted = manifests_deleted + $1, links_deleted = links_deleted + $2,
		blobs_deleted = blobs_deleted + $3, bytes_deleted = bytes_deleted + $4, last_delete_at = $5 WHERE id = 1`,
		o.Manifests, o.Links, o.Blobs, o.Bytes, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("gc: totals: %w", err)
	}
	return nil
}

// SetReviewAfter records the delay the review triggers use.
func (s *Store) SetReviewAfter(ctx context.Context, d time.Duration) error {
	if _, err := s.db.Exec(ctx, `UPDATE gc_settings SET review_after_ms = $1 WHERE id = 1`, d.Milliseconds()); err != nil {
		return fmt.Errorf("gc: set review_after: %w", err)
	}
	return nil
}

// SetPolicy sets a project's untagged policy; a zero policy removes it.
func (s *Store) SetPolicy(ctx context.Context, p Policy) error {
	var err error
	if p.UntaggedAfter == 0 && p.KeepPulledWithin == 0 {
		_, err = s.db.Exec(ctx, `DELETE FROM gc_policies WHERE project = $1`, p.Project)
	} else {
		_, err = s.db.Exec(ctx, `INSERT INTO gc_policies (project, untagged_after_ms, keep_pulled_ms, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (project) DO UPDATE SET untagged_after_ms = excluded.untagged_after_ms, keep_pulled_ms = excluded.keep_pulled_ms,
			updated_at = excluded.updated_at`, p.Project, p.UntaggedAfter.Milliseconds(), p.KeepPulledWithin.Milliseconds(), time.Now().UnixMilli())
	}
	if err != nil {
		return fmt.Errorf("gc: set policy of %s: %w", p.Project, err)
	}
	return nil
}

// Policies lists every project's untagged policy.
func (s *Store) Policies(ctx context.Context) ([]Policy, error) {
	rows, err := s.db.Query(ctx, `SELECT project, untagged_after_ms, keep_pulled_ms FROM gc_policies ORDER BY project`)
	if err != nil {
		return nil, fmt.Errorf("gc: policies: %w", err)
	}
	defer rows.Close()
	var out []Policy
	for rows.Next() {
		var p Policy
		var u, k int64
		if err := rows.Scan(&p.Project, &u, &k); err != nil {
			return nil, err
		}
		p.UntaggedAfter, p.KeepPulledWithin = time.Duration(u)*time.Millisecond, time.Duration(k)*time.Millisecond
		out = append(out, p)
	}
	return out, rows.Err()
}

// Totals are what GC deleted since the database was created.
type Totals struct {
	Manifests, Links, Blobs, Bytes int64
	LastDelete                     time.Time
}

// Totals reads the running totals.
func (s *Store) Totals(ctx context.Context) (Totals, error) {
	var t Totals
	var last int64
	err := s.db.QueryRow(ctx, `SELECT manifests_deleted, links_deleted, blobs_deleted, bytes_deleted, last_delete_at FROM gc_totals WHERE id = 1`).
		Scan(&t.Manifests, &t.Links, &t.Blobs, &t.Bytes, &last)
	if err != nil {
		return t, fmt.Errorf("gc: totals: %w", err)
	}
	if last > 0 {
		t.LastDelete = time.UnixMilli(last)
	}
	return t, nil
}

// EnqueueAll queues a review, due now, of every manifest, link and blob: for databases
// that held content before online GC existed, and for an operator's `berth gc run`.
// Reviews still spare anything younger than review_after.
func (s *Store) EnqueueAll(ctx context.Context, q *jobs.Store) (int64, error) {
	var total int64
	for _, k := range []struct{ kind, keys string }{
		{KindManifest, `SELECT CAST(repository_id AS TEXT) || ' ' || digest AS k FROM manifests`},
		{KindLink, `SELECT CAST(repository_id AS TEXT) || ' ' || digest AS k FROM repository_blobs`},
		{KindBlob, `SELECT digest AS k FROM blobs`},
	} {
		n, err := q.EnqueueQuery(ctx, k.kind, k.keys, time.Now())
		total += n
		if err != nil {
			return total, fmt.Errorf("gc: queue every review: %w", err)
		}
	}
	return total, nil
}
