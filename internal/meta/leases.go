package meta

import (
	"context"
	"database/sql"
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
	err := s.execRow(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at < $4 OR leases.holder = excluded.holder
		RETURNING holder`, name, holder, t+ttl.Milliseconds(), t).Scan(&got)
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
	if _, err := s.exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("meta: release lease %s: %w", name, err)
	}
	return nil
}
