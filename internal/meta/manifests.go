package meta

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Reference kinds in manifest_references.
const (
	refBlob     = 1
	refManifest = 2
)

// Manifest is a stored manifest and what it points at.
type Manifest struct {
	Repository   string
	Digest       string
	MediaType    string
	ArtifactType string
	Subject      string // digest of the subject, "" when none
	Annotations  map[string]string
	Size         int64
	Payload      []byte    // nil when fetched without payload
	TagUpdatedAt time.Time // when fetched by tag: when the tag was last set or revalidated
	LastPulledAt time.Time
	Blobs        []string // config and layers (on put)
	Children     []string // index entries (on put)
	// RequireBlobs (on put) must be visible in the repository and RequireChildren makes
	// every child required to be stored there. They are checked and locked inside the
	// put's transaction, so garbage collection cannot delete them between the check and
	// the commit: the put either keeps them or fails with a *MissingError.
	RequireBlobs    []string
	RequireChildren bool
	// FixedTags (on put) are tags an immutable rule protects: created if absent, left
	// alone if they already name this manifest, and otherwise the put fails with a
	// *FixedTagError. The check is the tag write itself, so two pushes racing to create
	// such a tag cannot both win.
	FixedTags []string
}

// FixedTagError reports a put that would move a tag listed in FixedTags.
type FixedTagError struct{ Tag, Digest string }

func (e *FixedTagError) Error() string {
	return fmt.Sprintf("meta: tag %s names %s and may not be moved", e.Tag, e.Digest)
}

// MissingError reports references a manifest put required that are not (or no longer)
// in the repository.
type MissingError struct{ Digests []string }

func (e *MissingError) Error() string {
	return fmt.Sprintf("meta: %d referenced blob(s) or manifest(s) not in the repository, first %s", len(e.Digests), e.Digests[0])
}

// lockReferences checks that m's required references exist in the repository and locks
// them (and its subject, if stored) against deletion until the transaction ends. On
// SQLite the single writer already excludes a concurrent deletion.
func (s *Store) lockReferences(ctx context.Context, tx *sql.Tx, repoID int64, m Manifest) error {
	share := s.DB().ForShare()
	var missing []string
	check := func(query, d string) error {
		var one int
		err := tx.QueryRowContext(ctx, query+share, repoID, d).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			missing = append(missing, d)
			return nil
		}
		if err != nil {
			return fmt.Errorf("meta: lock reference %s: %w", d, err)
		}
		return nil
	}
	for _, d := range m.RequireBlobs {
		if err := check(`SELECT 1 FROM repository_blobs WHERE repository_id = $1 AND digest = $2`, d); err != nil {
			return err
		}
	}
	if m.RequireChildren {
		for _, d := range m.Children {
			if err := check(`SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2`, d); err != nil {
				return err
			}
		}
	}
	if len(missing) > 0 {
		return &MissingError{Digests: missing}
	}
	if m.Subject != "" { // a tagged referrer keeps its subject: hold the subject meanwhile
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2`+share, repoID, m.Subject).Scan(&one)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("meta: lock subject: %w", err)
		}
	}
	return nil
}

// The statements PutManifest repeats per reference and per tag, prepared once.
const (
	insertReference = `INSERT INTO manifest_references (manifest_id, digest, kind) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`
	upsertTag = `INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (repository_id, name) DO UPDATE SET manifest_digest = excluded.manifest_digest, updated_at = excluded.updated_at`
	// upsertFixedTag refuses to move an immutable tag: no row is affected then.
	upsertFixedTag = upsertTag + ` WHERE tags.manifest_digest = excluded.manifest_digest`
)

// preparedWrites are the write statements prepared at Open (ptx runs them).
var preparedWrites = []string{upsertRepository, insertReference, upsertTag, upsertFixedTag,
	insertBlob, readBlob, insertBlobLink, endUpload, insertUpload}

// PutManifest stores the manifest (idempotently: the same digest is the same bytes) and
// points tags at it, all in one transaction.
func (s *Store) PutManifest(ctx context.Context, m Manifest, tags []string) error {
	var annotations any
	if len(m.Annotations) > 0 {
		b, err := json.Marshal(m.Annotations)
		if err != nil {
			return err
		}
		annotations = string(b)
	}
	var subject any
	if m.Subject != "" {
		subject = m.Subject
	}
	return s.inTx(ctx, func(sqltx *sql.Tx) error {
		tx := s.prepared(sqltx)
		repoID, err := ensureRepository(ctx, tx, m.Repository)
		if err != nil {
			return err
		}
		if err := s.lockReferences(ctx, tx.Tx, repoID, m); err != nil {
			return err
		}
		t := now()
		id, inserted, err := s.insertOrLockManifest(ctx, tx.Tx, repoID, m, subject, annotations, t)
		switch {
		case err != nil:
			return err
		case !inserted:
			// Already stored: its references are recorded too.
		default:
			for kind, list := range map[int][]string{refBlob: m.Blobs, refManifest: m.Children} {
				for _, d := range list {
					if _, err := tx.ExecContext(ctx, insertReference, id, d, kind); err != nil {
						return fmt.Errorf("meta: insert reference: %w", err)
					}
				}
			}
		}
		for _, tag := range tags {
			q := upsertTag
			fixed := slices.Contains(m.FixedTags, tag)
			if fixed {
				q = upsertFixedTag
			}
			res, err := tx.ExecContext(ctx, q, repoID, tag, m.Digest, t)
			if err != nil {
				return fmt.Errorf("meta: tag %s: %w", tag, err)
			}
			if n, _ := res.RowsAffected(); fixed && n == 0 {
				var current string
				_ = tx.QueryRowContext(ctx, `SELECT manifest_digest FROM tags WHERE repository_id = $1 AND name = $2`, repoID, tag).Scan(&current)
				return &FixedTagError{Tag: tag, Digest: current}
			}
		}
		return s.changed(ctx, tx.Tx, Change{Kind: ManifestPut, Repository: m.Repository, Digest: m.Digest, MediaType: m.MediaType,
			ArtifactType: m.ArtifactType, Subject: m.Subject, Size: int64(len(m.Payload)), Tags: tags})
	})
}

// TagsOf lists the tags in repo that name digest.
func (s *Store) TagsOf(ctx context.Context, repo, digest string) ([]string, error) {
	rows, err := s.readRows(ctx, `SELECT name FROM tags WHERE manifest_digest = $2
		AND repository_id = (SELECT id FROM repositories WHERE name = $1) ORDER BY name`, repo, digest)
	if err != nil {
		return nil, fmt.Errorf("meta: tags of %s@%s: %w", repo, digest, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("meta: tags of %s@%s: %w", repo, digest, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// insertOrLockManifest inserts the manifest row, or, when it is already stored, locks it
// against garbage collection until the transaction ends (a collector that deleted it
// first makes the lock find nothing, and the row is inserted afresh).
func (s *Store) insertOrLockManifest(ctx context.Context, tx *sql.Tx, repoID int64, m Manifest, subject, annotations any, t int64) (int64, bool, error) {
	for attempt := 0; ; attempt++ {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2`+s.DB().ForShare(), repoID, m.Digest).Scan(&id)
		if err == nil {
			return id, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, false, fmt.Errorf("meta: lock manifest: %w", err)
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject_digest, annotations, size, payload, created_at, last_pulled_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id`,
			repoID, m.Digest, m.MediaType, m.ArtifactType, subject, annotations, int64(len(m.Payload)), m.Payload, t).Scan(&id)
		if err == nil {
			return id, true, nil
		}
		// No row: a concurrent put inserted it after our look; lock that one.
		if !errors.Is(err, sql.ErrNoRows) || attempt == 2 {
			return 0, false, fmt.Errorf("meta: insert manifest: %w", err)
		}
	}
}

// GetManifest returns the manifest a tag or digest names in the repository; with
// payload false the bytes are not read (HEAD). The payload may be shared with other
// callers (the read cache): it must not be modified.
func (s *Store) GetManifest(ctx context.Context, repo, ref string, byDigest, payload bool) (Manifest, error) {
	c := s.cache(ctx)
	if c == nil {
		return s.getManifest(ctx, repo, ref, byDigest, payload)
	}
	kind := "\x00t\x00"
	if byDigest {
		kind = "\x00d\x00" // a digest looked up as a tag is not found, not cached
	}
	key := "m\x00" + repo + kind + ref
	if v, ok := c.Get(key); ok {
		m := v.(Manifest)
		if !payload {
			m.Payload = nil
		}
		return m, nil
	}
	gen := c.Generation()
	// With the payload even for a HEAD: the GET usually follows.
	m, err := s.getManifest(ctx, repo, ref, byDigest, true)
	if err != nil {
		return m, err
	}
	c.Add(key, m, int64(len(m.Payload)+len(m.Digest)+len(m.MediaType)+len(repo)), gen)
	if !payload {
		m.Payload = nil
	}
	return m, nil
}

func (s *Store) getManifest(ctx context.Context, repo, ref string, byDigest, payload bool) (Manifest, error) {
	cols := "m.digest, m.media_type, m.size, m.last_pulled_at"
	if payload {
		cols += ", m.payload"
	}
	var q string
	if byDigest {
		q = `SELECT ` + cols + ` FROM manifests m JOIN repositories r ON r.id = m.repository_id
			WHERE r.name = $1 AND m.digest = $2`
	} else {
		cols += ", t.updated_at"
		q = `SELECT ` + cols + ` FROM tags t JOIN repositories r ON r.id = t.repository_id
			JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
			WHERE r.name = $1 AND t.name = $2`
	}
	m := Manifest{Repository: repo}
	var lastPulled int64
	dest := []any{&m.Digest, &m.MediaType, &m.Size, &lastPulled}
	if payload {
		dest = append(dest, &m.Payload)
	}
	var tagUpdated int64
	if !byDigest {
		dest = append(dest, &tagUpdated)
	}
	err := s.read(ctx, q, repo, ref).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return Manifest{}, ErrNotFound
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("meta: manifest %s:%s: %w", repo, ref, err)
	}
	if !byDigest {
		m.TagUpdatedAt = time.UnixMilli(tagUpdated)
	}
	m.LastPulledAt = time.UnixMilli(lastPulled)
	return m, nil
}

// TouchTag records that the tag was confirmed to still point at digest (a mirror's
// revalidation), restarting its freshness period. It reports false when the tag no
// longer points there.
func (s *Store) TouchTag(ctx context.Context, repo, tag, digest string) (bool, error) {
	res, err := s.exec(ctx, `UPDATE tags SET updated_at = $1 WHERE name = $3 AND manifest_digest = $4
		AND repository_id = (SELECT id FROM repositories WHERE name = $2)`, now(), repo, tag, digest)
	if err != nil {
		return false, fmt.Errorf("meta: touch tag: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// DeleteManifest removes the manifest and every tag pointing at it.
func (s *Store) DeleteManifest(ctx context.Context, repo, digest string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		repoID, err := repositoryID(ctx, tx, repo)
		if err != nil {
			return err
		}
		var id int64
		err = tx.QueryRowContext(ctx, `SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2`, repoID, digest).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("meta: find manifest: %w", err)
		}
		var tags []string
		if s.hook.Load() != nil { // the event names the tags that went with it
			rows, err := tx.QueryContext(ctx, `SELECT name FROM tags WHERE repository_id = $1 AND manifest_digest = $2 ORDER BY name`, repoID, digest)
			if err != nil {
				return fmt.Errorf("meta: tags of deleted manifest: %w", err)
			}
			if tags, err = scanStrings(rows); err != nil {
				return fmt.Errorf("meta: tags of deleted manifest: %w", err)
			}
		}
		for _, q := range []struct {
			sql string
			arg []any
		}{
			{`DELETE FROM tags WHERE repository_id = $1 AND manifest_digest = $2`, []any{repoID, digest}},
			{`DELETE FROM manifest_references WHERE manifest_id = $1`, []any{id}},
			{`DELETE FROM manifests WHERE id = $1`, []any{id}},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.arg...); err != nil {
				return fmt.Errorf("meta: delete manifest: %w", err)
			}
		}
		return s.changed(ctx, tx, Change{Kind: ManifestDeleted, Repository: repo, Digest: digest, Tags: tags})
	})
}

// DeleteTag removes one tag; the manifest stays.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	if s.hook.Load() != nil {
		return s.deleteTagHooked(ctx, repo, tag)
	}
	res, err := s.exec(ctx, `DELETE FROM tags WHERE name = $2
		AND repository_id = (SELECT id FROM repositories WHERE name = $1)`, repo, tag)
	if err != nil {
		return fmt.Errorf("meta: delete tag: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// deleteTagHooked is DeleteTag in a transaction that the change hook joins.
func (s *Store) deleteTagHooked(ctx context.Context, repo, tag string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var digest string
		err := tx.QueryRowContext(ctx, `DELETE FROM tags WHERE name = $2
			AND repository_id = (SELECT id FROM repositories WHERE name = $1) RETURNING manifest_digest`, repo, tag).Scan(&digest)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("meta: delete tag: %w", err)
		}
		return s.changed(ctx, tx, Change{Kind: TagDeleted, Repository: repo, Digest: digest, Tags: []string{tag}})
	})
}

// Tags lists the repository's tags after last in lexical order, at most n.
func (s *Store) Tags(ctx context.Context, repo, last string, n int) ([]string, error) {
	// The repository id comes from a scalar subquery, not a join: PostgreSQL then walks the
	// (repository_id, name) key in order and stops after n, instead of sorting every tag
	// past last on each page.
	rows, err := s.readRows(ctx, `SELECT name FROM tags WHERE repository_id = (SELECT id FROM repositories WHERE name = $1)
		AND name > $2 ORDER BY name LIMIT $3`, repo, last, n)
	if err != nil {
		return nil, fmt.Errorf("meta: list tags: %w", err)
	}
	return scanStrings(rows)
}

// Referrers lists the manifests in repo whose subject is digest, optionally only those of
// one artifact type, in a stable order.
func (s *Store) Referrers(ctx context.Context, repo, digest, artifactType string) ([]Manifest, error) {
	q := `SELECT m.digest, m.media_type, m.artifact_type, m.size, m.annotations FROM manifests m
		JOIN repositories r ON r.id = m.repository_id WHERE r.name = $1 AND m.subject_digest = $2`
	args := []any{repo, digest}
	if artifactType != "" {
		q += ` AND m.artifact_type = $3`
		args = append(args, artifactType)
	}
	q += ` ORDER BY m.created_at, m.digest`
	rows, err := s.readRows(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("meta: referrers: %w", err)
	}
	defer rows.Close()
	var out []Manifest
	for rows.Next() {
		m := Manifest{Repository: repo, Subject: digest}
		var annotations sql.NullString
		if err := rows.Scan(&m.Digest, &m.MediaType, &m.ArtifactType, &m.Size, &annotations); err != nil {
			return nil, err
		}
		if annotations.Valid {
			if err := json.Unmarshal([]byte(annotations.String), &m.Annotations); err != nil {
				return nil, fmt.Errorf("meta: referrer annotations: %w", err)
			}
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// MarkPulled records that the manifest was just pulled.
func (s *Store) MarkPulled(ctx context.Context, repo, digest string) error {
	_, err := s.exec(ctx, `UPDATE manifests SET last_pulled_at = $1 WHERE digest = $3
		AND repository_id = (SELECT id FROM repositories WHERE name = $2)`, now(), repo, digest)
	if err != nil {
		return fmt.Errorf("meta: mark pulled: %w", err)
	}
	return nil
}

// LeastRecentlyPulled lists up to n manifests in repositories whose names start with
// prefix, least recently pulled first, skipping any pulled since before.
func (s *Store) LeastRecentlyPulled(ctx context.Context, prefix string, before time.Time, n int) ([]Manifest, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT r.name, m.digest, m.size FROM manifests m
		JOIN repositories r ON r.id = m.repository_id
		WHERE r.name >= $1 AND r.name < $2 AND m.last_pulled_at < $3
		ORDER BY m.last_pulled_at, m.id LIMIT $4`, prefix, prefixEnd(prefix), before.UnixMilli(), n)
	if err != nil {
		return nil, fmt.Errorf("meta: least recently pulled: %w", err)
	}
	defer rows.Close()
	var out []Manifest
	for rows.Next() {
		var m Manifest
		if err := rows.Scan(&m.Repository, &m.Digest, &m.Size); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// prefixEnd is the smallest string greater than every string starting with prefix
// (prefix ends in '/', whose successor is '0').
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	b[len(b)-1]++
	return string(b)
}
