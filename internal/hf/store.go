package hf

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// Store holds the mirror's metadata (migration 00020): revisions resolved to commits
// with the Hub's answer, tree listings per commit, and cached files per commit. File
// bytes live in the blob store, linked into the repository's local OCI repository.
type Store struct{ db *meta.DB }

// NewStore returns the mirror's store over the shared SQL layer.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

// errMissing reports a row that is not there.
var errMissing = errors.New("hf: not cached")

// Revision is a cached revision lookup.
type Revision struct {
	Commit    string
	Info      []byte
	FetchedAt time.Time
}

// Revision returns the cached lookup of repo at revision (query: the info endpoint's
// normalized query string).
func (s *Store) Revision(ctx context.Context, r Repo, revision, query string) (Revision, error) {
	var rv Revision
	var info string
	var at int64
	err := s.db.QueryRow(ctx, `SELECT commit_sha, info, fetched_at FROM hf_revisions
		WHERE repo_type = $1 AND repo = $2 AND revision = $3 AND query = $4`, string(r.Type), r.ID, revision, query).Scan(&rv.Commit, &info, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Revision{}, errMissing
	}
	if err != nil {
		return Revision{}, fmt.Errorf("hf: revision %s@%s: %w", r, revision, err)
	}
	rv.Info, rv.FetchedAt = []byte(info), time.UnixMilli(at)
	return rv, nil
}

// PutRevision records a revision lookup.
func (s *Store) PutRevision(ctx context.Context, r Repo, revision, query string, rv Revision) error {
	_, err := s.db.Exec(ctx, `INSERT INTO hf_revisions (repo_type, repo, revision, query, commit_sha, info, fetched_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (repo_type, repo, revision, query) DO UPDATE SET commit_sha = excluded.commit_sha, info = excluded.info, fetched_at = excluded.fetched_at`,
		string(r.Type), r.ID, revision, query, rv.Commit, string(rv.Info), rv.FetchedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("hf: put revision %s@%s: %w", r, revision, err)
	}
	return nil
}

// Tree returns a cached tree listing.
func (s *Store) Tree(ctx context.Context, r Repo, commit, path, query string) ([]byte, error) {
	var listing string
	err := s.db.QueryRow(ctx, `SELECT listing FROM hf_trees
		WHERE repo_type = $1 AND repo = $2 AND commit_sha = $3 AND path = $4 AND query = $5`, string(r.Type), r.ID, commit, path, query).Scan(&listing)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errMissing
	}
	if err != nil {
		return nil, fmt.Errorf("hf: tree %s@%s: %w", r, commit, err)
	}
	return []byte(listing), nil
}

// PutTree records a tree listing (immutable at a commit).
func (s *Store) PutTree(ctx context.Context, r Repo, commit, path, query string, listing []byte) error {
	_, err := s.db.Exec(ctx, `INSERT INTO hf_trees (repo_type, repo, commit_sha, path, query, listing, fetched_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (repo_type, repo, commit_sha, path, query) DO NOTHING`,
		string(r.Type), r.ID, commit, path, query, string(listing), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("hf: put tree %s@%s: %w", r, commit, err)
	}
	return nil
}

// File is a cached file of a repository at a commit.
type File struct {
	Path      string
	LocalRepo string
	Digest    string // sha256:...
	Size      int64
	ETag      string // the Hub's, unquoted: the LFS sha256 or the git blob id
	Linked    bool   // an LFS (or Xet) file: the Hub answers with X-Linked-Etag/Size
}

// File returns the cached file at commit.
func (s *Store) File(ctx context.Context, r Repo, commit, path string) (File, error) {
	f := File{Path: path}
	err := s.db.QueryRow(ctx, `SELECT local_repo, digest, size, etag, linked FROM hf_files
		WHERE repo_type = $1 AND repo = $2 AND commit_sha = $3 AND path = $4`, string(r.Type), r.ID, commit, path).
		Scan(&f.LocalRepo, &f.Digest, &f.Size, &f.ETag, &f.Linked)
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, errMissing
	}
	if err != nil {
		return File{}, fmt.Errorf("hf: file %s@%s/%s: %w", r, commit, path, err)
	}
	return f, nil
}

// Files lists the cached files of repo at commit, by path.
func (s *Store) Files(ctx context.Context, r Repo, commit string) ([]File, error) {
	rows, err := s.db.Query(ctx, `SELECT path, local_repo, digest, size, etag, linked FROM hf_files
		WHERE repo_type = $1 AND repo = $2 AND commit_sha = $3 ORDER BY path`, string(r.Type), r.ID, commit)
	if err != nil {
		return nil, fmt.Errorf("hf: files of %s@%s: %w", r, commit, err)
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		var f File
		if err := rows.Scan(&f.Path, &f.LocalRepo, &f.Digest, &f.Size, &f.ETag, &f.Linked); err != nil {
			return nil, fmt.Errorf("hf: files of %s@%s: %w", r, commit, err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// PutFile records a file whose bytes were committed to the blob store.
func (s *Store) PutFile(ctx context.Context, r Repo, commit string, f File) error {
	now := time.Now().UnixMilli()
	_, err := s.db.Exec(ctx, `INSERT INTO hf_files (repo_type, repo, commit_sha, path, local_repo, digest, size, etag, linked, fetched_at, last_pulled_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
		ON CONFLICT (repo_type, repo, commit_sha, path) DO UPDATE SET local_repo = excluded.local_repo, digest = excluded.digest,
			size = excluded.size, etag = excluded.etag, linked = excluded.linked, fetched_at = excluded.fetched_at`,
		string(r.Type), r.ID, commit, f.Path, f.LocalRepo, f.Digest, f.Size, f.ETag, f.Linked, now)
	if err != nil {
		return fmt.Errorf("hf: put file %s@%s/%s: %w", r, commit, f.Path, err)
	}
	return nil
}

// MarkPulled records a file's download, at most once a minute per file.
func (s *Store) MarkPulled(ctx context.Context, r Repo, commit, path string) error {
	now := time.Now()
	_, err := s.db.Exec(ctx, `UPDATE hf_files SET last_pulled_at = $5
		WHERE repo_type = $1 AND repo = $2 AND commit_sha = $3 AND path = $4 AND last_pulled_at < $6`,
		string(r.Type), r.ID, commit, path, now.UnixMilli(), now.Add(-time.Minute).UnixMilli())
	if err != nil {
		return fmt.Errorf("hf: mark pulled: %w", err)
	}
	return nil
}

// RevisionsOf lists the branch and tag names last seen naming commit.
func (s *Store) RevisionsOf(ctx context.Context, r Repo, commit string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT revision FROM hf_revisions
		WHERE repo_type = $1 AND repo = $2 AND commit_sha = $3 AND revision <> '' ORDER BY revision`, string(r.Type), r.ID, commit)
	if err != nil {
		return nil, fmt.Errorf("hf: revisions of %s@%s: %w", r, commit, err)
	}
	return scanStrings(rows)
}

// LeastRecentlyPulled lists the local repositories whose files were all last pulled
// before before, least recent first.
func (s *Store) LeastRecentlyPulled(ctx context.Context, before time.Time, n int) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT local_repo FROM hf_files GROUP BY local_repo
		HAVING MAX(last_pulled_at) < $1 ORDER BY MAX(last_pulled_at), local_repo LIMIT $2`, before.UnixMilli(), n)
	if err != nil {
		return nil, fmt.Errorf("hf: eviction candidates: %w", err)
	}
	return scanStrings(rows)
}

// DeleteFiles forgets every cached file of a local repository.
func (s *Store) DeleteFiles(ctx context.Context, local string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM hf_files WHERE local_repo = $1`, local); err != nil {
		return fmt.Errorf("hf: delete files of %s: %w", local, err)
	}
	return nil
}

// Manifests lists the manifests (ModelPack artifacts) stored in a local repository.
func (s *Store) Manifests(ctx context.Context, local string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id
		WHERE r.name = $1 ORDER BY m.digest`, local)
	if err != nil {
		return nil, fmt.Errorf("hf: manifests of %s: %w", local, err)
	}
	return scanStrings(rows)
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
