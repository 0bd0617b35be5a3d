package quota

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// Usage is a project's quota and what it holds.
type Usage struct {
	Project string
	// Limit is the quota in bytes; Unlimited (-1) when none is set.
	Limit int64
	// Bytes is the sum of the sizes of the distinct blobs the project holds.
	Bytes int64
	// Blobs is how many distinct blobs that is.
	Blobs     int64
	UpdatedAt time.Time // when the quota was last set (zero when unlimited)
}

// Unlimited is Usage.Limit when a project has no quota.
const Unlimited = -1

// Store holds the quota tables (migration 00013) over the shared SQL layer. Usage rows
// are written only by that migration's triggers; this store sets limits and reads.
type Store struct{ db *meta.DB }

// NewStore returns the quota store.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

// SetLimit sets a project's quota in bytes; Unlimited (or any negative) removes it.
func (s *Store) SetLimit(ctx context.Context, project string, limit int64) error {
	var err error
	if limit < 0 {
		_, err = s.db.Exec(ctx, `DELETE FROM quota_limits WHERE project = $1`, project)
	} else {
		_, err = s.db.Exec(ctx, `INSERT INTO quota_limits (project, limit_bytes, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (project) DO UPDATE SET limit_bytes = excluded.limit_bytes, updated_at = excluded.updated_at`,
			project, limit, time.Now().UnixMilli())
	}
	if err != nil {
		return fmt.Errorf("quota: set limit of %s: %w", project, err)
	}
	return nil
}

// Usage returns a project's quota and usage (zero usage for a project holding nothing).
func (s *Store) Usage(ctx context.Context, project string) (Usage, error) {
	u := Usage{Project: project, Limit: Unlimited}
	var updated sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT COALESCE((SELECT limit_bytes FROM quota_limits WHERE project = $1), -1),
		(SELECT updated_at FROM quota_limits WHERE project = $1),
		COALESCE((SELECT bytes FROM quota_usage WHERE project = $1), 0),
		COALESCE((SELECT blobs FROM quota_usage WHERE project = $1), 0)`, project).Scan(&u.Limit, &updated, &u.Bytes, &u.Blobs)
	if err != nil {
		return Usage{}, fmt.Errorf("quota: usage of %s: %w", project, err)
	}
	if updated.Valid {
		u.UpdatedAt = time.UnixMilli(updated.Int64)
	}
	return u, nil
}

// All returns every project that has a quota or holds blobs, by name.
func (s *Store) All(ctx context.Context) ([]Usage, error) {
	rows, err := s.db.Query(ctx, `SELECT p.project, COALESCE(l.limit_bytes, -1), l.updated_at, COALESCE(u.bytes, 0), COALESCE(u.blobs, 0)
		FROM (SELECT project FROM quota_limits UNION SELECT project FROM quota_usage) p
		LEFT JOIN quota_limits l ON l.project = p.project
		LEFT JOIN quota_usage u ON u.project = p.project
		ORDER BY p.project`)
	if err != nil {
		return nil, fmt.Errorf("quota: list usage: %w", err)
	}
	defer rows.Close()
	var out []Usage
	for rows.Next() {
		var u Usage
		var updated sql.NullInt64
		if err := rows.Scan(&u.Project, &u.Limit, &updated, &u.Bytes, &u.Blobs); err != nil {
			return nil, fmt.Errorf("quota: list usage: %w", err)
		}
		if updated.Valid {
			u.UpdatedAt = time.UnixMilli(updated.Int64)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// admission is what Admit needs in one read: the quota, the usage, and whether the blob
// is already counted in the project (then it adds nothing).
func (s *Store) admission(ctx context.Context, project, digest string) (limit, used int64, counted bool, err error) {
	err = s.db.QueryRow(ctx, `SELECT l.limit_bytes, COALESCE(u.bytes, 0),
		CASE WHEN EXISTS (SELECT 1 FROM quota_blobs b WHERE b.project = $1 AND b.digest = $2 AND b.size > 0) THEN 1 ELSE 0 END
		FROM quota_limits l LEFT JOIN quota_usage u ON u.project = l.project WHERE l.project = $1`, project, digest).
		Scan(&limit, &used, &counted)
	if errors.Is(err, sql.ErrNoRows) {
		return Unlimited, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("quota: admission in %s: %w", project, err)
	}
	return limit, used, counted, nil
}

// Recount computes a project's usage from the registry's own rows, ignoring the counters
// the triggers keep: the two agree exactly (tests prove it; operators may check).
func (s *Store) Recount(ctx context.Context, project string) (bytes, blobs int64, err error) {
	// Repositories of the project: its own name, or names under "<project>/".
	err = s.db.QueryRow(ctx, `SELECT COALESCE(SUM(COALESCE(b.size, 0)), 0), COUNT(*) FROM (
			SELECT rb.digest FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
				WHERE r.name = $1 OR (r.name >= $2 AND r.name < $3)
			UNION
			SELECT mr.digest FROM manifest_references mr JOIN manifests m ON m.id = mr.manifest_id
				JOIN repositories r ON r.id = m.repository_id
				WHERE mr.kind = 1 AND (r.name = $1 OR (r.name >= $2 AND r.name < $3))
		) d LEFT JOIN blobs b ON b.digest = d.digest`, project, project+"/", project+"0").Scan(&bytes, &blobs)
	if err != nil {
		return 0, 0, fmt.Errorf("quota: recount %s: %w", project, err)
	}
	return bytes, blobs, nil
}
