package meta

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"

	"github.com/berth-registry/berth/internal/metacache"
)

// readCache puts metacache in front of GetManifest and RepositoryBlob on SQLite, where
// this process is the only writer, so it can know of every write that could make a
// cached answer wrong:
//
//   - every write through the writer connection (the Store's own, the capability stores'
//     through DB, and every write transaction) sets dirty once it has committed;
//   - triggers (migration 00026) count the writes that change what the cache holds,
//     whoever issued them and including cascades;
//   - the first cached read after a write reads that count and flushes when it moved.
//
// So a write is reflected by every read that starts after the write returned, and a
// read racing the write can at worst answer as of just before it. PostgreSQL has no
// cache: other replicas write there, and each read stays one exact query.
type readCache struct {
	c     *metacache.Cache
	dirty atomic.Bool
	mu    sync.Mutex // held by the one reader checking the count
	seen  int64
}

// cache returns the cache, valid for reads starting now, or nil when there is none or
// the database cannot say whether it is still right.
func (s *Store) cache(ctx context.Context) *metacache.Cache {
	rc := s.rc
	if rc == nil {
		return nil
	}
	if rc.dirty.Load() {
		// One reader checks; the others meanwhile read the database (exact, and no
		// queue of readers behind one query while pushes keep writing).
		if !rc.mu.TryLock() {
			return nil
		}
		defer rc.mu.Unlock()
		if rc.dirty.Swap(false) {
			var n int64
			if err := s.read(ctx, `SELECT n FROM cache_generation WHERE id = 1`).Scan(&n); err != nil {
				rc.dirty.Store(true) // check again next time; serve from the database now
				return nil
			}
			if n != rc.seen {
				rc.c.Flush()
				rc.seen = n
			}
		}
	}
	return rc.c
}

// wrote records that a write has committed (or may have: an error after the statement
// ran still counts), so the next cached read checks the count first.
func (s *Store) wrote() {
	if s.rc != nil {
		s.rc.dirty.Store(true)
	}
}

// CacheStats reports the read cache's counters (zero when there is none).
func (s *Store) CacheStats() metacache.Stats {
	if s.rc == nil {
		return metacache.Stats{}
	}
	return s.rc.c.Stats()
}

// exec runs one write statement on the writer outside a transaction.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	defer s.wrote()
	return s.w.ExecContext(ctx, query, args...)
}

// WriteRow is the row of a write statement with RETURNING; Scan completes the write.
type WriteRow struct {
	row *sql.Row
	s   *Store
}

// Scan copies the returned columns into dest, as sql.Row's Scan does.
func (r WriteRow) Scan(dest ...any) error {
	defer r.s.wrote()
	return r.row.Scan(dest...)
}

// execRow runs one write statement returning a row on the writer.
func (s *Store) execRow(ctx context.Context, query string, args ...any) WriteRow {
	return WriteRow{row: s.w.QueryRowContext(ctx, query, args...), s: s}
}
