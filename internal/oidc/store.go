package oidc

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// Store holds the OIDC tables (migration 00025) over the shared SQL layer: identities
// (issuer + subject → user, last groups, last login) and logins in flight.
type Store struct{ db *meta.DB }

// NewStore returns the store.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

// Identity links a provider's subject to a Berth user.
type Identity struct {
	Issuer, Subject, User string
	Groups                []string
	// AdminByGroup: the user's admin rights came from auth.oidc.adminGroups.
	AdminByGroup bool
	CreatedAt    time.Time
	LastLogin    time.Time
}

// ErrNotFound reports a missing identity or login.
var ErrNotFound = errors.New("oidc: not found")

// Identity returns the link of (issuer, subject).
func (s *Store) Identity(ctx context.Context, issuer, subject string) (Identity, error) {
	id := Identity{Issuer: issuer, Subject: subject}
	var groups string
	var admin int
	var created, last int64
	err := s.db.QueryRow(ctx, `SELECT user_name, groups_json, admin_by_group, created_at, last_login FROM oidc_identities
		WHERE issuer = $1 AND subject = $2`, issuer, subject).Scan(&id.User, &groups, &admin, &created, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return Identity{}, ErrNotFound
	}
	if err != nil {
		return Identity{}, fmt.Errorf("oidc: identity: %w", err)
	}
	if err := json.Unmarshal([]byte(groups), &id.Groups); err != nil {
		return Identity{}, fmt.Errorf("oidc: identity groups: %w", err)
	}
	id.AdminByGroup, id.CreatedAt, id.LastLogin = admin == 1, time.UnixMilli(created), time.UnixMilli(last)
	return id, nil
}

// Save writes the identity (created or updated at a login).
func (s *Store) Save(ctx context.Context, id Identity) error {
	groups, err := json.Marshal(nonNil(id.Groups))
	if err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	_, err = s.db.Exec(ctx, `INSERT INTO oidc_identities (issuer, subject, user_name, groups_json, admin_by_group, created_at, last_login)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (issuer, subject) DO UPDATE SET user_name = excluded.user_name, groups_json = excluded.groups_json,
			admin_by_group = excluded.admin_by_group, last_login = excluded.last_login`,
		id.Issuer, id.Subject, id.User, string(groups), b2i(id.AdminByGroup), now)
	if err != nil {
		return fmt.Errorf("oidc: save identity of %s: %w", id.User, err)
	}
	return nil
}

// ForgetUser deletes every identity linked to user (its account was deleted, and a
// new one of that name is being made).
func (s *Store) ForgetUser(ctx context.Context, user string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM oidc_identities WHERE user_name = $1`, user); err != nil {
		return fmt.Errorf("oidc: forget identities of %s: %w", user, err)
	}
	return nil
}

// LastGroups returns the groups of the user's latest OIDC login (auth.ExternalGroups).
func (s *Store) LastGroups(ctx context.Context, user string) ([]string, error) {
	var groups string
	err := s.db.QueryRow(ctx, `SELECT groups_json FROM oidc_identities WHERE user_name = $1 ORDER BY last_login DESC LIMIT 1`, user).Scan(&groups)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("oidc: groups of %s: %w", user, err)
	}
	var out []string
	if err := json.Unmarshal([]byte(groups), &out); err != nil {
		return nil, fmt.Errorf("oidc: groups of %s: %w", user, err)
	}
	return out, nil
}

// pending is a login in flight, between the redirect to the provider and the callback.
type pending struct {
	Verifier, Nonce, Next string
	Expires               time.Time
}

// maxPending bounds the logins in flight (all replicas together).
const maxPending = 10000

var errTooManyLogins = errors.New("oidc: too many logins in flight")

// putLogin stores a login in flight under the hash of its state, and drops expired ones.
func (s *Store) putLogin(ctx context.Context, stateHash string, p pending) error {
	now := time.Now().UnixMilli()
	if _, err := s.db.Exec(ctx, `DELETE FROM oidc_logins WHERE expires_at < $1`, now); err != nil {
		return fmt.Errorf("oidc: prune logins: %w", err)
	}
	// Anyone may start a login, so logins in flight are bounded: a flood of them must not
	// grow the table without limit (each lives LoginTTL at most).
	var n int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM oidc_logins`).Scan(&n); err != nil {
		return fmt.Errorf("oidc: count logins: %w", err)
	}
	if n >= maxPending {
		return errTooManyLogins
	}
	if _, err := s.db.Exec(ctx, `INSERT INTO oidc_logins (state_hash, verifier, nonce, next_path, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		stateHash, p.Verifier, p.Nonce, p.Next, p.Expires.UnixMilli()); err != nil {
		return fmt.Errorf("oidc: store login: %w", err)
	}
	return nil
}

// takeLogin deletes and returns the login in flight: a state is good for one callback,
// whichever replica serves it.
func (s *Store) takeLogin(ctx context.Context, stateHash string) (pending, error) {
	var p pending
	var exp int64
	err := s.db.ExecQueryRow(ctx, `DELETE FROM oidc_logins WHERE state_hash = $1 RETURNING verifier, nonce, next_path, expires_at`, stateHash).
		Scan(&p.Verifier, &p.Nonce, &p.Next, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return pending{}, ErrNotFound
	}
	if err != nil {
		return pending{}, fmt.Errorf("oidc: take login: %w", err)
	}
	p.Expires = time.UnixMilli(exp)
	return p, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
