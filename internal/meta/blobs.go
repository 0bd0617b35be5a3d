package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Blob is a stored blob: its bytes are durable at Location in the blob store.
type Blob struct {
	Digest   string
	Size     int64
	Location string
}

// RepositoryBlob returns the blob if it is visible in the repository.
func (s *Store) RepositoryBlob(ctx context.Context, repo, digest string) (Blob, error) {
	c := s.cache(ctx)
	if c == nil {
		return s.repositoryBlob(ctx, repo, digest)
	}
	key := "b\x00" + repo + "\x00" + digest
	if v, ok := c.Get(key); ok {
		return v.(Blob), nil
	}
	gen := c.Generation()
	b, err := s.repositoryBlob(ctx, repo, digest)
	if err == nil {
		c.Add(key, b, int64(len(repo)+len(digest)+len(b.Location)), gen)
	}
	return b, err
}

func (s *Store) repositoryBlob(ctx context.Context, repo, digest string) (Blob, error) {
	b := Blob{Digest: digest}
	err := s.read(ctx, `SELECT b.size, b.location FROM blobs b
		JOIN repository_blobs rb ON rb.digest = b.digest
		JOIN repositories r ON r.id = rb.repository_id
		WHERE r.name = $1 AND b.digest = $2`, repo, digest).Scan(&b.Size, &b.Location)
	if errors.Is(err, sql.ErrNoRows) {
		return Blob{}, ErrNotFound
	}
	if err != nil {
		return Blob{}, fmt.Errorf("meta: blob %s in %s: %w", digest, repo, err)
	}
	return b, nil
}

// Blob returns the stored blob regardless of visibility (the caller checks access).
func (s *Store) Blob(ctx context.Context, digest string) (Blob, error) {
	b := Blob{Digest: digest}
	err := s.read(ctx, `SELECT size, location FROM blobs WHERE digest = $1`, digest).Scan(&b.Size, &b.Location)
	if errors.Is(err, sql.ErrNoRows) {
		return Blob{}, ErrNotFound
	}
	if err != nil {
		return Blob{}, fmt.Errorf("meta: blob %s: %w", digest, err)
	}
	return b, nil
}

// RepositoriesWithBlob lists (up to limit) repositories where the blob is visible, so a
// mount without "from" can check the caller may read it somewhere.
func (s *Store) RepositoriesWithBlob(ctx context.Context, digest string, limit int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT r.name FROM repository_blobs rb
		JOIN repositories r ON r.id = rb.repository_id WHERE rb.digest = $1 ORDER BY r.name LIMIT $2`, digest, limit)
	if err != nil {
		return nil, fmt.Errorf("meta: repositories with %s: %w", digest, err)
	}
	return scanStrings(rows)
}

// The statements of every blob commit (prepared at Open: preparedWrites).
const (
	insertBlob = `INSERT INTO blobs (digest, size, location, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (digest) DO NOTHING`
	readBlob       = `SELECT size, location FROM blobs WHERE digest = $1`
	insertBlobLink = `INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (repository_id, digest) DO NOTHING`
	endUpload = `DELETE FROM uploads WHERE id = $1`
)

// CommitBlob records a blob whose bytes are durable and makes it visible in repo; when
// uploadID is set, that upload session ends in the same transaction. If the digest was
// already stored, the existing row wins and its location is returned: the caller then
// discards its own copy when the locations differ.
func (s *Store) CommitBlob(ctx context.Context, repo string, b Blob, uploadID string) (Blob, error) {
	var stored Blob
	err := s.inTx(ctx, func(sqltx *sql.Tx) error {
		tx := s.prepared(sqltx)
		id, err := ensureRepository(ctx, tx, repo)
		if err != nil {
			return err
		}
		t := now()
		if _, err := tx.ExecContext(ctx, insertBlob, b.Digest, b.Size, b.Location, t); err != nil {
			return fmt.Errorf("meta: insert blob: %w", err)
		}
		stored.Digest = b.Digest
		if err := tx.QueryRowContext(ctx, readBlob, b.Digest).Scan(&stored.Size, &stored.Location); err != nil {
			return fmt.Errorf("meta: read blob: %w", err)
		}
		if err := linkBlob(ctx, tx, id, b.Digest, t); err != nil {
			return err
		}
		if uploadID != "" {
			if _, err := tx.ExecContext(ctx, endUpload, uploadID); err != nil {
				return fmt.Errorf("meta: end upload: %w", err)
			}
		}
		return nil
	})
	return stored, err
}

func linkBlob(ctx context.Context, q querier, repoID int64, digest string, t int64) error {
	if _, err := q.ExecContext(ctx, insertBlobLink, repoID, digest, t); err != nil {
		return fmt.Errorf("meta: link blob: %w", err)
	}
	return nil
}

// LinkBlob makes an already stored blob visible in repo (a cross-repository mount).
func (s *Store) LinkBlob(ctx context.Context, repo, digest string) (Blob, error) {
	return s.AdoptBlob(ctx, repo, digest, "")
}

// UnlinkBlob removes the blob from the repository's view. Its bytes stay until garbage
// collection finds no repository and no manifest referencing them.
func (s *Store) UnlinkBlob(ctx context.Context, repo, digest string) error {
	res, err := s.exec(ctx, `DELETE FROM repository_blobs WHERE digest = $2
		AND repository_id = (SELECT id FROM repositories WHERE name = $1)`, repo, digest)
	if err != nil {
		return fmt.Errorf("meta: unlink blob: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// MissingBlobs returns those of digests not visible in the repository.
func (s *Store) MissingBlobs(ctx context.Context, repo string, digests []string) ([]string, error) {
	return s.missing(ctx, `SELECT rb.digest FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
		WHERE r.name = $1 AND rb.digest = $2`, repo, digests)
}

// MissingManifests returns those of digests not stored in the repository.
func (s *Store) MissingManifests(ctx context.Context, repo string, digests []string) ([]string, error) {
	return s.missing(ctx, `SELECT m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id
		WHERE r.name = $1 AND m.digest = $2`, repo, digests)
}

func (s *Store) missing(ctx context.Context, query, repo string, digests []string) ([]string, error) {
	var missing []string
	seen := make(map[string]bool, len(digests))
	for _, d := range digests {
		if seen[d] {
			continue
		}
		seen[d] = true
		var got string
		err := s.read(ctx, query, repo, d).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) {
			missing = append(missing, d)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("meta: check reference %s: %w", d, err)
		}
	}
	return missing, nil
}

// AdoptBlob makes an already stored blob visible in repo in place of an upload of the
// same content, ending that upload in the same transaction. It fails with ErrNotFound
// when the blob was deleted meanwhile, so the caller keeps its own bytes instead.
func (s *Store) AdoptBlob(ctx context.Context, repo, digest, uploadID string) (Blob, error) {
	var b Blob
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		b.Digest = digest
		err := tx.QueryRowContext(ctx, `SELECT size, location FROM blobs WHERE digest = $1`, digest).Scan(&b.Size, &b.Location)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("meta: blob %s: %w", digest, err)
		}
		id, err := ensureRepository(ctx, tx, repo)
		if err != nil {
			return err
		}
		// The foreign key makes a concurrent deletion of the blob row fail (or this
		// insert fail) rather than leave a link to nothing.
		if err := linkBlob(ctx, tx, id, digest, now()); err != nil {
			return err
		}
		if uploadID != "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = $1`, uploadID); err != nil {
				return fmt.Errorf("meta: end upload: %w", err)
			}
		}
		return nil
	})
	return b, err
}

// PrefixCacheSize sums the sizes of the distinct blobs visible in repositories whose
// names start with prefix (a mirror's cache).
func (s *Store) PrefixCacheSize(ctx context.Context, prefix string) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(b.size), 0) FROM blobs b WHERE EXISTS (
		SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
		WHERE rb.digest = b.digest AND r.name >= $1 AND r.name < $2)`, prefix, prefixEnd(prefix)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("meta: cache size: %w", err)
	}
	return n, nil
}

// UnreferencedBlobs lists blobs visible in repo that no manifest in repo references.
func (s *Store) UnreferencedBlobs(ctx context.Context, repo string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT rb.digest FROM repository_blobs rb
		JOIN repositories r ON r.id = rb.repository_id
		WHERE r.name = $1 AND NOT EXISTS (
			SELECT 1 FROM manifest_references mr JOIN manifests m ON m.id = mr.manifest_id
			WHERE m.repository_id = rb.repository_id AND mr.digest = rb.digest)`, repo)
	if err != nil {
		return nil, fmt.Errorf("meta: unreferenced blobs: %w", err)
	}
	return scanStrings(rows)
}

// DeleteBlobIfUnused removes the blob's row when no repository can see it and returns
// its location, whose bytes the caller then deletes. Locations are unique per commit, so
// deleting them can never touch a later commit of the same content.
func (s *Store) DeleteBlobIfUnused(ctx context.Context, digest string) (string, bool, error) {
	var location string
	deleted := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT location FROM blobs WHERE digest = $1`, digest).Scan(&location)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM blobs WHERE digest = $1
			AND NOT EXISTS (SELECT 1 FROM repository_blobs WHERE digest = $1)`, digest)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		deleted = n == 1
		return nil
	})
	if err != nil {
		// Includes a link committed concurrently tripping the foreign key: in use.
		return "", false, fmt.Errorf("meta: delete blob %s: %w", digest, err)
	}
	return location, deleted, nil
}
