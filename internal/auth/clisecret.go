package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/passwd"
)

// CLI secrets are the passwords of users who log in through an OpenID provider (source
// "oidc"): they have no Berth password, yet docker login, crane and helm speak Basic
// auth. A secret is 32 random bytes, shown once when made; only its SHA-256 is stored —
// the secret has full entropy, so a slow password hash adds nothing, and SHA-256 is
// FIPS-approved. Table cli_secrets (migration 00025).

// ErrNotOIDCUser reports a CLI secret asked for an account that logs in with a password.
var ErrNotOIDCUser = errors.New("auth: only users who log in through OIDC have a CLI secret; others use their password")

// cliSecretPrefix marks Berth CLI secrets, so a leaked one is recognisable (secret
// scanners) and is never mistaken for a password.
const cliSecretPrefix = "berth_cli_"

// CLISecretStatus is what may be shown about a user's CLI secret: never the secret.
type CLISecretStatus struct {
	Exists    bool
	CreatedAt time.Time
}

// CLISecrets manages users' CLI secrets. Obtain it from Service.CLISecrets.
type CLISecrets struct{ s *Service }

// CLISecrets returns the CLI secret manager (for the admin API and the web UI).
func (s *Service) CLISecrets() *CLISecrets { return &CLISecrets{s: s} }

// ExternalGroups reports the groups an identity provider asserted for a user at their
// last login (package oidc implements it); nil groups and no error for none.
type ExternalGroups interface {
	LastGroups(ctx context.Context, user string) ([]string, error)
}

// SetExternalGroups makes OIDC users' stored groups part of their principal on every
// request (Basic with the CLI secret, tokens, the UI). Call it before serving.
func (s *Service) SetExternalGroups(g ExternalGroups) { s.external = g }

// Rotate makes a new CLI secret for the OIDC user, replacing any previous one, and
// returns it: it is never shown again. The old secret stops working at once on this
// replica; other replicas may accept it until their login cache (auth.basicCacheTTL)
// expires, and tokens issued with it live out their lifetime.
func (c *CLISecrets) Rotate(ctx context.Context, user string) (string, error) {
	if err := c.oidcUser(ctx, user); err != nil {
		return "", err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("auth: cli secret: %w", err)
	}
	secret := cliSecretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	_, err := c.s.meta.DB().Exec(ctx, `INSERT INTO cli_secrets (user_name, secret_hash, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_name) DO UPDATE SET secret_hash = excluded.secret_hash, created_at = excluded.created_at`,
		user, hashCLISecret(secret), time.Now().UnixMilli())
	if err != nil {
		return "", fmt.Errorf("auth: store cli secret of %s: %w", user, err)
	}
	c.s.Forget(user)
	// The caller records the change: it knows who asked (the user, an administrator).
	return secret, nil
}

// Status tells whether the user has a CLI secret and since when.
func (c *CLISecrets) Status(ctx context.Context, user string) (CLISecretStatus, error) {
	_, created, err := c.lookup(ctx, user)
	if errors.Is(err, meta.ErrNotFound) {
		return CLISecretStatus{}, nil
	}
	if err != nil {
		return CLISecretStatus{}, err
	}
	return CLISecretStatus{Exists: true, CreatedAt: created}, nil
}

// Revoke deletes the user's CLI secret (no error when there is none); like Rotate, it
// takes effect at once on this replica and within the login cache TTL elsewhere.
func (c *CLISecrets) Revoke(ctx context.Context, user string) error {
	if _, err := c.s.meta.DB().Exec(ctx, `DELETE FROM cli_secrets WHERE user_name = $1`, user); err != nil {
		return fmt.Errorf("auth: revoke cli secret of %s: %w", user, err)
	}
	c.s.Forget(user)
	return nil
}

func (c *CLISecrets) oidcUser(ctx context.Context, user string) error {
	u, err := c.s.meta.UserByName(ctx, user)
	if err != nil {
		return err
	}
	if u.Source != "oidc" {
		return ErrNotOIDCUser
	}
	return nil
}

func (c *CLISecrets) lookup(ctx context.Context, user string) (hash string, created time.Time, err error) {
	var ms int64
	err = c.s.meta.DB().QueryRow(ctx, `SELECT secret_hash, created_at FROM cli_secrets WHERE user_name = $1`, user).Scan(&hash, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, meta.ErrNotFound
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: cli secret of %s: %w", user, err)
	}
	return hash, time.UnixMilli(ms), nil
}

func hashCLISecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// verifyCLISecret authenticates an OIDC user by their CLI secret. A secret older than
// the account belonged to an earlier account of the same name and opens nothing.
func (s *Service) verifyCLISecret(ctx context.Context, u meta.User, secret string) (*Principal, error) {
	hash, created, err := s.CLISecrets().lookup(ctx, u.Name)
	if errors.Is(err, meta.ErrNotFound) {
		hash = "" // compared anyway, so the answer takes as long
	} else if err != nil {
		return nil, err
	}
	got := hashCLISecret(secret)
	match := subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
	if !match || u.Disabled || created.Before(u.CreatedAt.Truncate(time.Millisecond)) {
		// A failure costs what a wrong password costs, so timing does not tell OIDC
		// accounts apart.
		passwd.Waste(secret)
		return nil, ErrInvalidCredentials
	}
	groups, err := s.externalGroups(ctx, u.Name)
	if err != nil {
		return nil, err
	}
	return &Principal{Kind: "user", Name: u.Name, Admin: u.Admin, Groups: groups}, nil
}

// externalGroups are an OIDC user's groups from their last login.
func (s *Service) externalGroups(ctx context.Context, user string) ([]string, error) {
	if s.external == nil {
		return nil, nil
	}
	g, err := s.external.LastGroups(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("auth: groups of %s: %w", user, err)
	}
	return g, nil
}
