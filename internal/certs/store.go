// Package certs provides Berth's TLS certificates: from files (re-read on SIGHUP), from
// a self-signed CA that Berth creates and keeps in the database so every replica serves
// the same chain, or from an ACME CA with the account and certificates cached in the
// database. Nodes trust the self-signed CA through the containerd certs.d tree that
// `berth mirror config containerd --dir` writes.
package certs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// ErrNotFound reports TLS material that is not stored.
var ErrNotFound = errors.New("certs: not stored")

// Store keeps named TLS material (PEM or autocert cache entries) in table tls_material
// (migration 00017).
type Store struct{ db *meta.DB }

// NewStore returns the TLS material table over the shared SQL layer.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

// Get returns the material stored under name and when it was last written.
func (s *Store) Get(ctx context.Context, name string) ([]byte, time.Time, error) {
	var data string
	var at int64
	err := s.db.QueryRow(ctx, `SELECT data, updated_at FROM tls_material WHERE name = $1`, name).Scan(&data, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, ErrNotFound
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("certs: read %s: %w", name, err)
	}
	return []byte(data), time.UnixMilli(at), nil
}

// Create stores material under name unless some replica stored it first; created
// false means the caller must use what is stored.
func (s *Store) Create(ctx context.Context, name string, data []byte) (created bool, err error) {
	res, err := s.db.Exec(ctx, `INSERT INTO tls_material (name, data, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		name, string(data), time.Now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("certs: store %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Replace overwrites name only if it was last written at prev (what the caller read):
// of replicas renewing at once, one wins and the others adopt its certificate.
func (s *Store) Replace(ctx context.Context, name string, data []byte, prev time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, `UPDATE tls_material SET data = $1, updated_at = $2 WHERE name = $3 AND updated_at = $4`,
		string(data), time.Now().UnixMilli(), name, prev.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("certs: replace %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Put writes name unconditionally (autocert's cache semantics).
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	_, err := s.db.Exec(ctx, `INSERT INTO tls_material (name, data, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
		name, string(data), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("certs: store %s: %w", name, err)
	}
	return nil
}

// Delete removes name.
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM tls_material WHERE name = $1`, name); err != nil {
		return fmt.Errorf("certs: delete %s: %w", name, err)
	}
	return nil
}

// StoredCA returns the self-signed CA certificate (PEM) Berth created, for nodes to
// install; ErrNotFound until a server in mode self-signed has started once.
func StoredCA(ctx context.Context, db *meta.DB) ([]byte, error) {
	data, _, err := NewStore(db).Get(ctx, caName)
	if err != nil {
		return nil, err
	}
	a, err := parseAuthority(data)
	if err != nil {
		return nil, err
	}
	return a.pem, nil
}
