package meta

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
)

// TryLease takes or renews the named lease for holder until now+ttl. It reports whether
// holder has it: another holder's unexpired lease is left alone. One statement, so two
// replicas racing for a free lease cannot both win.
func (s *Store) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	t := now()
	var got string
	err := s.relaxed(ctx, func(w writer) error {
		return w.QueryRowContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at < $4 OR leases.holder = excluded.holder
		RETURNING holder`, name, holder, t+ttl.Milliseconds(), t).Scan(&got)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // held by someone else
	}
	if err != nil {
		return false, fmt.Errorf("meta: lease %s: %w", name, err)
	}
	return got == holder, nil
}

// ReleaseLease gives the lease up early (on shutdown) if holder has it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	err := s.relaxed(ctx, func(w writer) error {
		_, err := w.ExecContext(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: release lease %s: %w", name, err)
	}
	return nil
}

// writer is what lease statements run on: the writer pool, or one pinned connection.
type writer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// relaxed runs a lease statement. A lease is a claim that expires, never acknowledged
// data, so on SQLite it is written with synchronous=NORMAL: no fsync, which a mirror's
// cold blob would otherwise wait for before its first byte. Under WAL a process crash
// still keeps the row; a power loss may forget it, which only ends the claim early (the
// next FULL commit or checkpoint makes it durable anyway). The writer's own setting is
// restored before the connection serves any other write, or the connection is dropped.
func (s *Store) relaxed(ctx context.Context, fn func(writer) error) error {
	defer s.wrote()
	if s.dialect != SQLite || s.sync == "NORMAL" {
		return fn(s.w)
	}
	c, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "PRAGMA synchronous=NORMAL"); err != nil {
		return err
	}
	defer func() {
		if _, err := c.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous="+s.sync); err != nil {
			_ = c.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return fn(c)
}
