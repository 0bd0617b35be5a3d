package meta

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
)

// ChangeKind names a change to a repository's manifests and tags that a ChangeHook sees.
type ChangeKind string

// Change kinds.
const (
	// ManifestPut: a manifest was pushed (stored, or stored already and pushed again),
	// with the tags the push pointed at it.
	ManifestPut ChangeKind = "manifest.put"
	// ManifestDeleted: a manifest was deleted, with the tags that named it (also each
	// manifest of a deleted repository).
	ManifestDeleted ChangeKind = "manifest.deleted"
	// TagDeleted: a tag was deleted; the manifest it named stays.
	TagDeleted ChangeKind = "tag.deleted"
)

// Change is one write to a repository, handed to the ChangeHook inside the transaction
// that makes it.
type Change struct {
	Kind         ChangeKind
	Repository   string
	Digest       string
	MediaType    string // ManifestPut only
	ArtifactType string // ManifestPut only
	Subject      string // ManifestPut only: the subject digest of a referrer
	Size         int64  // ManifestPut only
	Tags         []string
	// Actor is who made the change, when the caller put it in the context (WithActor).
	Actor string
}

// ChangeHook runs inside the write transaction of every manifest put, manifest delete
// and tag delete, after the change's own statements: what it writes with tx commits
// with the change or not at all (the events outbox). An error rolls the change back.
type ChangeHook func(ctx context.Context, tx *sql.Tx, c Change) error

// SetChangeHook installs the hook (nil removes it). Without one the write path does
// no extra work.
func (s *Store) SetChangeHook(h ChangeHook) {
	if h == nil {
		s.hook.Store(nil)
		return
	}
	s.hook.Store(&h)
}

// changed runs the hook, if any, for c inside tx.
func (s *Store) changed(ctx context.Context, tx *sql.Tx, c Change) error {
	h := s.hook.Load()
	if h == nil {
		return nil
	}
	c.Actor = Actor(ctx)
	return (*h)(ctx, tx, c)
}

type hookSlot = atomic.Pointer[ChangeHook]

// repositoryDeleted hands the hook one ManifestDeleted per manifest of a repository
// being deleted (with the tags that named it), before its rows go.
func (s *Store) repositoryDeleted(ctx context.Context, tx *sql.Tx, repo string, id int64) error {
	if s.hook.Load() == nil {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT m.digest, t.name FROM manifests m
		LEFT JOIN tags t ON t.repository_id = m.repository_id AND t.manifest_digest = m.digest
		WHERE m.repository_id = $1 ORDER BY m.id, t.name`, id)
	if err != nil {
		return fmt.Errorf("meta: manifests of deleted repository: %w", err)
	}
	var changes []Change
	for rows.Next() {
		var digest string
		var tag sql.NullString
		if err := rows.Scan(&digest, &tag); err != nil {
			rows.Close()
			return err
		}
		if len(changes) == 0 || changes[len(changes)-1].Digest != digest {
			changes = append(changes, Change{Kind: ManifestDeleted, Repository: repo, Digest: digest})
		}
		if tag.Valid {
			c := &changes[len(changes)-1]
			c.Tags = append(c.Tags, tag.String)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range changes {
		if err := s.changed(ctx, tx, c); err != nil {
			return err
		}
	}
	return nil
}

type actorKey struct{}

// WithActor records in ctx who is making the changes written with it (a user or robot
// name), for the ChangeHook.
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// Actor is the name WithActor recorded in ctx, or "".
func Actor(ctx context.Context) string {
	s, _ := ctx.Value(actorKey{}).(string)
	return s
}
