package meta

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// sqliteFull is SQLITE_FULL, the primary result code of "database or disk is full";
// extended codes keep it in their low byte.
const sqliteFull = 13

// pgDiskFull is PostgreSQL's SQLSTATE disk_full (class 53, insufficient resources).
const pgDiskFull = "53100"

// IsDiskFull tells whether err means the database could not write for lack of space
// (SQLITE_FULL, PostgreSQL 53100, or ENOSPC from the file system), rather than that a
// statement was wrong: requests then answer the storage-full error, not 500, and work
// again once space is freed.
func IsDiskFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) {
		return true
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		return sqliteErr.Code()&0xff == sqliteFull
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgDiskFull
	}
	return false
}

// StoredBytes is what the blob store holds by the database's account: committed blobs
// plus the bytes upload sessions have recorded. A byte budget on a driver that cannot
// report free space is measured against it.
func (s *Store) StoredBytes(ctx context.Context) (int64, error) {
	var blobs, uploads int64
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM blobs`).Scan(&blobs); err != nil {
		return 0, fmt.Errorf("meta: stored bytes: %w", err)
	}
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM uploads`).Scan(&uploads); err != nil {
		return 0, fmt.Errorf("meta: upload bytes: %w", err)
	}
	return blobs + uploads, nil
}
