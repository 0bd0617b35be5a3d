package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Upload is an in-progress blob upload session. Size bytes have been acknowledged to the
// client; HashState is the marshalled hash of exactly those bytes, so the session resumes
// on any replica, after any restart, without re-reading them.
type Upload struct {
	ID         string
	Repository string
	Handle     string // blob store handle
	Size       int64
	HashState  []byte
	// DriverState is the blob driver's bookkeeping for the acknowledged bytes.
	DriverState []byte
	StartedAt   time.Time
	UpdatedAt   time.Time
	// Owner is who opened the session, for the session limits (package limits); its
	// project is derived from Repository when the row is written.
	Owner string
}

const insertUpload = `INSERT INTO uploads (id, repository_id, handle, size, hash_state, driver_state, started_at, updated_at, owner, project)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)`

// CreateUpload records a new session, creating the repository if needed.

func (s *Store) CreateUpload(ctx context.Context, u Upload) error {
	return s.inTx(ctx, func(sqltx *sql.Tx) error {
		tx := s.prepared(sqltx)
		id, err := ensureRepository(ctx, tx, u.Repository)
		if err != nil {
			return err
		}
		t := now()
		project, _, _ := strings.Cut(u.Repository, "/")
		if _, err := tx.ExecContext(ctx, insertUpload, u.ID, id, u.Handle, u.Size, u.HashState, u.DriverState, t, u.Owner, project); err != nil {
			return fmt.Errorf("meta: create upload: %w", err)
		}
		return nil
	})
}

// GetUpload returns the session if it belongs to the repository.
func (s *Store) GetUpload(ctx context.Context, repo, id string) (Upload, error) {
	u := Upload{ID: id, Repository: repo}
	var started, updated int64
	err := s.read(ctx, `SELECT u.handle, u.size, u.hash_state, u.driver_state, u.started_at, u.updated_at FROM uploads u
		JOIN repositories r ON r.id = u.repository_id WHERE u.id = $1 AND r.name = $2`, id, repo).
		Scan(&u.Handle, &u.Size, &u.HashState, &u.DriverState, &started, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Upload{}, ErrNotFound
	}
	if err != nil {
		return Upload{}, fmt.Errorf("meta: upload %s: %w", id, err)
	}
	u.StartedAt, u.UpdatedAt = time.UnixMilli(started), time.UnixMilli(updated)
	return u, nil
}

// ErrConflict reports an optimistic-concurrency loss: the row changed since it was read.
var ErrConflict = errors.New("meta: concurrent update")

// AdvanceUpload records that the session grew from prevSize to u.Size with hash state
// u.HashState. It fails with ErrConflict when another request advanced it first.
func (s *Store) AdvanceUpload(ctx context.Context, u Upload, prevSize int64) error {
	res, err := s.exec(ctx, `UPDATE uploads SET size = $1, hash_state = $2, driver_state = $3, updated_at = $4
		WHERE id = $5 AND size = $6`, u.Size, u.HashState, u.DriverState, now(), u.ID, prevSize)
	if err != nil {
		return fmt.Errorf("meta: advance upload: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrConflict
	}
	return nil
}

// DeleteUpload ends a session.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	res, err := s.exec(ctx, `DELETE FROM uploads WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("meta: delete upload: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// StaleUploads lists sessions untouched since before, oldest first, at most n.
func (s *Store) StaleUploads(ctx context.Context, before time.Time, n int) ([]Upload, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT u.id, r.name, u.handle, u.size FROM uploads u
		JOIN repositories r ON r.id = u.repository_id WHERE u.updated_at < $1 ORDER BY u.updated_at LIMIT $2`,
		before.UnixMilli(), n)
	if err != nil {
		return nil, fmt.Errorf("meta: stale uploads: %w", err)
	}
	defer rows.Close()
	var out []Upload
	for rows.Next() {
		var u Upload
		if err := rows.Scan(&u.ID, &u.Repository, &u.Handle, &u.Size); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UploadHandles returns every upload handle the database knows, for sweeping orphaned
// upload files left by a crash before their row was written.
func (s *Store) UploadHandles(ctx context.Context) (map[string]bool, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT handle FROM uploads`)
	if err != nil {
		return nil, fmt.Errorf("meta: upload handles: %w", err)
	}
	hs, err := scanStrings(rows)
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(hs))
	for _, h := range hs {
		m[h] = true
	}
	return m, nil
}
