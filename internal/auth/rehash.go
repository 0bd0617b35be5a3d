package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/passwd"
)

// credentialsErr maps a passwd.Verify failure to the login error. Every failure is
// ErrInvalidCredentials for the client and the lockout; a bcrypt hash refused in FIPS
// mode keeps passwd's explanation, which lands in the audit trail and the log so the
// administrator learns how to reset it.
func credentialsErr(err error) error {
	if errors.Is(err, passwd.ErrBcryptFIPS) {
		return fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
	}
	return ErrInvalidCredentials
}

// rehashUser replaces a user's legacy bcrypt hash with a PBKDF2 one after a successful
// login (outside FIPS mode), so a later switch to FIPS mode finds approved hashes. A
// failure only costs the upgrade: the login has succeeded.
func (s *Service) rehashUser(ctx context.Context, u meta.User, password string) {
	h, err := passwd.Hash(password)
	if err == nil {
		_, err = s.meta.ReplaceUserHash(ctx, u.Name, u.PasswordHash, h)
	}
	if err != nil {
		s.log.Warn("rehashing a bcrypt password", "user", u.Name, "err", err)
		return
	}
	s.log.Info("rehashed a bcrypt password with PBKDF2-HMAC-SHA-256", "user", u.Name)
}

// rehashRobot is rehashUser for a robot's secret.
func (s *Service) rehashRobot(ctx context.Context, r meta.Robot, secret string) {
	h, err := passwd.Hash(secret)
	if err == nil {
		_, err = s.meta.ReplaceRobotHash(ctx, r.Name, r.SecretHash, h)
	}
	if err != nil {
		s.log.Warn("rehashing a bcrypt robot secret", "robot", r.Name, "err", err)
		return
	}
	s.log.Info("rehashed a bcrypt robot secret with PBKDF2-HMAC-SHA-256", "robot", r.Name)
}
