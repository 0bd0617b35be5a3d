// Package metatest is the one test suite every metadata backend (SQLite, PostgreSQL) must
// pass. A backend test calls Run with a function that opens a fresh, empty store.
package metatest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// Run runs the suite. open must return a new store over an empty database each time it is
// called, and close it when t ends; it is called from parallel subtests, so it must be safe
// for concurrent use.
func Run(t *testing.T, open func(t *testing.T) *meta.Store) {
	// Each case gets its own store, so cases run in parallel (bounded by -parallel).
	run := func(t *testing.T, name string, fn func(*testing.T, *meta.Store)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, open(t))
		})
	}
	t.Run("Repositories", func(t *testing.T) {
		t.Parallel()
		run(t, "CreatedByEveryWrite", testRepositoriesCreated)
		run(t, "CatalogOrderAndPagination", testCatalog)
		run(t, "DeleteCascades", testDeleteRepository)
	})
	t.Run("Blobs", func(t *testing.T) {
		t.Parallel()
		run(t, "CommitIdempotentExistingRowWins", testCommitBlob)
		run(t, "Scoping", testBlobScoping)
		run(t, "RepositoriesWithBlob", testRepositoriesWithBlob)
		run(t, "Missing", testMissing)
	})
	t.Run("Projects", func(t *testing.T) {
		t.Parallel()
		run(t, "Ownership", testProjectOwnership)
	})
	t.Run("Leases", func(t *testing.T) {
		t.Parallel()
		run(t, "TakeRenewReleaseExpire", testLeases)
	})
	t.Run("Audit", func(t *testing.T) {
		t.Parallel()
		run(t, "FiltersProjectsPagination", testAuditFilter)
	})
	t.Run("Uploads", func(t *testing.T) {
		t.Parallel()
		run(t, "CreateGetScoped", testUploadCreateGet)
		run(t, "AdvanceOptimistic", testUploadAdvance)
		run(t, "DeleteStaleHandles", testUploadDeleteStale)
	})
	t.Run("Manifests", func(t *testing.T) {
		t.Parallel()
		run(t, "PutGetTags", testManifestPutGet)
		run(t, "PayloadRoundTrip", testManifestPayload)
		run(t, "Delete", testManifestDelete)
		run(t, "TagOrder", testTagOrder)
		run(t, "TagFreshness", testTagFreshness)
		run(t, "TagPagination10000", testTagPagination)
		run(t, "ReadsAfterWrites", testReadsAfterWrites)
	})
	t.Run("Referrers", func(t *testing.T) {
		t.Parallel()
		run(t, "SubjectIndex", testReferrers)
	})
	t.Run("Concurrency", func(t *testing.T) {
		t.Parallel()
		run(t, "SameBlob", testConcurrentBlob)
		run(t, "SameTag", testConcurrentTag)
		run(t, "SameRepository", testConcurrentRepository)
		run(t, "SameUploadAdvance", testConcurrentAdvance)
	})
}

// workers is how many goroutines the concurrency tests run at once.
const workers = 16

func dgst(content string) string {
	sum := sha256.Sum256([]byte(content))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// location is a plausible blob store location; suffix distinguishes copies.
func location(d, suffix string) string { return "blobs/" + d + suffix }

func commit(t *testing.T, s *meta.Store, repo, content string) meta.Blob {
	t.Helper()
	d := dgst(content)
	b, err := s.CommitBlob(t.Context(), repo, meta.Blob{Digest: d, Size: int64(len(content)), Location: location(d, "")}, "")
	if err != nil {
		t.Fatalf("CommitBlob(%s, %q): %v", repo, content, err)
	}
	return b
}

func manifest(repo, body string) meta.Manifest {
	payload := []byte(`{"schemaVersion":2,"x":"` + body + `"}`)
	sum := sha256.Sum256(payload)
	return meta.Manifest{
		Repository: repo,
		Digest:     "sha256:" + hex.EncodeToString(sum[:]),
		MediaType:  "application/vnd.oci.image.manifest.v1+json",
		Payload:    payload,
	}
}

func putManifest(t *testing.T, s *meta.Store, m meta.Manifest, tags ...string) {
	t.Helper()
	if err := s.PutManifest(t.Context(), m, tags); err != nil {
		t.Fatalf("PutManifest(%s@%s, %v): %v", m.Repository, m.Digest, tags, err)
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("%s: err = %v, want meta.ErrNotFound", what, err)
	}
}

func wantExists(t *testing.T, s *meta.Store, repo string, want bool) {
	t.Helper()
	ok, err := s.RepositoryExists(t.Context(), repo)
	if err != nil {
		t.Fatalf("RepositoryExists(%s): %v", repo, err)
	}
	if ok != want {
		t.Fatalf("RepositoryExists(%s) = %v, want %v", repo, ok, want)
	}
}

func catalog(t *testing.T, s *meta.Store) []string {
	t.Helper()
	names, err := s.Repositories(t.Context(), "", 1000)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	return names
}

func tags(t *testing.T, s *meta.Store, repo string) []string {
	t.Helper()
	got, err := s.Tags(t.Context(), repo, "", 100000)
	if err != nil {
		t.Fatalf("Tags(%s): %v", repo, err)
	}
	return got
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// ---- repositories ----

func testRepositoriesCreated(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	equal(t, "empty catalog", catalog(t, s), nil)
	wantExists(t, s, "via/upload", false)

	if err := s.CreateUpload(ctx, meta.Upload{ID: "u1", Repository: "via/upload", Handle: "h1"}); err != nil {
		t.Fatal(err)
	}
	commit(t, s, "via/blob", "a blob")
	putManifest(t, s, manifest("via/manifest", "m"))
	if _, err := s.LinkBlob(ctx, "via/link", dgst("a blob")); err != nil {
		t.Fatal(err)
	}
	// A failed mount (unknown blob) must not create the repository.
	_, err := s.LinkBlob(ctx, "via/failed-link", dgst("unknown"))
	wantNotFound(t, "LinkBlob of an unknown blob", err)

	for _, r := range []string{"via/upload", "via/blob", "via/manifest", "via/link"} {
		wantExists(t, s, r, true)
	}
	wantExists(t, s, "via/failed-link", false)
	wantExists(t, s, "via", false)
	equal(t, "catalog", catalog(t, s), []string{"via/blob", "via/link", "via/manifest", "via/upload"})
}

func testCatalog(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	// Byte order: '-' < '.' < '/' < '0' < '_' < 'a'; upper case before lower case.
	names := []string{"b", "a/b", "a", "a-b", "a.b", "a_b", "ab", "a0", "b/c/d", "Z", "zz", "a/b/c", "A"}
	for i, n := range names {
		// Alternate how each repository comes to exist.
		if i%2 == 0 {
			commit(t, s, n, "blob of "+n)
		} else {
			putManifest(t, s, manifest(n, n), "latest")
		}
	}
	want := slices.Clone(names)
	sort.Strings(want)
	equal(t, "catalog", catalog(t, s), want)

	for _, n := range []int{1, 2, 3, 5, len(want), len(want) + 1} {
		var walked []string
		last := ""
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("n=%d: pagination does not end", n)
			}
			page, err := s.Repositories(ctx, last, n)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > n {
				t.Fatalf("n=%d: page of %d", n, len(page))
			}
			if len(page) == 0 {
				break
			}
			walked = append(walked, page...)
			last = page[len(page)-1]
		}
		equal(t, fmt.Sprintf("catalog walked with n=%d", n), walked, want)
	}

	// last need not name an existing repository.
	page, err := s.Repositories(ctx, "a/c", 3)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, `Repositories(last="a/c", 3)`, page, []string{"a0", "a_b", "ab"})
	page, err = s.Repositories(ctx, "zz", 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, `Repositories(last="zz")`, page, nil)
}

func testDeleteRepository(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	_, err := s.DeleteRepository(ctx, "nope")
	wantNotFound(t, "DeleteRepository(unknown)", err)

	// Two repositories sharing a blob and a manifest digest.
	for _, repo := range []string{"victim", "survivor"} {
		commit(t, s, repo, "shared layer")
		commit(t, s, repo, "own layer of "+repo)
		img := manifest(repo, "shared image")
		img.Blobs = []string{dgst("shared layer")}
		putManifest(t, s, img, "latest", "v1")
		sig := manifest(repo, "signature")
		sig.Subject = img.Digest
		sig.ArtifactType = "application/vnd.example.sig"
		putManifest(t, s, sig)
		if err := s.CreateUpload(ctx, meta.Upload{ID: repo + "-up", Repository: repo, Handle: repo + "-handle"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := s.CreateUpload(ctx, meta.Upload{ID: fmt.Sprint("extra", i), Repository: "victim", Handle: fmt.Sprint("victim-extra-", i)}); err != nil {
			t.Fatal(err)
		}
	}

	handles, err := s.DeleteRepository(ctx, "victim")
	if err != nil {
		t.Fatalf("DeleteRepository: %v", err)
	}
	sort.Strings(handles)
	equal(t, "returned upload handles", handles, []string{"victim-extra-0", "victim-extra-1", "victim-extra-2", "victim-handle"})

	img := manifest("victim", "shared image")
	wantExists(t, s, "victim", false)
	equal(t, "catalog", catalog(t, s), []string{"survivor"})
	equal(t, "tags of deleted repository", tags(t, s, "victim"), nil)
	_, err = s.GetManifest(ctx, "victim", "latest", false, false)
	wantNotFound(t, "GetManifest by tag in deleted repository", err)
	_, err = s.GetManifest(ctx, "victim", img.Digest, true, true)
	wantNotFound(t, "GetManifest by digest in deleted repository", err)
	_, err = s.RepositoryBlob(ctx, "victim", dgst("shared layer"))
	wantNotFound(t, "RepositoryBlob in deleted repository", err)
	_, err = s.GetUpload(ctx, "victim", "victim-up")
	wantNotFound(t, "GetUpload in deleted repository", err)
	refs, err := s.Referrers(ctx, "victim", img.Digest, "")
	if err != nil || len(refs) != 0 {
		t.Fatalf("Referrers in deleted repository = %v, %v; want none", refs, err)
	}
	hs, err := s.UploadHandles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"survivor-handle": true}; !maps.Equal(hs, want) {
		t.Fatalf("UploadHandles = %v, want %v", hs, want)
	}
	repos, err := s.RepositoriesWithBlob(ctx, dgst("shared layer"), 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "RepositoriesWithBlob(shared layer)", repos, []string{"survivor"})
	repos, err = s.RepositoriesWithBlob(ctx, dgst("own layer of victim"), 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "RepositoriesWithBlob(victim's own layer)", repos, nil)
	// Blob rows (bytes) stay until garbage collection.
	if _, err := s.Blob(ctx, dgst("own layer of victim")); err != nil {
		t.Fatalf("Blob row of the deleted repository's layer: %v (must stay for GC)", err)
	}

	// The survivor is untouched.
	equal(t, "survivor tags", tags(t, s, "survivor"), []string{"latest", "v1"})
	if m, err := s.GetManifest(ctx, "survivor", "latest", false, true); err != nil || m.Digest != manifest("survivor", "shared image").Digest {
		t.Fatalf("survivor latest = %+v, %v", m, err)
	}
	if _, err := s.RepositoryBlob(ctx, "survivor", dgst("shared layer")); err != nil {
		t.Fatalf("survivor blob: %v", err)
	}
	if _, err := s.GetUpload(ctx, "survivor", "survivor-up"); err != nil {
		t.Fatalf("survivor upload: %v", err)
	}
	refs, err = s.Referrers(ctx, "survivor", manifest("survivor", "shared image").Digest, "")
	if err != nil || len(refs) != 1 {
		t.Fatalf("survivor referrers = %v, %v; want 1", refs, err)
	}

	_, err = s.DeleteRepository(ctx, "victim")
	wantNotFound(t, "DeleteRepository twice", err)

	// Recreating the name starts empty: nothing of the old repository comes back.
	putManifest(t, s, manifest("victim", "new"), "fresh")
	equal(t, "tags of recreated repository", tags(t, s, "victim"), []string{"fresh"})
	_, err = s.RepositoryBlob(ctx, "victim", dgst("shared layer"))
	wantNotFound(t, "old blob link in recreated repository", err)
	_, err = s.GetManifest(ctx, "victim", img.Digest, true, false)
	wantNotFound(t, "old manifest in recreated repository", err)
	_, err = s.GetUpload(ctx, "victim", "victim-up")
	wantNotFound(t, "old upload in recreated repository", err)
}

// ---- blobs ----

func testCommitBlob(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	d := dgst("layer")
	_, err := s.Blob(ctx, d)
	wantNotFound(t, "Blob before commit", err)

	first := meta.Blob{Digest: d, Size: 5, Location: location(d, "-first")}
	got, err := s.CommitBlob(ctx, "a", first, "")
	if err != nil {
		t.Fatal(err)
	}
	if got != first {
		t.Fatalf("CommitBlob = %+v, want %+v", got, first)
	}
	// Same digest again, elsewhere: the existing row wins, in the same and another repo.
	for _, repo := range []string{"a", "b"} {
		got, err = s.CommitBlob(ctx, repo, meta.Blob{Digest: d, Size: 5, Location: location(d, "-second")}, "")
		if err != nil {
			t.Fatal(err)
		}
		if got != first {
			t.Fatalf("second CommitBlob in %s = %+v, want existing row %+v", repo, got, first)
		}
	}
	for _, repo := range []string{"a", "b"} {
		rb, err := s.RepositoryBlob(ctx, repo, d)
		if err != nil || rb != first {
			t.Fatalf("RepositoryBlob(%s) = %+v, %v; want %+v", repo, rb, err, first)
		}
	}
	if b, err := s.Blob(ctx, d); err != nil || b != first {
		t.Fatalf("Blob = %+v, %v; want %+v", b, err, first)
	}
	repos, err := s.RepositoriesWithBlob(ctx, d, 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "RepositoriesWithBlob after repeated commits", repos, []string{"a", "b"})

	// Sizes past 32 bits round-trip.
	big := meta.Blob{Digest: dgst("big"), Size: 5 << 30, Location: location(dgst("big"), "")}
	if got, err := s.CommitBlob(ctx, "a", big, ""); err != nil || got != big {
		t.Fatalf("CommitBlob(5 GiB) = %+v, %v", got, err)
	}
	if got, err := s.RepositoryBlob(ctx, "a", big.Digest); err != nil || got.Size != 5<<30 {
		t.Fatalf("RepositoryBlob(5 GiB) = %+v, %v", got, err)
	}

	// With an upload id, the session ends in the same transaction.
	if err := s.CreateUpload(ctx, meta.Upload{ID: "up", Repository: "a", Handle: "h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitBlob(ctx, "a", meta.Blob{Digest: dgst("uploaded"), Size: 8, Location: "x"}, "up"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetUpload(ctx, "a", "up")
	wantNotFound(t, "upload after CommitBlob ended it", err)
	if _, err := s.RepositoryBlob(ctx, "a", dgst("uploaded")); err != nil {
		t.Fatal(err)
	}
}

func testBlobScoping(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	x := commit(t, s, "a", "secret layer")
	commit(t, s, "b", "b's own layer") // b exists, but never saw x

	_, err := s.RepositoryBlob(ctx, "b", x.Digest)
	wantNotFound(t, "blob of repo a seen from repo b", err)
	_, err = s.RepositoryBlob(ctx, "nope", x.Digest)
	wantNotFound(t, "blob seen from an unknown repository", err)
	_, err = s.RepositoryBlob(ctx, "a", dgst("never stored"))
	wantNotFound(t, "unknown blob", err)
	_, err = s.Blob(ctx, dgst("never stored"))
	wantNotFound(t, "Blob(unknown)", err)
	missing, err := s.MissingBlobs(ctx, "b", []string{x.Digest})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "MissingBlobs in b before mount", missing, []string{x.Digest})

	for range 2 { // LinkBlob is idempotent
		got, err := s.LinkBlob(ctx, "b", x.Digest)
		if err != nil {
			t.Fatalf("LinkBlob: %v", err)
		}
		if got != x {
			t.Fatalf("LinkBlob = %+v, want %+v", got, x)
		}
	}
	if got, err := s.RepositoryBlob(ctx, "b", x.Digest); err != nil || got != x {
		t.Fatalf("RepositoryBlob(b) after LinkBlob = %+v, %v", got, err)
	}
	// Mounting into a new repository creates it.
	if _, err := s.LinkBlob(ctx, "c", x.Digest); err != nil {
		t.Fatal(err)
	}
	wantExists(t, s, "c", true)

	if err := s.UnlinkBlob(ctx, "b", x.Digest); err != nil {
		t.Fatalf("UnlinkBlob: %v", err)
	}
	_, err = s.RepositoryBlob(ctx, "b", x.Digest)
	wantNotFound(t, "blob after UnlinkBlob", err)
	wantNotFound(t, "UnlinkBlob twice", s.UnlinkBlob(ctx, "b", x.Digest))
	wantNotFound(t, "UnlinkBlob in unknown repository", s.UnlinkBlob(ctx, "nope", x.Digest))
	wantNotFound(t, "UnlinkBlob of unknown blob", s.UnlinkBlob(ctx, "a", dgst("never stored")))
	// Other repositories keep it, and the row stays.
	for _, repo := range []string{"a", "c"} {
		if _, err := s.RepositoryBlob(ctx, repo, x.Digest); err != nil {
			t.Fatalf("RepositoryBlob(%s) after unlink from b: %v", repo, err)
		}
	}
	if _, err := s.Blob(ctx, x.Digest); err != nil {
		t.Fatalf("Blob after unlink: %v", err)
	}
	if _, err := s.RepositoryBlob(ctx, "b", dgst("b's own layer")); err != nil {
		t.Fatalf("b's own layer after unlinking another: %v", err)
	}
	// Re-linking works after an unlink.
	if _, err := s.LinkBlob(ctx, "b", x.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RepositoryBlob(ctx, "b", x.Digest); err != nil {
		t.Fatal(err)
	}
}

func testRepositoriesWithBlob(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	d := dgst("popular")
	repos := []string{"m", "b/x", "a", "B", "z", "b"}
	for _, r := range repos {
		commit(t, s, r, "popular")
	}
	commit(t, s, "other", "unpopular")
	want := slices.Clone(repos)
	sort.Strings(want)
	got, err := s.RepositoriesWithBlob(ctx, d, 100)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "RepositoriesWithBlob", got, want)
	got, err = s.RepositoriesWithBlob(ctx, d, 2)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "RepositoriesWithBlob limit 2", got, want[:2])
	got, err = s.RepositoriesWithBlob(ctx, dgst("never stored"), 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "RepositoriesWithBlob(unknown)", got, nil)
}

func testMissing(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	here := commit(t, s, "a", "here").Digest
	elsewhere := commit(t, s, "b", "elsewhere").Digest
	unknown := dgst("unknown")

	missing, err := s.MissingBlobs(ctx, "a", []string{here, elsewhere, unknown, here, elsewhere})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "MissingBlobs", missing, []string{elsewhere, unknown})
	missing, err = s.MissingBlobs(ctx, "a", nil)
	if err != nil || len(missing) != 0 {
		t.Fatalf("MissingBlobs(nil) = %v, %v", missing, err)
	}
	missing, err = s.MissingBlobs(ctx, "nope", []string{here})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "MissingBlobs in unknown repository", missing, []string{here})

	mHere := manifest("a", "here")
	putManifest(t, s, mHere)
	mElsewhere := manifest("b", "elsewhere")
	putManifest(t, s, mElsewhere)
	missing, err = s.MissingManifests(ctx, "a", []string{mHere.Digest, mElsewhere.Digest, unknown, mHere.Digest, here})
	if err != nil {
		t.Fatal(err)
	}
	// A blob is not a manifest.
	equal(t, "MissingManifests", missing, []string{mElsewhere.Digest, unknown, here})
	missing, err = s.MissingManifests(ctx, "a", nil)
	if err != nil || len(missing) != 0 {
		t.Fatalf("MissingManifests(nil) = %v, %v", missing, err)
	}
}

// ---- uploads ----

func testUploadCreateGet(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	state := make([]byte, 256)
	for i := range state {
		state[i] = byte(i) // every byte value, NUL and invalid UTF-8 included
	}
	before := time.Now().Add(-time.Second)
	u := meta.Upload{ID: "0123456789abcdef", Repository: "a/b", Handle: "handle-1", Size: 0, HashState: state}
	if err := s.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(time.Second)
	wantExists(t, s, "a/b", true)
	got, err := s.GetUpload(ctx, "a/b", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != u.ID || got.Repository != "a/b" || got.Handle != u.Handle || got.Size != 0 || !bytes.Equal(got.HashState, state) {
		t.Fatalf("GetUpload = %+v, want %+v", got, u)
	}
	for name, ts := range map[string]time.Time{"StartedAt": got.StartedAt, "UpdatedAt": got.UpdatedAt} {
		if ts.Before(before) || ts.After(after) {
			t.Fatalf("%s = %v, want about now", name, ts)
		}
	}

	// Scoped to its repository, even one that exists.
	commit(t, s, "other", "x")
	_, err = s.GetUpload(ctx, "other", u.ID)
	wantNotFound(t, "upload of a/b fetched through repo other", err)
	_, err = s.GetUpload(ctx, "nope", u.ID)
	wantNotFound(t, "upload fetched through unknown repository", err)
	_, err = s.GetUpload(ctx, "a/b", "unknown-id")
	wantNotFound(t, "unknown upload", err)

	if err := s.CreateUpload(ctx, meta.Upload{ID: u.ID, Repository: "other", Handle: "h2"}); err == nil {
		t.Fatal("CreateUpload with a duplicate id succeeded")
	}
	if got, err := s.GetUpload(ctx, "a/b", u.ID); err != nil || got.Handle != u.Handle {
		t.Fatalf("original upload after duplicate create = %+v, %v", got, err)
	}

	// No hash state yet is allowed.
	if err := s.CreateUpload(ctx, meta.Upload{ID: "nostate", Repository: "a/b", Handle: "h3"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetUpload(ctx, "a/b", "nostate"); err != nil || len(got.HashState) != 0 {
		t.Fatalf("upload without hash state = %+v, %v", got, err)
	}
}

func testUploadAdvance(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	if err := s.CreateUpload(ctx, meta.Upload{ID: "u", Repository: "r", Handle: "h", HashState: []byte("s0")}); err != nil {
		t.Fatal(err)
	}
	created, _ := s.GetUpload(ctx, "r", "u")
	time.Sleep(5 * time.Millisecond)

	if err := s.AdvanceUpload(ctx, meta.Upload{ID: "u", Size: 10, HashState: []byte("s10")}, 0); err != nil {
		t.Fatalf("AdvanceUpload 0→10: %v", err)
	}
	got, err := s.GetUpload(ctx, "r", "u")
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != 10 || string(got.HashState) != "s10" || got.Handle != "h" {
		t.Fatalf("after advance: %+v", got)
	}
	if !got.UpdatedAt.After(created.UpdatedAt) || !got.StartedAt.Equal(created.StartedAt) {
		t.Fatalf("after advance: started %v→%v, updated %v→%v; want started unchanged, updated later",
			created.StartedAt, got.StartedAt, created.UpdatedAt, got.UpdatedAt)
	}

	// A second writer that read size 0 loses.
	err = s.AdvanceUpload(ctx, meta.Upload{ID: "u", Size: 7, HashState: []byte("s7")}, 0)
	if !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("stale AdvanceUpload: err = %v, want ErrConflict", err)
	}
	if got, _ := s.GetUpload(ctx, "r", "u"); got.Size != 10 || string(got.HashState) != "s10" {
		t.Fatalf("a lost advance changed the row: %+v", got)
	}
	if err := s.AdvanceUpload(ctx, meta.Upload{ID: "u", Size: 25, HashState: []byte("s25")}, 10); err != nil {
		t.Fatalf("AdvanceUpload 10→25: %v", err)
	}
	if got, _ := s.GetUpload(ctx, "r", "u"); got.Size != 25 || string(got.HashState) != "s25" {
		t.Fatalf("after second advance: %+v", got)
	}
	err = s.AdvanceUpload(ctx, meta.Upload{ID: "gone", Size: 1}, 0)
	if !errors.Is(err, meta.ErrConflict) && !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("AdvanceUpload of unknown upload: err = %v, want ErrConflict or ErrNotFound", err)
	}
}

func testUploadDeleteStale(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	for i, repo := range []string{"a", "b", "a"} {
		if i > 0 {
			time.Sleep(5 * time.Millisecond) // distinct updated_at (millisecond resolution)
		}
		if err := s.CreateUpload(ctx, meta.Upload{ID: fmt.Sprint("u", i), Repository: repo, Handle: fmt.Sprint("h", i), Size: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(us []meta.Upload) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.ID)
		}
		return out
	}
	future := time.Now().Add(time.Minute)
	stale, err := s.StaleUploads(ctx, future, 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "StaleUploads oldest first", ids(stale), []string{"u0", "u1", "u2"})
	if u := stale[1]; u.Repository != "b" || u.Handle != "h1" || u.Size != 1 {
		t.Fatalf("StaleUploads row = %+v, want repository b, handle h1, size 1", u)
	}
	stale, err = s.StaleUploads(ctx, future, 2)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "StaleUploads limit 2", ids(stale), []string{"u0", "u1"})
	stale, err = s.StaleUploads(ctx, time.Now().Add(-time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "StaleUploads an hour ago", ids(stale), nil)

	// Touching an upload makes it the freshest.
	time.Sleep(5 * time.Millisecond)
	if err := s.AdvanceUpload(ctx, meta.Upload{ID: "u0", Size: 100}, 0); err != nil {
		t.Fatal(err)
	}
	stale, err = s.StaleUploads(ctx, future, 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "StaleUploads after touching u0", ids(stale), []string{"u1", "u2", "u0"})

	hs, err := s.UploadHandles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"h0": true, "h1": true, "h2": true}; !maps.Equal(hs, want) {
		t.Fatalf("UploadHandles = %v, want %v", hs, want)
	}

	if err := s.DeleteUpload(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetUpload(ctx, "b", "u1")
	wantNotFound(t, "GetUpload after DeleteUpload", err)
	wantNotFound(t, "DeleteUpload twice", s.DeleteUpload(ctx, "u1"))
	stale, err = s.StaleUploads(ctx, future, 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "StaleUploads after delete", ids(stale), []string{"u2", "u0"})
	hs, err = s.UploadHandles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"h0": true, "h2": true}; !maps.Equal(hs, want) {
		t.Fatalf("UploadHandles after delete = %v, want %v", hs, want)
	}
}

// ---- manifests ----

func getManifest(t *testing.T, s *meta.Store, repo, ref string, byDigest, payload bool) meta.Manifest {
	t.Helper()
	m, err := s.GetManifest(t.Context(), repo, ref, byDigest, payload)
	if err != nil {
		t.Fatalf("GetManifest(%s, %s, byDigest=%v, payload=%v): %v", repo, ref, byDigest, payload, err)
	}
	return m
}

func testManifestPutGet(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	m1 := manifest("r", "one")
	m1.Blobs = []string{dgst("config"), dgst("layer")}
	putManifest(t, s, m1, "latest", "v1")

	check := func(ref string, byDigest bool, want meta.Manifest) {
		t.Helper()
		with := getManifest(t, s, "r", ref, byDigest, true)
		if with.Digest != want.Digest || with.MediaType != want.MediaType || with.Size != int64(len(want.Payload)) ||
			!bytes.Equal(with.Payload, want.Payload) || with.Repository != "r" {
			t.Fatalf("GetManifest(%s) with payload = %+v, want %s", ref, with, want.Digest)
		}
		without := getManifest(t, s, "r", ref, byDigest, false)
		if without.Digest != want.Digest || without.MediaType != want.MediaType || without.Size != int64(len(want.Payload)) || without.Payload != nil {
			t.Fatalf("GetManifest(%s) without payload = %+v, want %s and no payload", ref, without, want.Digest)
		}
	}
	check("latest", false, m1)
	check("v1", false, m1)
	check(m1.Digest, true, m1)

	// Idempotent: the same manifest again, and again with one more tag.
	putManifest(t, s, m1, "latest", "v1")
	putManifest(t, s, m1, "v1.0")
	equal(t, "tags", tags(t, s, "r"), []string{"latest", "v1", "v1.0"})
	check("v1.0", false, m1)
	putManifest(t, s, m1) // no tags: tags stay
	equal(t, "tags after untagged re-put", tags(t, s, "r"), []string{"latest", "v1", "v1.0"})

	// Moving a tag.
	m2 := manifest("r", "two")
	m2.MediaType = "application/vnd.oci.image.index.v1+json"
	m2.Children = []string{m1.Digest}
	putManifest(t, s, m2, "latest")
	check("latest", false, m2)
	check("v1", false, m1)
	check(m1.Digest, true, m1)
	check(m2.Digest, true, m2)
	equal(t, "tags after move", tags(t, s, "r"), []string{"latest", "v1", "v1.0"})

	// Lookups are exact in kind and repository.
	_, err := s.GetManifest(ctx, "r", m1.Digest, false, true)
	wantNotFound(t, "digest looked up as a tag", err)
	_, err = s.GetManifest(ctx, "r", "latest", true, true)
	wantNotFound(t, "tag looked up as a digest", err)
	_, err = s.GetManifest(ctx, "r", "nope", false, false)
	wantNotFound(t, "unknown tag", err)
	_, err = s.GetManifest(ctx, "r", dgst("nope"), true, false)
	wantNotFound(t, "unknown digest", err)
	_, err = s.GetManifest(ctx, "Latest", "latest", false, false)
	wantNotFound(t, "unknown repository", err)
	_, err = s.GetManifest(ctx, "r", "LATEST", false, false)
	wantNotFound(t, "tags are case-sensitive", err)
	commit(t, s, "other", "x")
	_, err = s.GetManifest(ctx, "other", m1.Digest, true, true)
	wantNotFound(t, "manifest of r fetched through other", err)
	_, err = s.GetManifest(ctx, "other", "latest", false, true)
	wantNotFound(t, "tag of r fetched through other", err)

	// The same digest in another repository is an independent row.
	m1other := m1
	m1other.Repository = "other"
	putManifest(t, s, m1other, "mine")
	if got := getManifest(t, s, "other", "mine", false, true); got.Digest != m1.Digest || !bytes.Equal(got.Payload, m1.Payload) {
		t.Fatalf("manifest in other = %+v", got)
	}
	equal(t, "tags of r unaffected", tags(t, s, "r"), []string{"latest", "v1", "v1.0"})
	missing, err := s.MissingManifests(ctx, "r", []string{m1.Digest, m2.Digest})
	if err != nil || len(missing) != 0 {
		t.Fatalf("MissingManifests = %v, %v", missing, err)
	}
}

func testManifestPayload(t *testing.T, s *meta.Store) {
	// The registry serves exactly the bytes it was sent: odd whitespace, key order,
	// escapes, invalid UTF-8, NUL bytes and a large body must come back identical.
	payloads := map[string][]byte{
		"whitespace": []byte("  {\n\t\"schemaVersion\" : 2 ,\r\n \"z\":1,\"a\":\"\\u00e9\\/\"}\n\n  "),
		"binary":     append([]byte{0, 0xff, 0xfe, '{', 0x80, '}', 0}, []byte("\x00trailing")...),
		"unicode":    []byte(`{"schemaVersion":2,"annotations":{"k":"日本語 ✓ \ud83d"}}`),
	}
	large := make([]byte, 4<<20)
	for i := range large {
		large[i] = byte(i*7 + i>>8)
	}
	payloads["4MiB"] = large
	for name, p := range payloads {
		sum := sha256.Sum256(p)
		m := meta.Manifest{Repository: "r", Digest: "sha256:" + hex.EncodeToString(sum[:]), MediaType: "application/vnd.oci.image.manifest.v1+json", Payload: p}
		putManifest(t, s, m, name)
		for _, ref := range []struct {
			ref      string
			byDigest bool
		}{{name, false}, {m.Digest, true}} {
			got := getManifest(t, s, "r", ref.ref, ref.byDigest, true)
			if !bytes.Equal(got.Payload, p) {
				t.Fatalf("%s: payload differs (got %d bytes, want %d)", name, len(got.Payload), len(p))
			}
			if got.Size != int64(len(p)) {
				t.Fatalf("%s: Size = %d, want %d", name, got.Size, len(p))
			}
		}
	}
}

func testManifestDelete(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	m1, m2 := manifest("r", "one"), manifest("r", "two")
	m1.Blobs = []string{dgst("layer")}
	putManifest(t, s, m1, "a", "b", "c")
	putManifest(t, s, m2, "latest")
	// Deleting a manifest removes every tag pointing at it, and only those.
	if err := s.DeleteManifest(ctx, "r", m1.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	equal(t, "tags after DeleteManifest", tags(t, s, "r"), []string{"latest"})
	_, err := s.GetManifest(ctx, "r", m1.Digest, true, false)
	wantNotFound(t, "deleted manifest", err)
	_, err = s.GetManifest(ctx, "r", "a", false, false)
	wantNotFound(t, "tag of deleted manifest", err)
	wantNotFound(t, "DeleteManifest twice", s.DeleteManifest(ctx, "r", m1.Digest))
	wantNotFound(t, "DeleteManifest in unknown repository", s.DeleteManifest(ctx, "nope", m2.Digest))
	getManifest(t, s, "r", "latest", false, true)

	// A deleted manifest can be pushed again, with its references.
	putManifest(t, s, m1, "again")
	if got := getManifest(t, s, "r", "again", false, true); got.Digest != m1.Digest {
		t.Fatalf("re-pushed manifest = %+v", got)
	}
	equal(t, "tags after re-push", tags(t, s, "r"), []string{"again", "latest"})

	// DeleteTag removes the tag only.
	if err := s.DeleteTag(ctx, "r", "latest"); err != nil {
		t.Fatalf("DeleteTag: %v", err)
	}
	_, err = s.GetManifest(ctx, "r", "latest", false, false)
	wantNotFound(t, "deleted tag", err)
	getManifest(t, s, "r", m2.Digest, true, true)
	wantNotFound(t, "DeleteTag twice", s.DeleteTag(ctx, "r", "latest"))
	wantNotFound(t, "DeleteTag in unknown repository", s.DeleteTag(ctx, "nope", "again"))
	wantNotFound(t, "DeleteTag of unknown tag", s.DeleteTag(ctx, "r", "zzz"))
	equal(t, "tags after DeleteTag", tags(t, s, "r"), []string{"again"})

	// Deleting in one repository leaves the same digest in another.
	m1b := m1
	m1b.Repository = "s"
	putManifest(t, s, m1b, "again")
	if err := s.DeleteManifest(ctx, "r", m1.Digest); err != nil {
		t.Fatal(err)
	}
	if got := getManifest(t, s, "s", "again", false, true); got.Digest != m1.Digest {
		t.Fatalf("manifest in s after deleting it in r = %+v", got)
	}
	equal(t, "tags of s", tags(t, s, "s"), []string{"again"})
}

func testTagFreshness(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	m1, m2 := manifest("r", "one"), manifest("r", "two")
	before := time.Now().Add(-time.Second)
	putManifest(t, s, m1, "v1")
	putManifest(t, s, m2, "other")
	got := getManifest(t, s, "r", "v1", false, false)
	if got.TagUpdatedAt.Before(before) || got.TagUpdatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("TagUpdatedAt = %v, want about now", got.TagUpdatedAt)
	}
	if d := getManifest(t, s, "r", m1.Digest, true, true); !d.TagUpdatedAt.IsZero() {
		t.Fatalf("TagUpdatedAt by digest = %v, want zero", d.TagUpdatedAt)
	}
	set := got.TagUpdatedAt

	// TouchTag restarts the period only while the tag still points at the digest.
	time.Sleep(5 * time.Millisecond)
	ok, err := s.TouchTag(ctx, "r", "v1", m1.Digest)
	if err != nil || !ok {
		t.Fatalf("TouchTag(v1 → m1) = %v, %v; want true", ok, err)
	}
	touched := getManifest(t, s, "r", "v1", false, true).TagUpdatedAt
	if !touched.After(set) {
		t.Fatalf("TagUpdatedAt after TouchTag = %v, want after %v", touched, set)
	}
	for _, c := range []struct{ repo, tag, digest string }{
		{"r", "v1", m2.Digest},       // the tag points elsewhere
		{"r", "nope", m1.Digest},     // no such tag
		{"nope", "v1", m1.Digest},    // no such repository
		{"r", m1.Digest, m1.Digest},  // a digest is not a tag
		{"r", "other", dgst("none")}, // no such manifest
	} {
		ok, err := s.TouchTag(ctx, c.repo, c.tag, c.digest)
		if err != nil || ok {
			t.Fatalf("TouchTag(%s, %s, %s) = %v, %v; want false", c.repo, c.tag, c.digest, ok, err)
		}
	}
	if after := getManifest(t, s, "r", "v1", false, false).TagUpdatedAt; !after.Equal(touched) {
		t.Fatalf("refused TouchTag changed TagUpdatedAt %v → %v", touched, after)
	}
	// Moving the tag also refreshes it; touching for the old digest then fails.
	time.Sleep(5 * time.Millisecond)
	putManifest(t, s, m2, "v1")
	moved := getManifest(t, s, "r", "v1", false, false)
	if moved.Digest != m2.Digest || !moved.TagUpdatedAt.After(touched) {
		t.Fatalf("after moving v1: %+v", moved)
	}
	if ok, err := s.TouchTag(ctx, "r", "v1", m1.Digest); err != nil || ok {
		t.Fatalf("TouchTag for the old digest = %v, %v; want false", ok, err)
	}
}

func testTagOrder(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	// "ASCIIbetical": byte order, upper case before lower case, punctuation by code point.
	names := []string{"latest", "Latest", "LATEST", "v1.10", "v1.2", "v1.0", "V2", "a", "A", "b", "B", "_x", "a-b", "a.b", "a_b", "0", "9", "z", "Z"}
	m := manifest("r", "m")
	putManifest(t, s, m, names...)
	want := slices.Clone(names)
	sort.Strings(want)
	equal(t, "tags", tags(t, s, "r"), want)

	var walked []string
	last := ""
	for {
		page, err := s.Tags(ctx, "r", last, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 4 {
			t.Fatalf("page of %d with n=4", len(page))
		}
		if len(page) == 0 {
			break
		}
		walked = append(walked, page...)
		last = page[len(page)-1]
	}
	equal(t, "tags walked with n=4", walked, want)

	// last need not be a tag; it is compared by bytes.
	page, err := s.Tags(ctx, "r", "M", 3)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, `Tags(last="M", 3)`, page, []string{"V2", "Z", "_x"})
	page, err = s.Tags(ctx, "nope", "", 10)
	if err != nil || len(page) != 0 {
		t.Fatalf("Tags of unknown repository = %v, %v; want empty", page, err)
	}
}

func testTagPagination(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	const total, n = 10000, 100
	names := make([]string, total)
	for i := range names {
		// Mixed case, digits and punctuation, inserted out of order.
		j := (i * 7919) % total
		switch j % 4 {
		case 0:
			names[i] = fmt.Sprintf("v%d.%d", j/100, j%100)
		case 1:
			names[i] = fmt.Sprintf("V%05d", j)
		case 2:
			names[i] = fmt.Sprintf("build-%x_%d", j, j%3)
		default:
			names[i] = fmt.Sprintf("SHA.%04X", j)
		}
	}
	m := manifest("big", "m")
	start := time.Now()
	putManifest(t, s, m, names...)
	putManifest(t, s, manifest("big-neighbour", "m"), "v1", "zz") // another repository's tags stay out
	t.Logf("tagged %d in %v", total, time.Since(start))

	want := slices.Clone(names)
	sort.Strings(want)
	walked := make([]string, 0, total)
	last := ""
	pages := 0
	var slowest, first, final time.Duration
	start = time.Now()
	for {
		t0 := time.Now()
		page, err := s.Tags(ctx, "big", last, n)
		d := time.Since(t0)
		slowest = max(slowest, d)
		if pages == 0 {
			first = d
		} else if len(page) > 0 {
			final = d
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > n {
			t.Fatalf("page of %d with n=%d", len(page), n)
		}
		pages++
		walked = append(walked, page...)
		last = page[len(page)-1]
		if pages > total/n+1 {
			t.Fatal("pagination does not end")
		}
	}
	elapsed := time.Since(start)
	if pages != total/n {
		t.Fatalf("walked %d pages, want %d", pages, total/n)
	}
	equal(t, "10,000 tags walked", walked, want)
	// An indexed keyset query costs about the same on every page; a scan-and-sort costs
	// more the more rows lie past last, so its first page is far slower than its last.
	// Logged, not asserted: timing depends on the machine.
	t.Logf("walked %d tags in %d pages of %d: %v total, %v per page; first page %v, last page %v, slowest %v",
		total, pages, n, elapsed, elapsed/time.Duration(pages), first, final, slowest)
}

// ---- referrers ----

func testReferrers(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	subject := manifest("a", "subject")
	putManifest(t, s, subject, "latest")

	sig := manifest("a", "signature")
	sig.Subject = subject.Digest
	sig.ArtifactType = "application/vnd.example.signature"
	sig.Annotations = map[string]string{
		"org.opencontainers.image.created": "2024-01-02T03:04:05Z",
		"com.example.note":                 "quotes \" and unicode ✓",
		"empty":                            "",
	}
	sbom := manifest("a", "sbom")
	sbom.Subject = subject.Digest
	sbom.ArtifactType = "application/vnd.example.sbom"
	sbom.MediaType = "application/vnd.oci.image.index.v1+json"
	unrelated := manifest("a", "unrelated") // no subject
	unrelated.ArtifactType = "application/vnd.example.signature"
	elsewhere := manifest("b", "elsewhere signature")
	elsewhere.Subject = subject.Digest
	elsewhere.ArtifactType = "application/vnd.example.signature"
	// A referrer may arrive before its subject.
	early := manifest("a", "early")
	early.Subject = dgst("not pushed yet")
	early.ArtifactType = "application/vnd.example.signature"
	for _, m := range []meta.Manifest{sig, sbom, unrelated, elsewhere, early} {
		putManifest(t, s, m)
	}

	byDigest := func(ms []meta.Manifest) map[string]meta.Manifest {
		out := map[string]meta.Manifest{}
		for _, m := range ms {
			out[m.Digest] = m
		}
		return out
	}
	all, err := s.Referrers(ctx, "a", subject.Digest, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("Referrers = %d manifests %+v, want signature and sbom", len(all), all)
	}
	got := byDigest(all)
	for _, want := range []meta.Manifest{sig, sbom} {
		g, ok := got[want.Digest]
		if !ok {
			t.Fatalf("Referrers lacks %s", want.Digest)
		}
		if g.MediaType != want.MediaType || g.ArtifactType != want.ArtifactType || g.Size != int64(len(want.Payload)) ||
			g.Subject != subject.Digest || g.Repository != "a" {
			t.Fatalf("referrer = %+v, want %+v", g, want)
		}
		if !maps.Equal(g.Annotations, want.Annotations) {
			t.Fatalf("referrer annotations = %#v, want %#v", g.Annotations, want.Annotations)
		}
	}
	if got[sbom.Digest].Annotations != nil {
		t.Fatalf("annotations of a manifest without any = %#v, want nil", got[sbom.Digest].Annotations)
	}
	again, err := s.Referrers(ctx, "a", subject.Digest, "")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digests(all), digests(again); !slices.Equal(a, b) {
		t.Fatalf("Referrers order is not stable: %v then %v", a, b)
	}

	filtered, err := s.Referrers(ctx, "a", subject.Digest, "application/vnd.example.signature")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "Referrers filtered by artifactType", digests(filtered), []string{sig.Digest})
	filtered, err = s.Referrers(ctx, "a", subject.Digest, "application/vnd.example.none")
	if err != nil || len(filtered) != 0 {
		t.Fatalf("Referrers of an absent artifactType = %v, %v", filtered, err)
	}

	// Referrers stay within their repository.
	other, err := s.Referrers(ctx, "b", subject.Digest, "")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "Referrers in b", digests(other), []string{elsewhere.Digest})
	none, err := s.Referrers(ctx, "nope", subject.Digest, "")
	if err != nil || len(none) != 0 {
		t.Fatalf("Referrers in unknown repository = %v, %v", none, err)
	}
	pending, err := s.Referrers(ctx, "a", dgst("not pushed yet"), "")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "Referrers of a subject not pushed yet", digests(pending), []string{early.Digest})

	// Deleting a referrer removes it from the index; deleting the subject does not
	// remove its referrers.
	if err := s.DeleteManifest(ctx, "a", sig.Digest); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteManifest(ctx, "a", subject.Digest); err != nil {
		t.Fatal(err)
	}
	left, err := s.Referrers(ctx, "a", subject.Digest, "")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "Referrers after deletes", digests(left), []string{sbom.Digest})
}

func digests(ms []meta.Manifest) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Digest
	}
	return out
}

// ---- concurrency ----

// parallel runs fn(i) for i in [0, n) at once, released together, and fails t on any error.
func parallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent calls failed: %v", err)
	}
}

func testConcurrentBlob(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	d := dgst("contended layer")
	stored := make([]meta.Blob, workers)
	// Same blob, same (new) repository, each with its own copy of the bytes.
	parallel(t, workers, func(i int) error {
		var err error
		stored[i], err = s.CommitBlob(ctx, "same", meta.Blob{Digest: d, Size: 15, Location: location(d, fmt.Sprint("-", i))}, "")
		return err
	})
	row, err := s.Blob(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range stored {
		if b != row {
			t.Fatalf("committer %d was told %+v, but the row is %+v: every committer must learn the winning location", i, b, row)
		}
	}
	repos, err := s.RepositoriesWithBlob(ctx, d, 100)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "RepositoriesWithBlob", repos, []string{"same"})

	// Same blob into many new repositories at once, plus mounts of it.
	d2 := dgst("spread layer")
	parallel(t, workers, func(i int) error {
		b, err := s.CommitBlob(ctx, fmt.Sprintf("r%02d", i), meta.Blob{Digest: d2, Size: 12, Location: location(d2, fmt.Sprint("-", i))}, "")
		if err != nil {
			return err
		}
		if _, err := s.LinkBlob(ctx, "mounted", d2); err != nil {
			return err
		}
		if _, err := s.RepositoryBlob(ctx, fmt.Sprintf("r%02d", i), d2); err != nil {
			return fmt.Errorf("own commit not visible: %w", err)
		}
		if b.Size != 12 {
			return fmt.Errorf("size %d", b.Size)
		}
		return nil
	})
	row2, err := s.Blob(ctx, d2)
	if err != nil {
		t.Fatal(err)
	}
	repos, err = s.RepositoriesWithBlob(ctx, d2, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != workers+1 {
		t.Fatalf("blob visible in %d repositories %v, want %d", len(repos), repos, workers+1)
	}
	for _, r := range repos {
		if b, err := s.RepositoryBlob(ctx, r, d2); err != nil || b != row2 {
			t.Fatalf("RepositoryBlob(%s) = %+v, %v; want %+v", r, b, err, row2)
		}
	}
}

func testConcurrentTag(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	ms := make([]meta.Manifest, workers)
	for i := range ms {
		ms[i] = manifest("r", fmt.Sprint("candidate ", i))
		ms[i].Blobs = []string{dgst("layer"), dgst(fmt.Sprint("config ", i))}
		ms[i].Subject = dgst("subject")
		ms[i].ArtifactType = "application/vnd.example"
	}
	// Different manifests, same tags (in different orders), at once.
	parallel(t, workers, func(i int) error {
		tagList := []string{"latest", "stable"}
		if i%2 == 1 {
			tagList = []string{"stable", "latest"}
		}
		return s.PutManifest(ctx, ms[i], tagList)
	})
	equal(t, "tags", tags(t, s, "r"), []string{"latest", "stable"})
	latest := getManifest(t, s, "r", "latest", false, true)
	if !slices.ContainsFunc(ms, func(m meta.Manifest) bool { return m.Digest == latest.Digest && bytes.Equal(m.Payload, latest.Payload) }) {
		t.Fatalf("latest points at %s, not one of the pushed manifests", latest.Digest)
	}
	for _, m := range ms {
		getManifest(t, s, "r", m.Digest, true, false)
	}
	refs, err := s.Referrers(ctx, "r", dgst("subject"), "")
	if err != nil || len(refs) != workers {
		t.Fatalf("Referrers = %d, %v; want %d", len(refs), err, workers)
	}

	// The same manifest and tag at once.
	same := manifest("r", "same")
	parallel(t, workers, func(int) error { return s.PutManifest(ctx, same, []string{"same"}) })
	if got := getManifest(t, s, "r", "same", false, true); got.Digest != same.Digest {
		t.Fatalf("tag same = %s, want %s", got.Digest, same.Digest)
	}

	// Tag pushes racing tag deletes end with the tag either present or absent, never
	// pointing at nothing.
	parallel(t, workers, func(i int) error {
		if i%2 == 0 {
			return s.PutManifest(ctx, ms[i], []string{"flip"})
		}
		if err := s.DeleteTag(ctx, "r", "flip"); err != nil && !errors.Is(err, meta.ErrNotFound) {
			return err
		}
		return nil
	})
	if m, err := s.GetManifest(ctx, "r", "flip", false, true); err == nil {
		if !slices.ContainsFunc(ms, func(c meta.Manifest) bool { return c.Digest == m.Digest }) {
			t.Fatalf("flip points at %s", m.Digest)
		}
	} else if !errors.Is(err, meta.ErrNotFound) {
		t.Fatal(err)
	}
}

func testConcurrentRepository(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	// Every way of creating the same repository, at once.
	parallel(t, workers, func(i int) error {
		switch i % 4 {
		case 0:
			return s.CreateUpload(ctx, meta.Upload{ID: fmt.Sprint("u", i), Repository: "new/repo", Handle: fmt.Sprint("h", i)})
		case 1:
			_, err := s.CommitBlob(ctx, "new/repo", meta.Blob{Digest: dgst(fmt.Sprint(i)), Size: 1, Location: "l"}, "")
			return err
		case 2:
			return s.PutManifest(ctx, manifest("new/repo", fmt.Sprint(i)), []string{fmt.Sprint("t", i)})
		default:
			return s.CreateUpload(ctx, meta.Upload{ID: fmt.Sprint("u", i), Repository: "new/repo", Handle: fmt.Sprint("h", i)})
		}
	})
	equal(t, "catalog", catalog(t, s), []string{"new/repo"})
	for i := range workers {
		switch i % 4 {
		case 0, 3:
			if _, err := s.GetUpload(ctx, "new/repo", fmt.Sprint("u", i)); err != nil {
				t.Fatalf("upload u%d: %v", i, err)
			}
		case 1:
			if _, err := s.RepositoryBlob(ctx, "new/repo", dgst(fmt.Sprint(i))); err != nil {
				t.Fatalf("blob %d: %v", i, err)
			}
		case 2:
			getManifest(t, s, "new/repo", fmt.Sprint("t", i), false, false)
		}
	}
}

func testConcurrentAdvance(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	if err := s.CreateUpload(ctx, meta.Upload{ID: "u", Repository: "r", Handle: "h"}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	won := -1
	conflicts := 0
	parallel(t, workers, func(i int) error {
		err := s.AdvanceUpload(ctx, meta.Upload{ID: "u", Size: int64(10 + i), HashState: []byte(fmt.Sprint(i))}, 0)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			if won >= 0 {
				return fmt.Errorf("writers %d and %d both advanced from size 0", won, i)
			}
			won = i
		case errors.Is(err, meta.ErrConflict):
			conflicts++
		default:
			return err
		}
		return nil
	})
	if won < 0 || conflicts != workers-1 {
		t.Fatalf("winner %d, %d conflicts; want one winner and %d conflicts", won, conflicts, workers-1)
	}
	u, err := s.GetUpload(ctx, "r", "u")
	if err != nil {
		t.Fatal(err)
	}
	if u.Size != int64(10+won) || string(u.HashState) != fmt.Sprint(won) {
		t.Fatalf("upload = size %d state %q, want the winner's (%d)", u.Size, u.HashState, won)
	}
}

// testLeases: one holder per lease name; renew, release and expiry; racing takers of a
// free lease produce exactly one winner.
func testLeases(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	ok, err := s.TryLease(ctx, "purge", "a", time.Hour)
	if err != nil || !ok {
		t.Fatalf("first take: %v %v", ok, err)
	}
	if ok, _ := s.TryLease(ctx, "purge", "b", time.Hour); ok {
		t.Fatal("b took a's unexpired lease")
	}
	if ok, _ := s.TryLease(ctx, "purge", "a", time.Hour); !ok {
		t.Fatal("a could not renew its lease")
	}
	if ok, _ := s.TryLease(ctx, "evict", "b", time.Hour); !ok {
		t.Fatal("leases are per name")
	}
	if err := s.ReleaseLease(ctx, "purge", "a"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.TryLease(ctx, "purge", "b", time.Millisecond); !ok {
		t.Fatal("b could not take a released lease")
	}
	time.Sleep(5 * time.Millisecond)
	if ok, _ := s.TryLease(ctx, "purge", "c", time.Hour); !ok {
		t.Fatal("c could not take an expired lease")
	}
	// Racing holders for a free lease: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := s.TryLease(ctx, "gc", string(rune('a'+i)), time.Hour); err == nil && ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d holders won one lease", wins.Load())
	}
}

func testAuditFilter(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	resources := []string{
		"team", "team/app:v1", "team:latest", "robot$team+ci", // team's
		"team_x/app:v1", "teamx/app:v1", "robot$teamx+ci", "robot$ci", "user$alice", "a_b/c:d", // not team's
	}
	var entries []meta.AuditEntry
	for i, r := range resources {
		entries = append(entries, meta.AuditEntry{At: base.Add(time.Duration(i) * time.Minute), Actor: "alice", ActorType: "user",
			Action: "push", Resource: r, Result: "ok", Remote: "127.0.0.1"})
	}
	if err := s.AppendAudit(ctx, entries); err != nil {
		t.Fatal(err)
	}
	resOf := func(es []meta.AuditEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Resource)
		}
		slices.Sort(out)
		return out
	}
	got, err := s.Audit(ctx, meta.AuditFilter{Projects: []string{"team"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"robot$team+ci", "team", "team/app:v1", "team:latest"}; !slices.Equal(resOf(got), want) {
		t.Fatalf("project team: %v, want %v", resOf(got), want)
	}
	// "_" is not a wildcard: a_b matches itself only.
	if got, _ := s.Audit(ctx, meta.AuditFilter{Projects: []string{"a_b", "ci"}}); !slices.Equal(resOf(got), []string{"a_b/c:d"}) {
		t.Fatalf("project a_b: %v", resOf(got))
	}
	if got, _ := s.Audit(ctx, meta.AuditFilter{Projects: []string{}}); len(got) != 0 {
		t.Fatalf("no projects matched %v", resOf(got))
	}
	// Newest first, keyset pagination, time window.
	page, _ := s.Audit(ctx, meta.AuditFilter{Limit: 3})
	if len(page) != 3 || page[0].Resource != "a_b/c:d" || page[0].ID <= page[2].ID {
		t.Fatalf("first page %+v", page)
	}
	next, _ := s.Audit(ctx, meta.AuditFilter{Limit: 3, BeforeID: page[2].ID})
	if len(next) != 3 || next[0].ID >= page[2].ID {
		t.Fatalf("next page %+v", next)
	}
	window, _ := s.Audit(ctx, meta.AuditFilter{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)})
	if !slices.Equal(resOf(window), []string{"team/app:v1", "team:latest"}) {
		t.Fatalf("window: %v", resOf(window))
	}
}
