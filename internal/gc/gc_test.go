package gc_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

// env is one registry's rows and bytes with a collector over them.
type env struct {
	t      *testing.T
	meta   *meta.Store
	blobs  *blobstore.Filesystem
	root   string
	gc     *gc.Store
	queue  *jobs.Store
	col    *gc.Collector
	runner *jobs.Runner
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newEnv(t *testing.T, b metatest.Backend, reviewAfter time.Duration, mirrored ...string) *env {
	t.Helper()
	m := b.Open(t)
	root := t.TempDir()
	fsys, err := blobstore.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, meta: m, blobs: fsys, root: root, gc: gc.NewStore(m.DB()), queue: jobs.NewStore(m.DB())}
	e.col = gc.New(e.gc, e.queue, fsys, m, gc.Options{ReviewAfter: reviewAfter, OrphanGrace: time.Minute,
		Mirrored: func(repo string) bool {
			return slices.ContainsFunc(mirrored, func(p string) bool { return strings.HasPrefix(repo, p+"/") })
		}}, nil, quiet)
	if err := e.col.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.runner = jobs.NewRunner(e.queue, jobs.Options{Worker: "test", Concurrency: 2, Poll: 10 * time.Millisecond, Backoff: 10 * time.Millisecond}, nil, quiet)
	e.col.Register(e.runner)
	return e
}

// blob stores content as a blob visible in repo and returns its digest.
func (e *env) blob(repo, content string) string {
	e.t.Helper()
	ctx := e.t.Context()
	up, err := e.blobs.NewUpload(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := io.WriteString(up, content); err != nil {
		e.t.Fatal(err)
	}
	d := digest.FromString(content)
	loc, err := up.Commit(ctx, d)
	if err != nil {
		e.t.Fatal(err)
	}
	stored, err := e.meta.CommitBlob(ctx, repo, meta.Blob{Digest: string(d), Size: int64(len(content)), Location: loc}, "")
	if err != nil {
		e.t.Fatal(err)
	}
	if stored.Location != loc {
		_ = e.blobs.Delete(ctx, loc)
	}
	return string(d)
}

type manifestSpec struct {
	blobs, children []string
	subject         string
	tags            []string
}

func (e *env) manifest(repo, name string, s manifestSpec) string {
	e.t.Helper()
	payload := fmt.Sprintf(`{"name":%q,"blobs":%q,"children":%q}`, name, s.blobs, s.children)
	sum := sha256.Sum256([]byte(payload))
	d := "sha256:" + hex.EncodeToString(sum[:])
	err := e.meta.PutManifest(e.t.Context(), meta.Manifest{Repository: repo, Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Subject: s.subject, Payload: []byte(payload), Blobs: s.blobs, Children: s.children, RequireBlobs: s.blobs, RequireChildren: true}, s.tags)
	if err != nil {
		e.t.Fatalf("put manifest %s: %v", name, err)
	}
	return d
}

// collect works every due GC task to the end.
func (e *env) collect() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 60*time.Second)
	defer cancel()
	if err := e.runner.Drain(ctx, gc.Kinds...); err != nil {
		e.t.Fatalf("drain: %v", err)
	}
}

func (e *env) hasManifest(repo, d string) bool {
	_, err := e.meta.GetManifest(e.t.Context(), repo, d, true, false)
	if err != nil && !errors.Is(err, meta.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

func (e *env) hasBlob(d string) bool {
	b, err := e.meta.Blob(e.t.Context(), d)
	if errors.Is(err, meta.ErrNotFound) {
		return false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	f, err := e.blobs.Open(e.t.Context(), b.Location)
	if err != nil {
		e.t.Fatalf("blob %s has a row but no bytes: %v", d, err)
	}
	f.Close()
	return true
}

// files counts the stored blob files.
func (e *env) files() int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(e.root, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func forBackends(t *testing.T, fn func(t *testing.T, b metatest.Backend)) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}
