package blobstore_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/blobstore/storetest"
	"github.com/opencontainers/go-digest"
)

func newFilesystem(t *testing.T, root string) *blobstore.Filesystem {
	t.Helper()
	f, err := blobstore.NewFilesystem(root)
	if err != nil {
		t.Fatalf("NewFilesystem: %v", err)
	}
	return f
}

func TestFilesystemDriver(t *testing.T) {
	storetest.Run(t, func(t *testing.T) blobstore.Driver {
		return newFilesystem(t, t.TempDir())
	})
}

// regularFiles lists the regular files under dir, relative to it.
func regularFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFilesystemLocationTraversal(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	root := filepath.Join(base, "store")
	f := newFilesystem(t, root)
	// Files outside the store, and an upload inside it, that no location may reach.
	canary := filepath.Join(base, "canary")
	if err := os.WriteFile(canary, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	up, err := f.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write([]byte("upload in progress")); err != nil {
		t.Fatal(err)
	}
	if err := up.Close(); err != nil {
		t.Fatal(err)
	}

	for _, loc := range []string{
		"blobs/../../etc/passwd",
		"blobs/../../canary",
		"blobs/sha256/../../../canary",
		"blobs/../uploads/" + up.Handle(),
		"uploads/" + up.Handle(),
		"/etc/passwd",
		canary,
		"../canary",
		"blobs/./x",
		"blobs//x",
		"blobs",
		"blobs/",
		".",
		"",
	} {
		b, err := f.Open(ctx, loc)
		if err == nil {
			b.Close()
			t.Errorf("Open(%q) succeeded", loc)
		} else if !errors.Is(err, blobstore.ErrNotFound) {
			t.Errorf("Open(%q): err = %v, want ErrNotFound", loc, err)
		}
		if err := f.Delete(ctx, loc); err == nil {
			t.Errorf("Delete(%q) accepted a location Commit never produces", loc)
		}
	}
	if got, err := os.ReadFile(canary); err != nil || string(got) != "secret" {
		t.Fatalf("canary outside the store after traversal attempts: %q, %v", got, err)
	}
	up, err = f.ResumeUpload(ctx, up.Handle(), nil, int64(len("upload in progress")))
	if err != nil {
		t.Fatalf("the upload in progress did not survive traversal attempts: %v", err)
	}
	up.Close()

	// Upload handles are no more a way out than locations.
	for _, h := range []string{"../canary", "../../canary", "/etc/passwd", "..", "."} {
		if _, err := f.ResumeUpload(ctx, h, nil, 0); !errors.Is(err, blobstore.ErrNotFound) {
			t.Errorf("ResumeUpload(%q): err = %v, want ErrNotFound", h, err)
		}
		_ = f.AbortUpload(ctx, h)
	}
	if _, err := os.Stat(canary); err != nil {
		t.Fatalf("canary removed through an upload handle: %v", err)
	}
}

func TestFilesystemBlobInvisibleUntilCommit(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f := newFilesystem(t, root)
	blobsDir := filepath.Join(root, "blobs")
	content := []byte("visible only once committed")

	up, err := f.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(content[:10]); err != nil {
		t.Fatal(err)
	}
	if got := regularFiles(t, blobsDir); len(got) != 0 {
		t.Fatalf("files under blobs/ while writing: %v", got)
	}
	if err := up.Close(); err != nil {
		t.Fatal(err)
	}
	up, err = f.ResumeUpload(ctx, up.Handle(), nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(content[10:]); err != nil {
		t.Fatal(err)
	}
	dgst := digest.FromBytes(content)
	if got := regularFiles(t, blobsDir); len(got) != 0 {
		t.Fatalf("files under blobs/ before commit: %v", got)
	}
	loc, err := up.Commit(ctx, dgst)
	if err != nil {
		t.Fatal(err)
	}
	// Content-addressed and unique per commit: <alg>/<xx>/<hex>-<session handle>.
	want := filepath.Join(string(dgst.Algorithm()), dgst.Encoded()[:2], dgst.Encoded()+"-"+up.Handle())
	if got := regularFiles(t, blobsDir); !slices.Equal(got, []string{want}) {
		t.Fatalf("files under blobs/ after commit: %v, want [%s]", got, want)
	}
	if loc != filepath.Join("blobs", want) {
		t.Fatalf("location = %q, want %q", loc, filepath.Join("blobs", want))
	}
	if got := regularFiles(t, filepath.Join(root, "uploads")); len(got) != 0 {
		t.Fatalf("upload files left after commit: %v", got)
	}
	st, err := os.Stat(filepath.Join(root, loc))
	if err != nil || st.Size() != int64(len(content)) {
		t.Fatalf("committed file: %v, %v", st, err)
	}

	// The filesystem blob exposes its *os.File for sendfile.
	b, err := f.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fb, ok := b.(*blobstore.FileBlob)
	if !ok || fb.OSFile() == nil {
		t.Fatalf("Open returned %T, want *blobstore.FileBlob with an *os.File", b)
	}

	// A second NewFilesystem over the same root (a restart) serves the blob.
	f2 := newFilesystem(t, root)
	b2, err := f2.Open(ctx, loc)
	if err != nil {
		t.Fatalf("Open after restart: %v", err)
	}
	b2.Close()
}

func TestFilesystemUploadsIdleSince(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f := newFilesystem(t, root)
	var _ blobstore.UploadLister = f

	newClosed := func() string {
		up, err := f.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := up.Close(); err != nil {
			t.Fatal(err)
		}
		return up.Handle()
	}
	old, fresh := newClosed(), newClosed()
	twoHoursAgo := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(filepath.Join(root, "uploads", old), twoHoursAgo, twoHoursAgo); err != nil {
		t.Fatal(err)
	}
	// Things in uploads/ that are not sessions are never reported.
	for _, name := range []string{"README", "0123456789ABCDEF0123456789ABCDEF", "tmp.partial"} {
		p := filepath.Join(root, "uploads", name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(p, twoHoursAgo, twoHoursAgo)
	}
	dir := filepath.Join(root, "uploads", "0123456789abcdef0123456789abcdef")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(dir, twoHoursAgo, twoHoursAgo)

	idle := func(before time.Time) []string {
		t.Helper()
		hs, err := f.UploadsIdleSince(ctx, before)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(hs)
		return hs
	}
	if got := idle(time.Now().Add(-time.Hour)); !slices.Equal(got, []string{old}) {
		t.Fatalf("idle for an hour: %v, want [%s]", got, old)
	}
	all := []string{old, fresh}
	slices.Sort(all)
	if got := idle(time.Now().Add(time.Minute)); !slices.Equal(got, all) {
		t.Fatalf("idle since a minute from now: %v, want %v", got, all)
	}
	if got := idle(time.Now().Add(-3 * time.Hour)); len(got) != 0 {
		t.Fatalf("idle for three hours: %v, want none", got)
	}

	// Writing to a session makes it fresh again.
	up, err := f.ResumeUpload(ctx, old, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if err := up.Close(); err != nil {
		t.Fatal(err)
	}
	if got := idle(time.Now().Add(-time.Hour)); len(got) != 0 {
		t.Fatalf("idle for an hour after a write: %v, want none", got)
	}
	// Aborted and committed sessions are gone.
	if err := f.AbortUpload(ctx, old); err != nil {
		t.Fatal(err)
	}
	up, err = f.ResumeUpload(ctx, fresh, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Commit(ctx, digest.FromString("x")); err != nil {
		t.Fatal(err)
	}
	if got := idle(time.Now().Add(time.Minute)); len(got) != 0 {
		t.Fatalf("sessions after abort and commit: %v, want none", got)
	}
}

func TestNewFilesystemCreatesLayout(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b")
	newFilesystem(t, root)
	for _, d := range []string{"blobs", "uploads"} {
		if st, err := os.Stat(filepath.Join(root, d)); err != nil || !st.IsDir() {
			t.Fatalf("%s: %v", d, err)
		}
	}
	// A root that cannot be created is an error, not a panic later.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := blobstore.NewFilesystem(filepath.Join(file, "root")); err == nil {
		t.Fatal("NewFilesystem under a regular file succeeded")
	}
}

// TestFilesystemCommitRecreatesRemovedDir: a commit into a blob directory this process
// already made durable skips its parents' fsyncs; if the directory was removed since
// (an operator's cleanup), the commit creates it again and still succeeds.
func TestFilesystemCommitRecreatesRemovedDir(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f := newFilesystem(t, root)
	commit := func(content []byte) string {
		t.Helper()
		up, err := f.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(content); err != nil {
			t.Fatal(err)
		}
		loc, err := up.Commit(ctx, digest.FromBytes(content))
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	content := []byte("same bytes, same directory")
	first := commit(content)
	if err := os.RemoveAll(filepath.Dir(filepath.Join(root, first))); err != nil {
		t.Fatal(err)
	}
	second := commit(content)
	b, err := f.Open(ctx, second)
	if err != nil {
		t.Fatalf("open after committing into a removed directory: %v", err)
	}
	b.Close()
	if filepath.Dir(first) != filepath.Dir(second) {
		t.Fatalf("directories %s and %s", first, second)
	}
}
