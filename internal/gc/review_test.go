package gc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

func TestUntaggedAndUnreferencedGo(t *testing.T) {
	forBackends(t, func(t *testing.T, b metatest.Backend) {
		e := newEnv(t, b, 0)
		shared := e.blob("p/a", "shared layer")
		e.blob("p/b", "shared layer")
		onlyA := e.blob("p/a", "layer only in a")
		keep := e.manifest("p/b", "b", manifestSpec{blobs: []string{shared}, tags: []string{"v1"}})
		gone := e.manifest("p/a", "a", manifestSpec{blobs: []string{shared, onlyA}, tags: []string{"v1"}})
		stray := e.blob("p/a", "uploaded, never referenced")
		e.collect()
		if !e.hasManifest("p/a", gone) || !e.hasBlob(onlyA) {
			t.Fatal("a tagged manifest or its blobs went")
		}
		if e.hasBlob(stray) {
			t.Fatal("a blob no manifest references survived review")
		}
		if err := e.meta.DeleteTag(t.Context(), "p/a", "v1"); err != nil {
			t.Fatal(err)
		}
		e.collect()
		if e.hasManifest("p/a", gone) || e.hasBlob(onlyA) {
			t.Fatal("untagged manifest or its exclusive blob survived")
		}
		if !e.hasManifest("p/b", keep) || !e.hasBlob(shared) {
			t.Fatal("a blob another repository's manifest uses went")
		}
		if n := e.files(); n != 1 {
			t.Fatalf("%d blob files stored, want 1 (the shared layer)", n)
		}
		tot, err := e.gc.Totals(t.Context())
		if err != nil || tot.Manifests != 1 || tot.Blobs != 2 || tot.Bytes != int64(len("layer only in a")+len("uploaded, never referenced")) {
			t.Fatalf("totals = %+v, %v", tot, err)
		}
		entries, err := e.meta.Audit(t.Context(), meta.AuditFilter{Action: "gc", Limit: 10})
		if err != nil || len(entries) != 3 {
			t.Fatalf("audit = %+v, %v; want 3 gc entries (1 manifest, 2 blobs)", entries, err)
		}
	})
}

func TestNothingBeforeReviewAfter(t *testing.T) {
	forBackends(t, func(t *testing.T, b metatest.Backend) {
		e := newEnv(t, b, time.Hour)
		l := e.blob("p/a", "layer")
		m := e.manifest("p/a", "a", manifestSpec{blobs: []string{l}, tags: []string{"v1"}})
		e.blob("p/a", "stray")
		if err := e.meta.DeleteTag(t.Context(), "p/a", "v1"); err != nil {
			t.Fatal(err)
		}
		e.collect()
		// Even a review of everything, now, spares what is younger than review_after.
		if _, err := e.gc.EnqueueAll(t.Context(), e.queue); err != nil {
			t.Fatal(err)
		}
		e.collect()
		if !e.hasManifest("p/a", m) || !e.hasBlob(l) || e.files() != 2 {
			t.Fatal("something was deleted before review_after")
		}
		task, err := e.queue.Get(t.Context(), gc.KindManifest, "1 "+m)
		if err != nil || task.State != jobs.Queued || time.Until(task.Due) < 50*time.Minute {
			t.Fatalf("manifest review = %+v, %v; want queued for review_after from now", task, err)
		}
	})
}

func TestIndexReferrersAndPolicy(t *testing.T) {
	forBackends(t, func(t *testing.T, b metatest.Backend) {
		e := newEnv(t, b, 0)
		ctx := t.Context()
		l1, l2 := e.blob("p/a", "amd64 layer"), e.blob("p/a", "arm64 layer")
		c1 := e.manifest("p/a", "amd64", manifestSpec{blobs: []string{l1}})
		c2 := e.manifest("p/a", "arm64", manifestSpec{blobs: []string{l2}})
		idx := e.manifest("p/a", "index", manifestSpec{children: []string{c1, c2}, tags: []string{"latest"}})
		sig := e.manifest("p/a", "signature of index", manifestSpec{subject: idx})
		orphanSig := e.manifest("p/a", "signature of nothing", manifestSpec{subject: "sha256:" + strings.Repeat("0", 64)})
		single := e.manifest("p/a", "tagged subject", manifestSpec{blobs: []string{l1}})
		e.manifest("p/a", "tagged referrer", manifestSpec{subject: single, tags: []string{"sbom"}})
		e.collect()
		for name, d := range map[string]string{"index child": c1, "referrer of a kept manifest": sig, "subject of a tagged referrer": single} {
			if !e.hasManifest("p/a", d) {
				t.Fatalf("%s went", name)
			}
		}
		if e.hasManifest("p/a", orphanSig) {
			t.Fatal("an untagged referrer of no stored subject survived")
		}
		if err := e.meta.DeleteTag(ctx, "p/a", "latest"); err != nil {
			t.Fatal(err)
		}
		e.collect()
		for _, d := range []string{idx, c2, sig} {
			if e.hasManifest("p/a", d) {
				t.Fatalf("%s survived its index's untagging", d)
			}
		}
		if e.hasBlob(l2) || !e.hasBlob(l1) {
			t.Fatal("want the arm64 layer gone and the amd64 layer (still used) kept")
		}

		// Policy: digest-pulled untagged manifests are kept while pulled recently.
		if err := e.gc.SetPolicy(ctx, gc.Policy{Project: "q", KeepPulledWithin: time.Hour}); err != nil {
			t.Fatal(err)
		}
		pinned := e.manifest("q/app", "pinned by digest", manifestSpec{})
		if err := e.meta.MarkPulled(ctx, "q/app", pinned); err != nil {
			t.Fatal(err)
		}
		e.collect()
		if !e.hasManifest("q/app", pinned) {
			t.Fatal("a recently pulled untagged manifest went despite the project's policy")
		}
		if err := e.gc.SetPolicy(ctx, gc.Policy{Project: "q"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.gc.EnqueueAll(ctx, e.queue); err != nil {
			t.Fatal(err)
		}
		e.collect()
		if e.hasManifest("q/app", pinned) {
			t.Fatal("with the policy removed the untagged manifest should go")
		}
	})
}

func TestRepositoryDeleteAndMirrors(t *testing.T) {
	forBackends(t, func(t *testing.T, b metatest.Backend) {
		e := newEnv(t, b, 0, "docker.io")
		ctx := t.Context()
		shared := e.blob("p/a", "shared")
		e.blob("p/b", "shared")
		own := e.blob("p/a", "own")
		e.manifest("p/a", "a", manifestSpec{blobs: []string{shared, own}, tags: []string{"v1"}})
		kept := e.manifest("p/b", "b", manifestSpec{blobs: []string{shared}, tags: []string{"v1"}})
		cached := e.manifest("docker.io/library/x", "digest-pulled", manifestSpec{})
		cachedBlob := e.blob("docker.io/library/x", "cached blob")
		if _, err := e.meta.DeleteRepository(ctx, "p/a"); err != nil {
			t.Fatal(err)
		}
		e.collect()
		if e.hasBlob(own) || !e.hasBlob(shared) || !e.hasManifest("p/b", kept) {
			t.Fatal("repository delete: want its own blob gone, the shared one kept")
		}
		if !e.hasManifest("docker.io/library/x", cached) || !e.hasBlob(cachedBlob) {
			t.Fatal("GC touched a mirrored repository (the mirror's eviction manages it)")
		}
	})
}

func TestPlanMatchesCollection(t *testing.T) {
	forBackends(t, func(t *testing.T, b metatest.Backend) {
		e := newEnv(t, b, 0)
		ctx := t.Context()
		l1, l2, l3 := e.blob("p/a", "one"), e.blob("p/a", "two"), e.blob("p/a", "three")
		c := e.manifest("p/a", "child", manifestSpec{blobs: []string{l2}})
		e.manifest("p/a", "index", manifestSpec{children: []string{c}, tags: []string{"i"}})
		e.manifest("p/a", "kept", manifestSpec{blobs: []string{l1}, tags: []string{"k"}})
		e.manifest("p/a", "untagged", manifestSpec{blobs: []string{l1, l3}})
		if err := e.meta.DeleteTag(ctx, "p/a", "i"); err != nil {
			t.Fatal(err)
		}
		plan, err := e.gc.Plan(ctx, gc.Rules{})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := e.gc.Totals(ctx)
		if _, err := e.gc.EnqueueAll(ctx, e.queue); err != nil {
			t.Fatal(err)
		}
		e.collect()
		after, _ := e.gc.Totals(ctx)
		if int64(len(plan.Manifests)) != after.Manifests-before.Manifests || len(plan.Manifests) != 3 ||
			int64(len(plan.Blobs)) != after.Blobs-before.Blobs || plan.Bytes != after.Bytes-before.Bytes || plan.Bytes != int64(len("two")+len("three")) {
			t.Fatalf("plan %+v, but collection deleted %+v (before %+v)", plan, after, before)
		}
		if e.hasBlob(l2) || e.hasBlob(l3) || !e.hasBlob(l1) {
			t.Fatal("wrong blobs collected")
		}
	})
}

// TestNoRaceWithPush races manifest puts referencing a blob against reviews deleting its
// link and row: every acknowledged put must find its blob afterwards; a put that loses
// fails with a MissingError before it commits.
func TestNoRaceWithPush(t *testing.T) {
	forBackends(t, func(t *testing.T, b metatest.Backend) {
		e := newEnv(t, b, 0)
		ctx := t.Context()
		acked, refused := 0, 0
		for i := range 60 {
			repo := "race/r"
			l := e.blob(repo, fmt.Sprintf("layer %d", i))
			var wg sync.WaitGroup
			var putErr error
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, putErr = putRaw(ctx, e.meta, repo, l, i)
			}()
			go func() {
				defer wg.Done()
				if _, err := e.gc.ReviewLink(ctx, "1 "+l, gc.Rules{}); err != nil {
					t.Error(err)
				}
				if _, err := e.gc.ReviewBlob(ctx, l); err != nil {
					t.Error(err)
				}
			}()
			wg.Wait()
			var missing *meta.MissingError
			switch {
			case putErr == nil:
				acked++
				if !e.hasBlob(l) {
					t.Fatalf("round %d: acknowledged manifest's blob was deleted", i)
				}
				if missing, _ := e.meta.MissingBlobs(ctx, repo, []string{l}); len(missing) > 0 {
					t.Fatalf("round %d: acknowledged manifest's blob is no longer in the repository", i)
				}
			case errors.As(putErr, &missing):
				refused++
			default:
				t.Fatalf("round %d: put failed unclearly: %v", i, putErr)
			}
		}
		t.Logf("%d puts acknowledged (blob kept), %d refused with MANIFEST_BLOB_UNKNOWN", acked, refused)
	})
}

func putRaw(ctx context.Context, m *meta.Store, repo, blob string, i int) (string, error) {
	payload := fmt.Appendf(nil, `{"n":%d,"b":%q}`, i, blob)
	d := fmt.Sprintf("sha256:%064x", i+1)
	return d, m.PutManifest(ctx, meta.Manifest{Repository: repo, Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Payload: payload, Blobs: []string{blob}, RequireBlobs: []string{blob}}, []string{"t"})
}

func TestOrphanSweep(t *testing.T) {
	forBackends(t, func(t *testing.T, b metatest.Backend) {
		e := newEnv(t, b, 0)
		ctx := t.Context()
		kept := e.blob("p/a", "kept")
		e.manifest("p/a", "a", manifestSpec{blobs: []string{kept}, tags: []string{"v1"}})
		// A crash after the bytes were committed but before the row: an orphan.
		orphan := writeBytes(t, e.blobs, "orphan")
		// An upload in progress whose session row exists is not touched either.
		up, err := e.blobs.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		up.Write([]byte("in progress"))
		up.Close()
		if err := e.meta.CreateUpload(ctx, meta.Upload{ID: "u1", Repository: "p/a", Handle: up.Handle()}); err != nil {
			t.Fatal(err)
		}
		res, err := e.col.Sweep(ctx, true)
		if err != nil || res.Files != 0 {
			t.Fatalf("sweep within the grace period = %+v, %v; want nothing", res, err)
		}
		old := time.Now().Add(-2 * time.Minute)
		filepath.WalkDir(filepath.Join(e.root, "blobs"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				os.Chtimes(p, old, old)
			}
			return nil
		})
		if res, err := e.col.Sweep(ctx, true); err != nil || res.Files != 1 || res.Bytes != int64(len("orphan")) {
			t.Fatalf("dry-run sweep = %+v, %v; want the one orphan", res, err)
		}
		if _, err := e.col.Sweep(ctx, false); err != nil {
			t.Fatal(err)
		}
		if _, err := e.blobs.Open(ctx, orphan); !errors.Is(err, blobstore.ErrNotFound) && !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("orphan still there: %v", err)
		}
		if !e.hasBlob(kept) || e.files() != 1 {
			t.Fatal("the sweep deleted bytes a row names")
		}
		if _, err := e.blobs.ResumeUpload(ctx, up.Handle(), nil, int64(len("in progress"))); err != nil {
			t.Fatalf("in-progress upload damaged: %v", err)
		}
		if !slices.Contains(gc.Kinds, gc.KindBytes) {
			t.Fatal("byte deletion must be drained with the reviews")
		}
	})
}

// writeBytes commits content to the blob store without recording a row (a crash right
// after the bytes were made durable) and returns its location.
func writeBytes(t *testing.T, b *blobstore.Filesystem, content string) string {
	t.Helper()
	up, err := b.NewUpload(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	loc, err := up.Commit(t.Context(), digest.FromString(content))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
