// Package inventory reports what repositories hold, for the admin API: per repository
// its size (each blob counted once), tag and manifest counts, last push, last pull and
// pull count; per artifact its digest, media type, size, platforms (an index's),
// tags, referrers, push and pull times. It also counts pulls (pulls.go), batched in
// memory so a manifest GET never waits for a write.
//
// The queries only read the registry's tables (package meta owns them); the pull
// counters are this package's columns (migration 00016). Deletes go through package
// registry, whose row deletions queue garbage-collection reviews.
package inventory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
)

// Store runs the inventory queries over the shared SQL layer.
type Store struct{ db *meta.DB }

// NewStore returns the store.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

// Repository is one repository's summary.
type Repository struct {
	Name string
	// Size is the bytes of the distinct blobs the repository can serve or its
	// manifests reference, plus its manifests: a layer shared by ten images counts once.
	Size       int64
	Tags       int
	Manifests  int
	CreatedAt  time.Time
	LastPushAt time.Time // latest manifest push or tag change; zero when none
	LastPullAt time.Time // zero when never pulled
	Pulls      int64
}

const repositoryColumns = `r.name, r.created_at, r.pull_count, r.last_pulled_at,
	(SELECT COUNT(*) FROM tags t WHERE t.repository_id = r.id),
	(SELECT COUNT(*) FROM manifests m WHERE m.repository_id = r.id),
	(SELECT COALESCE(SUM(m.size), 0) FROM manifests m WHERE m.repository_id = r.id),
	(SELECT COALESCE(SUM(b.size), 0) FROM blobs b WHERE b.digest IN (
		SELECT rb.digest FROM repository_blobs rb WHERE rb.repository_id = r.id
		UNION SELECT mr.digest FROM manifest_references mr JOIN manifests m ON m.id = mr.manifest_id
			WHERE m.repository_id = r.id AND mr.kind = 1)),
	(SELECT COALESCE(MAX(m.created_at), 0) FROM manifests m WHERE m.repository_id = r.id),
	(SELECT COALESCE(MAX(t.updated_at), 0) FROM tags t WHERE t.repository_id = r.id)`

func scanRepository(sc interface{ Scan(...any) error }) (Repository, error) {
	var r Repository
	var created, lastPull, manifestBytes, blobBytes, lastManifest, lastTag int64
	if err := sc.Scan(&r.Name, &created, &r.Pulls, &lastPull, &r.Tags, &r.Manifests, &manifestBytes, &blobBytes, &lastManifest, &lastTag); err != nil {
		return Repository{}, err
	}
	r.Size = manifestBytes + blobBytes
	r.CreatedAt = time.UnixMilli(created)
	r.LastPushAt = millis(max(lastManifest, lastTag))
	r.LastPullAt = millis(lastPull)
	return r, nil
}

// millis is a stored time, zero for 0 (never).
func millis(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// Repositories lists the project's repositories after last in name order, at most n.
// A repository named like the project itself belongs to it too.
func (s *Store) Repositories(ctx context.Context, project, last string, n int) ([]Repository, error) {
	lo := max(last, project+"/")
	rows, err := s.db.Query(ctx, `SELECT `+repositoryColumns+` FROM repositories r
		WHERE ((r.name > $1 AND r.name < $2) OR (r.name = $3 AND r.name > $4)) ORDER BY r.name LIMIT $5`,
		lo, project+"0", project, last, n) // '0' follows '/': the end of the prefix
	if err != nil {
		return nil, fmt.Errorf("inventory: list repositories of %s: %w", project, err)
	}
	defer rows.Close()
	out := []Repository{}
	for rows.Next() {
		r, err := scanRepository(rows)
		if err != nil {
			return nil, fmt.Errorf("inventory: list repositories of %s: %w", project, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Repository returns one repository's summary; meta.ErrNotFound when it does not exist.
func (s *Store) Repository(ctx context.Context, name string) (Repository, error) {
	r, err := scanRepository(s.db.QueryRow(ctx, `SELECT `+repositoryColumns+` FROM repositories r WHERE r.name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Repository{}, meta.ErrNotFound
	}
	if err != nil {
		return Repository{}, fmt.Errorf("inventory: repository %s: %w", name, err)
	}
	return r, nil
}

// Artifact is one manifest in a repository.
type Artifact struct {
	Digest       string
	MediaType    string
	ArtifactType string
	Subject      string // the digest this referrer is about; "" for none
	// Size is the manifest plus the distinct blobs it references, and for an index
	// its children and their blobs (as far as they are stored in the repository).
	Size int64
	// Tags are the first maxArtifactTags tag names in name order; TagCount counts all.
	Tags          []string
	TagCount      int
	Platforms     []string // an index's children: os/architecture[/variant]
	Referrers     int
	ReferrerTypes []string // distinct artifact types of the referrers
	PushedAt      time.Time
	LastPullAt    time.Time // zero when never pulled
	Pulls         int64
	id            int64
	payload       []byte // an index's, for its platforms
}

// Tag is one tag and the artifact it names.
type Tag struct {
	Name      string
	UpdatedAt time.Time // when the tag was last pushed or moved
	Artifact  Artifact
}

// manifestColumns reads a manifest row (m); the payload only of an index.
const manifestColumns = `m.id, m.digest, m.media_type, m.artifact_type, COALESCE(m.subject_digest, ''), m.size,
	m.created_at, m.last_pulled_at, m.pull_count,
	CASE WHEN m.media_type IN ('` + oci.MediaTypeOCIIndex + `', '` + oci.MediaTypeDockerList + `') THEN m.payload END`

func scanArtifact(sc interface{ Scan(...any) error }, extra ...any) (Artifact, error) {
	var a Artifact
	var created, lastPull int64
	dest := append([]any{&a.id, &a.Digest, &a.MediaType, &a.ArtifactType, &a.Subject, &a.Size, &created, &lastPull, &a.Pulls, &a.payload}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return Artifact{}, err
	}
	a.PushedAt = time.UnixMilli(created)
	// A manifest's last_pulled_at starts at its push (00003, for eviction): not a pull.
	if a.Pulls > 0 || lastPull > created {
		a.LastPullAt = millis(lastPull)
	}
	return a, nil
}

// repositoryID resolves a repository name; meta.ErrNotFound when it does not exist.
func (s *Store) repositoryID(ctx context.Context, name string) (int64, error) {
	var id int64
	err := s.db.QueryRow(ctx, `SELECT id FROM repositories WHERE name = $1`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, meta.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("inventory: repository %s: %w", name, err)
	}
	return id, nil
}

// Artifacts lists the repository's manifests after the digest last in digest order, at
// most n; meta.ErrNotFound when the repository does not exist.
func (s *Store) Artifacts(ctx context.Context, repo, last string, n int) ([]Artifact, error) {
	id, err := s.repositoryID(ctx, repo)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+manifestColumns+` FROM manifests m
		WHERE m.repository_id = $1 AND m.digest > $2 ORDER BY m.digest LIMIT $3`, id, last, n)
	if err != nil {
		return nil, fmt.Errorf("inventory: list artifacts of %s: %w", repo, err)
	}
	out := []Artifact{}
	err = eachRow(rows, func(rows *sql.Rows) error {
		a, err := scanArtifact(rows)
		out = append(out, a)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("inventory: list artifacts of %s: %w", repo, err)
	}
	for i := range out {
		if err := s.describe(ctx, id, &out[i]); err != nil {
			return nil, fmt.Errorf("inventory: artifact %s@%s: %w", repo, out[i].Digest, err)
		}
	}
	return out, nil
}

// Tags lists the repository's tags after last in name order, at most n, with what
// they name; meta.ErrNotFound when the repository does not exist.
func (s *Store) Tags(ctx context.Context, repo, last string, n int) ([]Tag, error) {
	id, err := s.repositoryID(ctx, repo)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+manifestColumns+`, t.name, t.updated_at FROM tags t
		JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
		WHERE t.repository_id = $1 AND t.name > $2 ORDER BY t.name LIMIT $3`, id, last, n)
	if err != nil {
		return nil, fmt.Errorf("inventory: list tags of %s: %w", repo, err)
	}
	out := []Tag{}
	err = eachRow(rows, func(rows *sql.Rows) error {
		var t Tag
		var updated int64
		a, err := scanArtifact(rows, &t.Name, &updated)
		t.Artifact, t.UpdatedAt = a, time.UnixMilli(updated)
		out = append(out, t)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("inventory: list tags of %s: %w", repo, err)
	}
	// Tags often share a manifest (latest, v1, v1.2): describe each manifest once.
	described := map[int64]Artifact{}
	for i := range out {
		a := &out[i].Artifact
		if d, ok := described[a.id]; ok {
			*a = d
			continue
		}
		if err := s.describe(ctx, id, a); err != nil {
			return nil, fmt.Errorf("inventory: tag %s:%s: %w", repo, out[i].Name, err)
		}
		described[a.id] = *a
	}
	return out, nil
}

func eachRow(rows *sql.Rows, fn func(*sql.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// maxArtifactTags bounds the tag names an artifact lists: one manifest may carry
// thousands (a tag per build), and a page of artifacts must stay a page.
const maxArtifactTags = 100

// describe adds an artifact's size, tags, referrers and platforms: a few indexed
// queries per artifact, for pages of at most 1000.
func (s *Store) describe(ctx context.Context, repoID int64, a *Artifact) error {
	// Blobs of the manifest and of its children (an index's images), each once, plus
	// the children themselves.
	var blobBytes, childBytes int64
	err := s.db.QueryRow(ctx, `SELECT
		(SELECT COALESCE(SUM(b.size), 0) FROM blobs b WHERE b.digest IN (
			SELECT mr.digest FROM manifest_references mr WHERE mr.manifest_id = $1 AND mr.kind = 1
			UNION SELECT cr.digest FROM manifest_references mr
				JOIN manifests c ON c.repository_id = $2 AND c.digest = mr.digest
				JOIN manifest_references cr ON cr.manifest_id = c.id AND cr.kind = 1
				WHERE mr.manifest_id = $1 AND mr.kind = 2)),
		(SELECT COALESCE(SUM(c.size), 0) FROM manifest_references mr
			JOIN manifests c ON c.repository_id = $2 AND c.digest = mr.digest
			WHERE mr.manifest_id = $1 AND mr.kind = 2)`, a.id, repoID).Scan(&blobBytes, &childBytes)
	if err != nil {
		return fmt.Errorf("size: %w", err)
	}
	a.Size += blobBytes + childBytes

	rows, err := s.db.Query(ctx, `SELECT name FROM tags WHERE repository_id = $1 AND manifest_digest = $2 ORDER BY name LIMIT $3`,
		repoID, a.Digest, maxArtifactTags)
	if err != nil {
		return fmt.Errorf("tags: %w", err)
	}
	a.Tags = []string{}
	if err := eachRow(rows, func(rows *sql.Rows) error {
		var t string
		err := rows.Scan(&t)
		a.Tags = append(a.Tags, t)
		return err
	}); err != nil {
		return fmt.Errorf("tags: %w", err)
	}
	a.TagCount = len(a.Tags)
	if a.TagCount == maxArtifactTags {
		if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM tags WHERE repository_id = $1 AND manifest_digest = $2`, repoID, a.Digest).Scan(&a.TagCount); err != nil {
			return fmt.Errorf("tags: %w", err)
		}
	}

	rows, err = s.db.Query(ctx, `SELECT artifact_type, COUNT(*) FROM manifests WHERE repository_id = $1 AND subject_digest = $2
		GROUP BY artifact_type ORDER BY artifact_type`, repoID, a.Digest)
	if err != nil {
		return fmt.Errorf("referrers: %w", err)
	}
	a.ReferrerTypes = []string{}
	if err := eachRow(rows, func(rows *sql.Rows) error {
		var typ string
		var n int
		err := rows.Scan(&typ, &n)
		a.Referrers += n
		if typ != "" {
			a.ReferrerTypes = append(a.ReferrerTypes, typ)
		}
		return err
	}); err != nil {
		return fmt.Errorf("referrers: %w", err)
	}
	a.Platforms = platforms(a.payload)
	a.payload = nil
	return nil
}

// platforms lists an index's children's platforms, in index order, each once; nil for
// anything that is not an index (or names none).
func platforms(index []byte) []string {
	if len(index) == 0 {
		return nil
	}
	var idx struct {
		Manifests []struct {
			Platform *struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
				Variant      string `json:"variant"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if json.Unmarshal(index, &idx) != nil {
		return nil
	}
	var out []string
	for _, m := range idx.Manifests {
		if m.Platform == nil || m.Platform.OS == "" {
			continue
		}
		p := m.Platform.OS + "/" + m.Platform.Architecture
		if m.Platform.Variant != "" {
			p += "/" + m.Platform.Variant
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
