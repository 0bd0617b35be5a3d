package server

import (
	"context"
	"crypto/fips140"
	"log/slog"
	"strings"

	"github.com/berth-registry/berth/internal/meta"
)

// warnBcrypt tells the operator, at start in FIPS 140-3 mode, which accounts still have
// bcrypt hashes: FIPS mode refuses their logins until an administrator resets them.
func warnBcrypt(ctx context.Context, m *meta.Store, log *slog.Logger) error {
	if !fips140.Enabled() {
		return nil
	}
	users, robots, err := m.BcryptHashes(ctx, 20)
	if err != nil {
		return err
	}
	if len(users)+len(robots) == 0 {
		return nil
	}
	log.Warn("FIPS 140-3 mode refuses bcrypt password hashes: these accounts cannot log in until reset "+
		"(`berth admin user passwd NAME`, `berth admin robot rotate NAME`, or one login with Berth outside FIPS mode, which rehashes)",
		"users", strings.Join(users, ","), "robots", strings.Join(robots, ","), "listed_at_most", 20)
	return nil
}
