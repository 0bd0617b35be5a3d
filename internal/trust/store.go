package trust

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/meta"
)

// ErrNotFound reports a policy that does not exist.
var ErrNotFound = errors.New("trust: policy not found")

// ErrConflict reports a second policy for a scope that already has one.
var ErrConflict = errors.New("trust: the scope already has a policy")

// Scope kinds a policy attaches to.
const (
	ScopeProject  = "project"
	ScopeUpstream = "upstream"
)

// Policy is a named policy attached to a project or a mirror upstream.
type Policy struct {
	Name      string             `json:"name"`
	ScopeKind string             `json:"scopeKind"`
	Scope     string             `json:"scope"`
	Spec      config.TrustPolicy `json:"policy"`
	Revision  int64              `json:"revision"`
	CreatedAt time.Time          `json:"createdAt"`
	UpdatedAt time.Time          `json:"updatedAt"`
	// FromConfig marks policies from the configuration file (read-only in the API).
	FromConfig bool `json:"fromConfig,omitempty"`
}

// Store holds policies, the generation counter and shared verdicts in the metadata
// database. Its tables are its own (migration 00012); it reads the registry's manifest
// tables only to find the indexes that list a manifest.
type Store struct{ db *meta.DB }

// NewStore returns the trust tables over the shared SQL layer.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

func (s *Store) bump(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `UPDATE trust_state SET generation = generation + 1 WHERE id = 1`)
	return err
}

// Generation is the counter that makes cached verdicts stale when it moves.
func (s *Store) Generation(ctx context.Context) (int64, error) {
	var g int64
	if err := s.db.QueryRow(ctx, `SELECT generation FROM trust_state WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("trust: generation: %w", err)
	}
	return g, nil
}

// Bump moves the generation (a signature arrived) and returns the new value.
func (s *Store) Bump(ctx context.Context) (int64, error) {
	var g int64
	err := s.db.ExecQueryRow(ctx, `UPDATE trust_state SET generation = generation + 1 WHERE id = 1 RETURNING generation`).Scan(&g)
	if err != nil {
		return 0, fmt.Errorf("trust: bump generation: %w", err)
	}
	return g, nil
}

// Put creates or replaces a policy by name; its revision increases on every change.
func (s *Store) Put(ctx context.Context, p Policy) (Policy, error) {
	spec, err := json.Marshal(p.Spec)
	if err != nil {
		return Policy{}, err
	}
	t := time.Now().UnixMilli()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT name FROM trust_policies WHERE scope_kind = $1 AND scope = $2`, p.ScopeKind, p.Scope).Scan(&other)
		if err == nil && other != p.Name {
			return fmt.Errorf("%w: %s %s has policy %s", ErrConflict, p.ScopeKind, p.Scope, other)
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO trust_policies (name, scope_kind, scope, spec, revision, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 1, $5, $5)
			ON CONFLICT (name) DO UPDATE SET scope_kind = excluded.scope_kind, scope = excluded.scope, spec = excluded.spec,
				revision = trust_policies.revision + 1, updated_at = excluded.updated_at
			RETURNING revision`, p.Name, p.ScopeKind, p.Scope, string(spec), t).Scan(&p.Revision); err != nil {
			return fmt.Errorf("trust: put policy %s: %w", p.Name, err)
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return Policy{}, err
	}
	return s.Get(ctx, p.Name)
}

// Delete removes a policy.
func (s *Store) Delete(ctx context.Context, name string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM trust_policies WHERE name = $1`, name)
		if err != nil {
			return fmt.Errorf("trust: delete policy %s: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return s.bump(ctx, tx)
	})
}

const policyColumns = `name, scope_kind, scope, spec, revision, created_at, updated_at`

// Get returns one policy.
func (s *Store) Get(ctx context.Context, name string) (Policy, error) {
	rows, err := s.db.Query(ctx, `SELECT `+policyColumns+` FROM trust_policies WHERE name = $1`, name)
	if err != nil {
		return Policy{}, fmt.Errorf("trust: get policy: %w", err)
	}
	list, err := scanPolicies(rows)
	if err != nil {
		return Policy{}, err
	}
	if len(list) == 0 {
		return Policy{}, ErrNotFound
	}
	return list[0], nil
}

// List returns every stored policy by name.
func (s *Store) List(ctx context.Context) ([]Policy, error) {
	rows, err := s.db.Query(ctx, `SELECT `+policyColumns+` FROM trust_policies ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("trust: list policies: %w", err)
	}
	return scanPolicies(rows)
}

func scanPolicies(rows *sql.Rows) ([]Policy, error) {
	defer rows.Close()
	var out []Policy
	for rows.Next() {
		var p Policy
		var spec string
		var created, updated int64
		if err := rows.Scan(&p.Name, &p.ScopeKind, &p.Scope, &spec, &p.Revision, &created, &updated); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(spec), &p.Spec); err != nil {
			return nil, fmt.Errorf("trust: policy %s: %w", p.Name, err)
		}
		p.CreatedAt, p.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
		out = append(out, p)
	}
	return out, rows.Err()
}

// storedVerdict is a verdict as shared between replicas.
type storedVerdict struct {
	Generation int64
	Verdict    Verdict
}

// Verdict returns the stored verdict for a manifest, if any.
func (s *Store) Verdict(ctx context.Context, repo, digest string) (storedVerdict, bool, error) {
	var sv storedVerdict
	var detail string
	var passed int
	err := s.db.QueryRow(ctx, `SELECT generation, passed, detail FROM trust_verdicts WHERE repository = $1 AND digest = $2`, repo, digest).
		Scan(&sv.Generation, &passed, &detail)
	if errors.Is(err, sql.ErrNoRows) {
		return sv, false, nil
	}
	if err != nil {
		return sv, false, fmt.Errorf("trust: verdict: %w", err)
	}
	if err := json.Unmarshal([]byte(detail), &sv.Verdict); err != nil {
		return sv, false, nil // unreadable: verify again
	}
	return sv, true, nil
}

// SaveVerdict records a verdict reached at generation g.
func (s *Store) SaveVerdict(ctx context.Context, repo, digest string, g int64, v Verdict) error {
	detail, err := json.Marshal(v)
	if err != nil {
		return err
	}
	passed := 0
	if v.Passed {
		passed = 1
	}
	_, err = s.db.Exec(ctx, `INSERT INTO trust_verdicts (repository, digest, generation, passed, detail, verified_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (repository, digest) DO UPDATE SET generation = excluded.generation, passed = excluded.passed,
			detail = excluded.detail, verified_at = excluded.verified_at`, repo, digest, g, passed, string(detail), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("trust: save verdict: %w", err)
	}
	return nil
}

// Parents lists the indexes in repo that list digest as a child.
func (s *Store) Parents(ctx context.Context, repo, digest string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT m.digest FROM manifest_references r
		JOIN manifests m ON m.id = r.manifest_id JOIN repositories p ON p.id = m.repository_id
		WHERE p.name = $1 AND r.digest = $2 AND r.kind = 2 LIMIT 16`, repo, digest)
	if err != nil {
		return nil, fmt.Errorf("trust: parents: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
