// Package session keeps web UI login sessions in the metadata database, so any replica
// serves any page and a logout ends a session everywhere at once. A session is a random
// token in an HttpOnly cookie; the database holds only the token's SHA-256, the user,
// the groups of the login, and the session's CSRF token, which every state-changing
// form must echo.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// Session is one login.
type Session struct {
	User    string
	Groups  []string
	CSRF    string
	Created time.Time
	Seen    time.Time
	Expires time.Time
	Remote  string
	Agent   string
	// hash identifies the row; the token itself is never stored.
	hash string
}

// ErrNotFound is returned for an unknown, expired or ended session.
var ErrNotFound = errors.New("session: not found")

// Store holds the ui_sessions table (migration 00024) over the shared SQL layer.
type Store struct{ db *meta.DB }

// NewStore returns the session store.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

// newToken returns n random bytes, URL-safe encoded.
func newToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Create stores a new session for s.User lasting ttl and returns its cookie token.
func (st *Store) Create(ctx context.Context, s *Session, ttl time.Duration) (string, error) {
	token := newToken(32)
	now := time.Now()
	s.hash, s.CSRF = hashToken(token), newToken(32)
	s.Created, s.Seen, s.Expires = now, now, now.Add(ttl)
	groups, err := json.Marshal(nonNil(s.Groups))
	if err != nil {
		return "", fmt.Errorf("session: groups: %w", err)
	}
	_, err = st.db.Exec(ctx, `INSERT INTO ui_sessions (token_hash, user_name, groups_json, csrf, created_at, seen_at, expires_at, remote, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		s.hash, s.User, string(groups), s.CSRF, now.UnixMilli(), now.UnixMilli(), s.Expires.UnixMilli(), s.Remote, s.Agent)
	if err != nil {
		return "", fmt.Errorf("session: create for %s: %w", s.User, err)
	}
	return token, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Lookup returns the live session a cookie token names. A session idle longer than idle
// counts as ended.
func (st *Store) Lookup(ctx context.Context, token string, idle time.Duration) (*Session, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrNotFound
	}
	s := &Session{hash: hashToken(token)}
	var groups string
	var created, seen, expires int64
	err := st.db.QueryRow(ctx, `SELECT user_name, groups_json, csrf, created_at, seen_at, expires_at, remote, user_agent
		FROM ui_sessions WHERE token_hash = $1`, s.hash).Scan(&s.User, &groups, &s.CSRF, &created, &seen, &expires, &s.Remote, &s.Agent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: lookup: %w", err)
	}
	s.Created, s.Seen, s.Expires = time.UnixMilli(created), time.UnixMilli(seen), time.UnixMilli(expires)
	now := time.Now()
	if !now.Before(s.Expires) || (idle > 0 && now.Sub(s.Seen) > idle) {
		return nil, ErrNotFound
	}
	if err := json.Unmarshal([]byte(groups), &s.Groups); err != nil {
		return nil, fmt.Errorf("session: groups of %s: %w", s.User, err)
	}
	return s, nil
}

// Touch records that the session was used now.
func (st *Store) Touch(ctx context.Context, s *Session) error {
	now := time.Now()
	if _, err := st.db.Exec(ctx, `UPDATE ui_sessions SET seen_at = $1 WHERE token_hash = $2`, now.UnixMilli(), s.hash); err != nil {
		return fmt.Errorf("session: touch: %w", err)
	}
	s.Seen = now
	return nil
}

// Delete ends one session.
func (st *Store) Delete(ctx context.Context, s *Session) error {
	if _, err := st.db.Exec(ctx, `DELETE FROM ui_sessions WHERE token_hash = $1`, s.hash); err != nil {
		return fmt.Errorf("session: delete: %w", err)
	}
	return nil
}

// DeleteUser ends every session of a user and says how many there were.
func (st *Store) DeleteUser(ctx context.Context, user string) (int64, error) {
	res, err := st.db.Exec(ctx, `DELETE FROM ui_sessions WHERE user_name = $1`, user)
	if err != nil {
		return 0, fmt.Errorf("session: delete sessions of %s: %w", user, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// List returns a user's live sessions, newest first.
func (st *Store) List(ctx context.Context, user string) ([]Session, error) {
	rows, err := st.db.Query(ctx, `SELECT token_hash, created_at, seen_at, expires_at, remote, user_agent FROM ui_sessions
		WHERE user_name = $1 AND expires_at > $2 ORDER BY created_at DESC LIMIT 100`, user, time.Now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("session: list for %s: %w", user, err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		s := Session{User: user}
		var created, seen, expires int64
		if err := rows.Scan(&s.hash, &created, &seen, &expires, &s.Remote, &s.Agent); err != nil {
			return nil, fmt.Errorf("session: list for %s: %w", user, err)
		}
		s.Created, s.Seen, s.Expires = time.UnixMilli(created), time.UnixMilli(seen), time.UnixMilli(expires)
		out = append(out, s)
	}
	return out, rows.Err()
}

// Prune deletes sessions that expired before now, or that have been idle longer than
// idle, and says how many.
func (st *Store) Prune(ctx context.Context, idle time.Duration) (int64, error) {
	now := time.Now()
	idleBefore := int64(0)
	if idle > 0 {
		idleBefore = now.Add(-idle).UnixMilli()
	}
	res, err := st.db.Exec(ctx, `DELETE FROM ui_sessions WHERE expires_at <= $1 OR seen_at < $2`, now.UnixMilli(), idleBefore)
	if err != nil {
		return 0, fmt.Errorf("session: prune: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
