package tagrules

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// ErrNotFound reports a policy or rule that does not exist.
var ErrNotFound = errors.New("tagrules: not found")

// ErrExists reports an immutable rule that is already there.
var ErrExists = errors.New("tagrules: the project already has this rule")

// Store holds retention policies and immutable rules (migration 00014) and reads the
// registry's tag and manifest tables; it writes them only to delete a tag retention
// decided on. It is safe for concurrent use.
type Store struct{ db *meta.DB }

// NewStore returns the tag rules store over the shared SQL layer.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

// StoredPolicy is a project's retention policy with its last run.
type StoredPolicy struct {
	Project    string    `json:"project"`
	Policy     Policy    `json:"policy"`
	UpdatedAt  time.Time `json:"updatedAt"`
	LastRunAt  time.Time `json:"lastRunAt,omitzero"`
	LastResult string    `json:"lastResult,omitempty"`
}

// PutPolicy creates or replaces a project's retention policy.
func (s *Store) PutPolicy(ctx context.Context, project string, p Policy) error {
	spec, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("tagrules: encode policy: %w", err)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO retention_policies (project, spec, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (project) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
		project, string(spec), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("tagrules: put policy of %s: %w", project, err)
	}
	return nil
}

// DeletePolicy removes a project's retention policy.
func (s *Store) DeletePolicy(ctx context.Context, project string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM retention_policies WHERE project = $1`, project)
	if err != nil {
		return fmt.Errorf("tagrules: delete policy of %s: %w", project, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Policies lists the retention policies of project, or of every project when it is "".
func (s *Store) Policies(ctx context.Context, project string) ([]StoredPolicy, error) {
	rows, err := s.db.Query(ctx, `SELECT project, spec, updated_at, last_run_at, last_result FROM retention_policies
		WHERE $1 = '' OR project = $1 ORDER BY project`, project)
	if err != nil {
		return nil, fmt.Errorf("tagrules: list policies: %w", err)
	}
	defer rows.Close()
	var out []StoredPolicy
	for rows.Next() {
		var p StoredPolicy
		var spec string
		var updated, ran int64
		if err := rows.Scan(&p.Project, &spec, &updated, &ran, &p.LastResult); err != nil {
			return nil, fmt.Errorf("tagrules: list policies: %w", err)
		}
		if err := json.Unmarshal([]byte(spec), &p.Policy); err != nil {
			return nil, fmt.Errorf("tagrules: policy of %s: %w", p.Project, err)
		}
		p.UpdatedAt = time.UnixMilli(updated)
		if ran > 0 {
			p.LastRunAt = time.UnixMilli(ran)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Policy returns a project's retention policy.
func (s *Store) Policy(ctx context.Context, project string) (StoredPolicy, error) {
	ps, err := s.Policies(ctx, project)
	if err != nil {
		return StoredPolicy{}, err
	}
	if project == "" || len(ps) == 0 {
		return StoredPolicy{}, ErrNotFound
	}
	return ps[0], nil
}

// RecordRun stores the summary of a policy's run.
func (s *Store) RecordRun(ctx context.Context, project, summary string, at time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE retention_policies SET last_run_at = $2, last_result = $3 WHERE project = $1`,
		project, at.UnixMilli(), summary)
	if err != nil {
		return fmt.Errorf("tagrules: record run of %s: %w", project, err)
	}
	return nil
}

// ProjectTags lists every tag in the project's repositories with its push time (the
// tag's last write) and its manifest's last pull.
func (s *Store) ProjectTags(ctx context.Context, project string) ([]TagInfo, error) {
	// project+"/" ≤ name < project+"0" is every repository under the project ('0' follows '/').
	rows, err := s.db.Query(ctx, `SELECT r.name, t.name, t.manifest_digest, t.updated_at, COALESCE(m.last_pulled_at, 0)
		FROM tags t JOIN repositories r ON r.id = t.repository_id
		LEFT JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
		WHERE r.name >= $1 AND r.name < $2 ORDER BY r.name, t.name`, project+"/", project+"0")
	if err != nil {
		return nil, fmt.Errorf("tagrules: tags of %s: %w", project, err)
	}
	defer rows.Close()
	var out []TagInfo
	for rows.Next() {
		var t TagInfo
		var pushed, pulled int64
		if err := rows.Scan(&t.Repository, &t.Tag, &t.Digest, &pushed, &pulled); err != nil {
			return nil, fmt.Errorf("tagrules: tags of %s: %w", project, err)
		}
		t.Pushed, t.Pulled = time.UnixMilli(pushed), time.UnixMilli(pulled)
		if pulled == 0 { // a manifest never pulled counts as pulled when pushed
			t.Pulled = t.Pushed
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteTag deletes a tag only while it still names digest: a tag pushed again since
// retention decided is newer than the decision and stays. The deletion queues GC's
// review of the manifest (migration 00008's triggers).
// The deletion is a tag.deleted event too (meta's change hook, in the same transaction).
func (s *Store) DeleteTag(ctx context.Context, repo, tag, digest string) (bool, error) {
	var deleted bool
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE name = $2 AND manifest_digest = $3
			AND repository_id = (SELECT id FROM repositories WHERE name = $1)`, repo, tag, digest)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		deleted = true
		return s.db.Changed(ctx, tx, meta.Change{Kind: meta.TagDeleted, Repository: repo, Digest: digest, Tags: []string{tag}})
	})
	if err != nil {
		return false, fmt.Errorf("tagrules: delete tag %s:%s: %w", repo, tag, err)
	}
	return deleted, nil
}

// AddImmutable records an immutable rule and returns it with its id.
func (s *Store) AddImmutable(ctx context.Context, r ImmutableRule) (ImmutableRule, error) {
	r.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	var exists int
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM immutable_rules WHERE project = $1 AND tags = $2 AND repositories = $3`,
		r.Project, r.Tags, r.Repositories).Scan(&exists)
	if err != nil {
		return r, fmt.Errorf("tagrules: add immutable rule: %w", err)
	}
	if exists > 0 {
		return r, ErrExists
	}
	err = s.db.ExecQueryRow(ctx, `INSERT INTO immutable_rules (project, tags, repositories, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		r.Project, r.Tags, r.Repositories, r.CreatedAt.UnixMilli()).Scan(&r.ID)
	if err != nil {
		return r, fmt.Errorf("tagrules: add immutable rule: %w", err)
	}
	return r, nil
}

// DeleteImmutable removes the project's immutable rule id.
func (s *Store) DeleteImmutable(ctx context.Context, project string, id int64) error {
	res, err := s.db.Exec(ctx, `DELETE FROM immutable_rules WHERE project = $1 AND id = $2`, project, id)
	if err != nil {
		return fmt.Errorf("tagrules: delete immutable rule %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ImmutableRules lists a project's immutable rules, oldest first.
func (s *Store) ImmutableRules(ctx context.Context, project string) ([]ImmutableRule, error) {
	rows, err := s.db.Query(ctx, `SELECT id, project, tags, repositories, created_at FROM immutable_rules
		WHERE project = $1 ORDER BY id`, project)
	if err != nil {
		return nil, fmt.Errorf("tagrules: immutable rules of %s: %w", project, err)
	}
	defer rows.Close()
	var out []ImmutableRule
	for rows.Next() {
		var r ImmutableRule
		var created int64
		if err := rows.Scan(&r.ID, &r.Project, &r.Tags, &r.Repositories, &created); err != nil {
			return nil, fmt.Errorf("tagrules: immutable rules of %s: %w", project, err)
		}
		r.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
