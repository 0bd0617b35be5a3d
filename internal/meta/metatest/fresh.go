package metatest

import (
	"context"
	"database/sql"
	"testing"

	"github.com/berth-registry/berth/internal/meta"
)

// testReadsAfterWrites: a manifest or blob lookup made after a write returns reflects
// it, whichever API made the write: the store's own methods, or a capability store's
// statements through DB (as gc, tagrules and retention issue them). Each lookup is
// made before the write too, so a store with a read cache has the old answer cached.
func testReadsAfterWrites(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	db := s.DB()
	exec := func(q string, args ...any) {
		t.Helper()
		if err := db.InTx(ctx, func(tx *sql.Tx) error { _, err := tx.ExecContext(ctx, q, args...); return err }); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	get := func(repo, ref string, byDigest bool) (meta.Manifest, error) {
		t.Helper()
		for range 2 { // the second read is the one a cache answers
			m, err := s.GetManifest(ctx, repo, ref, byDigest, true)
			if err != nil {
				return m, err
			}
		}
		return s.GetManifest(ctx, repo, ref, byDigest, false)
	}
	wantTag := func(repo, tag, digest string) {
		t.Helper()
		m, err := get(repo, tag, false)
		if err != nil || m.Digest != digest {
			t.Fatalf("%s:%s = %s, %v; want %s", repo, tag, m.Digest, err, digest)
		}
	}
	blob := func(repo, digest string) error {
		t.Helper()
		for range 2 {
			if _, err := s.RepositoryBlob(ctx, repo, digest); err != nil {
				return err
			}
		}
		return nil
	}

	m1, m2 := manifest("app", "one"), manifest("app", "two")
	putManifest(t, s, m1, "v1", "latest")
	putManifest(t, s, m2)
	wantTag("app", "latest", m1.Digest)

	// Tag moved by a push.
	putManifest(t, s, m2, "latest")
	wantTag("app", "latest", m2.Digest)
	wantTag("app", "v1", m1.Digest)

	// Tag deleted through the store, and through another package's statement.
	if err := s.DeleteTag(ctx, "app", "v1"); err != nil {
		t.Fatal(err)
	}
	_, err := get("app", "v1", false)
	wantNotFound(t, "deleted tag", err)
	putManifest(t, s, m1, "v1")
	wantTag("app", "v1", m1.Digest)
	exec(`DELETE FROM tags WHERE name = $1`, "v1")
	_, err = get("app", "v1", false)
	wantNotFound(t, "tag deleted by a statement through DB", err)

	// Manifest deleted: by tag and by digest it is not served any more.
	if _, err := get("app", m2.Digest, true); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteManifest(ctx, "app", m2.Digest); err != nil {
		t.Fatal(err)
	}
	_, err = get("app", m2.Digest, true)
	wantNotFound(t, "deleted manifest by digest", err)
	_, err = get("app", "latest", false)
	wantNotFound(t, "tag of a deleted manifest", err)

	// Manifest deleted by a statement through DB (the collector's way).
	if _, err := get("app", m1.Digest, true); err != nil {
		t.Fatal(err)
	}
	exec(`DELETE FROM manifests WHERE digest = $1`, m1.Digest)
	_, err = get("app", m1.Digest, true)
	wantNotFound(t, "manifest deleted by a statement through DB", err)

	// A mirror's revalidation restarts a tag's freshness: the next lookup says so.
	m3 := manifest("app", "three")
	putManifest(t, s, m3, "fresh")
	before, _ := get("app", "fresh", false)
	exec(`UPDATE tags SET updated_at = updated_at - 60000 WHERE name = $1`, "fresh")
	if after, _ := get("app", "fresh", false); !after.TagUpdatedAt.Before(before.TagUpdatedAt) {
		t.Fatalf("tag time %v after moving it back from %v", after.TagUpdatedAt, before.TagUpdatedAt)
	}

	// Blobs: unlinked from the repository, and the repository deleted.
	b := commit(t, s, "app", "layer")
	if err := blob("app", b.Digest); err != nil {
		t.Fatal(err)
	}
	if err := s.UnlinkBlob(ctx, "app", b.Digest); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, "unlinked blob", blob("app", b.Digest))
	commit(t, s, "app", "layer")
	if err := blob("app", b.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM repository_blobs WHERE digest = $1`, b.Digest); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, "blob unlinked by a statement through DB", blob("app", b.Digest))

	commit(t, s, "app", "layer")
	if err := blob("app", b.Digest); err != nil {
		t.Fatal(err)
	}
	wantTag("app", "fresh", m3.Digest)
	if _, err := s.DeleteRepository(context.WithoutCancel(ctx), "app"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, "blob of a deleted repository", blob("app", b.Digest))
	_, err = get("app", "fresh", false)
	wantNotFound(t, "tag of a deleted repository", err)
}
