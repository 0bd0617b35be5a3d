package registry_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

// regEnv is a registry over a real SQLite store and filesystem driver in a temp dir.
type regEnv struct {
	t     *testing.T
	dir   string
	opts  registry.Options
	store *meta.Store
	drv   *blobstore.Filesystem
	reg   *registry.Registry
}

func newRegEnv(t *testing.T, opts registry.Options) *regEnv {
	t.Helper()
	e := &regEnv{t: t, dir: t.TempDir(), opts: opts}
	e.open()
	t.Cleanup(func() { e.store.Close() })
	return e
}

func (e *regEnv) open() {
	e.t.Helper()
	var err error
	e.store, err = meta.Open(context.Background(), meta.Options{Dialect: meta.SQLite, DSN: filepath.Join(e.dir, "berth.db")})
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	e.drv, err = blobstore.NewFilesystem(filepath.Join(e.dir, "storage"))
	if err != nil {
		e.t.Fatalf("open blob store: %v", err)
	}
	e.reg = registry.New(e.store, e.drv, e.opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// restart closes the store and opens everything again over the same directory, as a
// process restart (or another replica) would.
func (e *regEnv) restart() {
	e.t.Helper()
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

// files lists the regular files under storage/<sub>.
func (e *regEnv) files(sub string) []string {
	e.t.Helper()
	var out []string
	root := filepath.Join(e.dir, "storage", sub)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *regEnv) noUploadFiles() {
	e.t.Helper()
	if got := e.files("uploads"); len(got) != 0 {
		e.t.Fatalf("upload files left behind: %v", got)
	}
}

func body(b []byte) registry.Chunk {
	return registry.Chunk{Body: bytes.NewReader(b), Start: -1, Length: int64(len(b))}
}

func sha256Of(b []byte) oci.Digest { return oci.SHA256.FromBytes(b) }
func sha512Of(b []byte) oci.Digest { return oci.SHA512.FromBytes(b) }

func wantCode(t *testing.T, what string, err error, d *errcode.Descriptor) {
	t.Helper()
	if !errors.Is(err, d) {
		t.Fatalf("%s: err = %v, want %s (%d)", what, err, d.Code, d.Status)
	}
	if e := errcode.From(err); e == nil || e.Desc.Status != d.Status {
		t.Fatalf("%s: err = %v, want HTTP status %d", what, err, d.Status)
	}
}

func pushBlob(t *testing.T, r *registry.Registry, repo string, content []byte) oci.Digest {
	t.Helper()
	d := sha256Of(content)
	info, err := r.PutBlob(t.Context(), repo, d, body(content))
	if err != nil {
		t.Fatalf("PutBlob(%s): %v", repo, err)
	}
	if info.Digest != d || info.Size != int64(len(content)) {
		t.Fatalf("PutBlob = %+v, want %s size %d", info, d, len(content))
	}
	return d
}

func readBlob(t *testing.T, r *registry.Registry, repo string, d oci.Digest, want []byte) {
	t.Helper()
	st, err := r.StatBlob(t.Context(), repo, d)
	if err != nil {
		t.Fatalf("StatBlob(%s, %s): %v", repo, d, err)
	}
	if st.Size != int64(len(want)) {
		t.Fatalf("StatBlob size = %d, want %d", st.Size, len(want))
	}
	b, err := r.OpenBlob(t.Context(), repo, d)
	if err != nil {
		t.Fatalf("OpenBlob(%s, %s): %v", repo, d, err)
	}
	defer b.Close()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || b.Size() != int64(len(want)) {
		t.Fatalf("blob %s in %s reads %d bytes %.30q (Size %d), want %d bytes %.30q", d, repo, len(got), got, b.Size(), len(want), want)
	}
}

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       oci.Digest        `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

func blobDesc(mediaType string, content []byte) descriptor {
	return descriptor{MediaType: mediaType, Digest: sha256Of(content), Size: int64(len(content))}
}

type imageManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

type indexManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

const (
	configType = "application/vnd.oci.image.config.v1+json"
	layerType  = "application/vnd.oci.image.layer.v1.tar+gzip"
)

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// image returns a manifest over config and layers.
func image(t *testing.T, config []byte, layers ...[]byte) imageManifest {
	t.Helper()
	m := imageManifest{SchemaVersion: 2, MediaType: oci.MediaTypeOCIManifest, Config: blobDesc(configType, config), Layers: []descriptor{}}
	for _, l := range layers {
		m.Layers = append(m.Layers, blobDesc(layerType, l))
	}
	return m
}

func putManifest(t *testing.T, r *registry.Registry, repo string, ref registry.Reference, payload []byte, extra ...string) registry.PutResult {
	t.Helper()
	res, err := r.PutManifest(t.Context(), repo, ref, "", payload, extra)
	if err != nil {
		t.Fatalf("PutManifest(%s:%s): %v", repo, ref, err)
	}
	return res
}

func tag(name string) registry.Reference { return registry.Reference{Tag: name} }

func byDigest(d oci.Digest) registry.Reference { return registry.Reference{Digest: d} }

// ---- blobs ----

func TestPutBlob(t *testing.T) {
	e := newRegEnv(t, registry.Options{})
	ctx := t.Context()
	content := []byte("a monolithic blob")
	d := pushBlob(t, e.reg, "app", content)
	readBlob(t, e.reg, "app", d, content)
	e.noUploadFiles()

	// sha512 works the same way.
	d512 := sha512Of(content)
	if info, err := e.reg.PutBlob(ctx, "app", d512, body(content)); err != nil || info.Digest != d512 {
		t.Fatalf("PutBlob(sha512) = %+v, %v", info, err)
	}
	readBlob(t, e.reg, "app", d512, content)

	// Pushing it again is harmless and keeps one copy.
	pushBlob(t, e.reg, "app", content)
	readBlob(t, e.reg, "app", d, content)
	if got := e.files("blobs"); len(got) != 2 {
		t.Fatalf("blob files = %v, want the sha256 and sha512 copies only", got)
	}
	e.noUploadFiles()
}

func TestPutBlobRejected(t *testing.T) {
	e := newRegEnv(t, registry.Options{MaxBlobSize: 64})
	ctx := t.Context()
	content := []byte("the real content")
	claimed := sha256Of([]byte("something else"))
	before := e.files("blobs")

	check := func(what, repo string, err error, code *errcode.Descriptor) {
		t.Helper()
		wantCode(t, what, err, code)
		for _, d := range []oci.Digest{claimed, sha256Of(content)} {
			if _, err := e.store.Blob(ctx, string(d)); !errors.Is(err, meta.ErrNotFound) {
				t.Fatalf("%s: blob row %s exists (err %v)", what, d, err)
			}
			if _, err := e.reg.StatBlob(ctx, repo, d); err == nil {
				t.Fatalf("%s: %s visible in %s", what, d, repo)
			}
		}
		if got := e.files("blobs"); !slices.Equal(got, before) {
			t.Fatalf("%s: blob files %v, want %v", what, got, before)
		}
		e.noUploadFiles()
	}

	// Wrong digest in a new repository: nothing is created, not even the repository.
	_, err := e.reg.PutBlob(ctx, "fresh", claimed, body(content))
	check("wrong digest", "fresh", err, errcode.DigestInvalid)
	_, err = e.reg.StatBlob(ctx, "fresh", claimed)
	wantCode(t, "StatBlob in a repository a failed push did not create", err, errcode.NameUnknown)
	if ok, _ := e.store.RepositoryExists(ctx, "fresh"); ok {
		t.Fatal("a rejected blob push created the repository")
	}

	// In an existing repository.
	other := pushBlob(t, e.reg, "app", []byte("other"))
	before = e.files("blobs")
	_, err = e.reg.PutBlob(ctx, "app", claimed, body(content))
	check("wrong digest in existing repository", "app", err, errcode.DigestInvalid)
	_, err = e.reg.StatBlob(ctx, "app", claimed)
	wantCode(t, "StatBlob after rejected push", err, errcode.BlobUnknown)
	_, err = e.reg.PutBlob(ctx, "app", sha512Of([]byte("x")), body(content))
	check("wrong sha512 digest", "app", err, errcode.DigestInvalid)

	// Length that does not match the body.
	_, err = e.reg.PutBlob(ctx, "app", sha256Of(content), registry.Chunk{Body: bytes.NewReader(content), Start: -1, Length: int64(len(content)) + 1})
	check("short body", "app", err, errcode.SizeInvalid)

	// A body that fails midway.
	_, err = e.reg.PutBlob(ctx, "app", sha256Of(content), registry.Chunk{Body: io.MultiReader(bytes.NewReader(content[:4]), errReader{}), Start: -1, Length: -1})
	check("broken body", "app", err, errcode.BlobUploadInvalid)

	// Past the size limit.
	big := bytes.Repeat([]byte("x"), 65)
	_, err = e.reg.PutBlob(ctx, "app", sha256Of(big), registry.Chunk{Body: bytes.NewReader(big), Start: -1, Length: -1})
	wantCode(t, "blob over the limit", err, errcode.SizeInvalid)
	e.noUploadFiles()

	readBlob(t, e.reg, "app", other, []byte("other"))
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestChunkedUpload(t *testing.T) {
	e := newRegEnv(t, registry.Options{})
	ctx := t.Context()
	parts := [][]byte{[]byte("first chunk|"), []byte("second chunk|"), []byte("streamed third|"), []byte("final")}
	all := bytes.Join(parts, nil)

	st, err := e.reg.StartUpload(ctx, "app", registry.Uploader{})
	if err != nil {
		t.Fatal(err)
	}
	if st.ID == "" || st.Size != 0 {
		t.Fatalf("StartUpload = %+v", st)
	}
	id := st.ID
	size := func() int64 {
		t.Helper()
		st, err := e.reg.GetUpload(ctx, "app", id)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size
	}
	appendAt := func(start int64, p []byte) (registry.UploadStatus, error) {
		return e.reg.AppendUpload(ctx, "app", id, registry.Chunk{Body: bytes.NewReader(p), Start: start, Length: int64(len(p))})
	}

	st, err = appendAt(0, parts[0])
	if err != nil || st.Size != int64(len(parts[0])) || st.ID != id {
		t.Fatalf("first chunk: %+v, %v", st, err)
	}
	n0 := int64(len(parts[0]))

	// Out of order: a repeat of the first chunk, a gap, and a start before the end.
	for _, start := range []int64{0, n0 + 5, n0 - 1} {
		_, err = appendAt(start, parts[1])
		wantCode(t, fmt.Sprintf("chunk at %d when the upload holds %d", start, n0), err, errcode.RangeInvalid)
		if errcode.From(err).Desc.Status != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("out-of-order chunk: status %d, want 416", errcode.From(err).Desc.Status)
		}
		if got := size(); got != n0 {
			t.Fatalf("a refused chunk changed the size to %d", got)
		}
	}

	if st, err = appendAt(n0, parts[1]); err != nil {
		t.Fatal(err)
	}
	// A chunk without Content-Range continues at the end.
	st, err = e.reg.AppendUpload(ctx, "app", id, registry.Chunk{Body: bytes.NewReader(parts[2]), Start: -1, Length: -1})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(parts[0]) + len(parts[1]) + len(parts[2])); st.Size != want || size() != want {
		t.Fatalf("size after three chunks = %d (GetUpload %d), want %d", st.Size, size(), want)
	}
	// An empty chunk changes nothing.
	if st2, err := appendAt(st.Size, nil); err != nil || st2.Size != st.Size {
		t.Fatalf("empty chunk: %+v, %v", st2, err)
	}
	// Lengths that do not match the body (a chunked body under a Content-Range): refused
	// with SIZE_INVALID and nothing appended, so the offset stays where it was.
	for _, tc := range []struct {
		name string
		body string
	}{
		{"chunk shorter than its length", "x"},
		{"chunk longer than its length", "xyzzy"},
	} {
		_, err = e.reg.AppendUpload(ctx, "app", id, registry.Chunk{Body: bytes.NewReader([]byte(tc.body)), Start: st.Size, Length: 2})
		wantCode(t, tc.name, err, errcode.SizeInvalid)
		if got := size(); got != st.Size {
			t.Fatalf("%s: size = %d, want %d (a refused chunk appends nothing)", tc.name, got, st.Size)
		}
	}
	// The offset is usable: a right chunk lands there.
	if st, err = appendAt(st.Size, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	// Start over from a fresh upload for a clean final content.
	if err := e.reg.CancelUpload(ctx, "app", id); err != nil {
		t.Fatal(err)
	}

	st, err = e.reg.StartUpload(ctx, "app", registry.Uploader{})
	if err != nil {
		t.Fatal(err)
	}
	id = st.ID
	var off int64
	for _, p := range parts[:3] {
		if _, err := appendAt(off, p); err != nil {
			t.Fatal(err)
		}
		off += int64(len(p))
	}
	d := sha256Of(all)
	_, err = e.reg.FinishUpload(ctx, "app", id, d, registry.Chunk{Body: bytes.NewReader(parts[3]), Start: off + 1, Length: int64(len(parts[3]))})
	wantCode(t, "final chunk out of order", err, errcode.RangeInvalid)
	info, err := e.reg.FinishUpload(ctx, "app", id, d, registry.Chunk{Body: bytes.NewReader(parts[3]), Start: off, Length: int64(len(parts[3]))})
	if err != nil {
		t.Fatalf("FinishUpload: %v", err)
	}
	if info.Digest != d || info.Size != int64(len(all)) {
		t.Fatalf("FinishUpload = %+v", info)
	}
	readBlob(t, e.reg, "app", d, all)
	_, err = e.reg.GetUpload(ctx, "app", id)
	wantCode(t, "GetUpload after finish", err, errcode.BlobUploadUnknown)
	_, err = e.reg.AppendUpload(ctx, "app", id, body([]byte("more")))
	wantCode(t, "AppendUpload after finish", err, errcode.BlobUploadUnknown)
	e.noUploadFiles()
}

func TestFinishUploadDigests(t *testing.T) {
	e := newRegEnv(t, registry.Options{})
	ctx := t.Context()
	content := []byte("hashed two ways")

	upload := func(repo string) string {
		t.Helper()
		st, err := e.reg.StartUpload(ctx, repo, registry.Uploader{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.reg.AppendUpload(ctx, repo, st.ID, body(content[:6])); err != nil {
			t.Fatal(err)
		}
		if _, err := e.reg.AppendUpload(ctx, repo, st.ID, body(content[6:])); err != nil {
			t.Fatal(err)
		}
		return st.ID
	}
	none := registry.Chunk{Start: -1, Length: -1}

	for _, d := range []oci.Digest{sha256Of(content), sha512Of(content)} {
		id := upload("app")
		info, err := e.reg.FinishUpload(ctx, "app", id, d, none)
		if err != nil {
			t.Fatalf("FinishUpload(%s): %v", d.Algorithm(), err)
		}
		if info.Digest != d || info.Size != int64(len(content)) {
			t.Fatalf("FinishUpload(%s) = %+v", d.Algorithm(), info)
		}
		readBlob(t, e.reg, "app", d, content)
	}

	// A wrong digest of either algorithm discards the session.
	for _, d := range []oci.Digest{sha256Of([]byte("nope")), sha512Of([]byte("nope"))} {
		id := upload("other")
		_, err := e.reg.FinishUpload(ctx, "other", id, d, none)
		wantCode(t, "FinishUpload with wrong "+string(d.Algorithm()), err, errcode.DigestInvalid)
		_, err = e.reg.GetUpload(ctx, "other", id)
		wantCode(t, "upload after a digest mismatch", err, errcode.BlobUploadUnknown)
		_, err = e.reg.StatBlob(ctx, "other", d)
		wantCode(t, "blob after a digest mismatch", err, errcode.BlobUnknown)
	}
	// The content pushed to app is not visible in other just because its bytes exist.
	_, err := e.reg.StatBlob(ctx, "other", sha256Of(content))
	wantCode(t, "blob of app seen from other", err, errcode.BlobUnknown)
	e.noUploadFiles()
}

func TestUploadResumesAfterRestart(t *testing.T) {
	e := newRegEnv(t, registry.Options{})
	ctx := t.Context()
	parts := [][]byte{bytes.Repeat([]byte("a"), 300<<10), []byte("-middle-"), bytes.Repeat([]byte("z"), 100<<10)}
	all := bytes.Join(parts, nil)

	st, err := e.reg.StartUpload(ctx, "app", registry.Uploader{})
	if err != nil {
		t.Fatal(err)
	}
	id := st.ID
	if _, err := e.reg.AppendUpload(ctx, "app", id, body(parts[0])); err != nil {
		t.Fatal(err)
	}
	// The process died while writing the next chunk: bytes reached the file but were
	// never acknowledged (no row update).
	u, err := e.store.GetUpload(ctx, "app", id)
	if err != nil {
		t.Fatal(err)
	}
	up, err := e.drv.ResumeUpload(ctx, u.Handle, nil, u.Size)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write([]byte("garbage that was never acknowledged")); err != nil {
		t.Fatal(err)
	}
	if err := up.Close(); err != nil {
		t.Fatal(err)
	}

	e.restart()
	st, err = e.reg.GetUpload(ctx, "app", id)
	if err != nil || st.Size != int64(len(parts[0])) {
		t.Fatalf("upload after restart = %+v, %v; want size %d", st, err, len(parts[0]))
	}
	if _, err := e.reg.AppendUpload(ctx, "app", id, registry.Chunk{Body: bytes.NewReader(parts[1]), Start: st.Size, Length: int64(len(parts[1]))}); err != nil {
		t.Fatalf("append after restart: %v", err)
	}

	e.restart()
	off := int64(len(parts[0]) + len(parts[1]))
	info, err := e.reg.FinishUpload(ctx, "app", id, sha256Of(all), registry.Chunk{Body: bytes.NewReader(parts[2]), Start: off, Length: int64(len(parts[2]))})
	if err != nil {
		t.Fatalf("finish after restart: %v", err)
	}
	if info.Size != int64(len(all)) {
		t.Fatalf("finished size %d, want %d", info.Size, len(all))
	}
	readBlob(t, e.reg, "app", sha256Of(all), all)
	e.noUploadFiles()

	// The bytes of an upload gone from storage end the session cleanly.
	st, err = e.reg.StartUpload(ctx, "app", registry.Uploader{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.AppendUpload(ctx, "app", st.ID, body([]byte("0123456789"))); err != nil {
		t.Fatal(err)
	}
	u, _ = e.store.GetUpload(ctx, "app", st.ID)
	if err := os.Truncate(filepath.Join(e.dir, "storage", "uploads", u.Handle), 4); err != nil {
		t.Fatal(err)
	}
	e.restart()
	_, err = e.reg.AppendUpload(ctx, "app", st.ID, body([]byte("more")))
	wantCode(t, "append to an upload whose bytes were lost", err, errcode.BlobUploadUnknown)
	_, err = e.reg.GetUpload(ctx, "app", st.ID)
	wantCode(t, "lost upload afterwards", err, errcode.BlobUploadUnknown)
}

func TestCancelUpload(t *testing.T) {
	e := newRegEnv(t, registry.Options{})
	ctx := t.Context()
	st, err := e.reg.StartUpload(ctx, "app", registry.Uploader{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.AppendUpload(ctx, "app", st.ID, body([]byte("to be cancelled"))); err != nil {
		t.Fatal(err)
	}
	// Another repository cannot see, touch or cancel it.
	pushBlob(t, e.reg, "other", []byte("x"))
	_, err = e.reg.GetUpload(ctx, "other", st.ID)
	wantCode(t, "GetUpload through another repository", err, errcode.BlobUploadUnknown)
	_, err = e.reg.AppendUpload(ctx, "other", st.ID, body([]byte("intruder")))
	wantCode(t, "AppendUpload through another repository", err, errcode.BlobUploadUnknown)
	_, err = e.reg.FinishUpload(ctx, "other", st.ID, sha256Of([]byte("to be cancelled")), registry.Chunk{Start: -1, Length: -1})
	wantCode(t, "FinishUpload through another repository", err, errcode.BlobUploadUnknown)
	wantCode(t, "CancelUpload through another repository", e.reg.CancelUpload(ctx, "other", st.ID), errcode.BlobUploadUnknown)
	if got, err := e.reg.GetUpload(ctx, "app", st.ID); err != nil || got.Size != 15 {
		t.Fatalf("upload after foreign attempts = %+v, %v", got, err)
	}

	if err := e.reg.CancelUpload(ctx, "app", st.ID); err != nil {
		t.Fatalf("CancelUpload: %v", err)
	}
	_, err = e.reg.GetUpload(ctx, "app", st.ID)
	wantCode(t, "GetUpload after cancel", err, errcode.BlobUploadUnknown)
	wantCode(t, "CancelUpload twice", e.reg.CancelUpload(ctx, "app", st.ID), errcode.BlobUploadUnknown)
	_, err = e.reg.AppendUpload(ctx, "app", st.ID, body([]byte("late")))
	wantCode(t, "AppendUpload after cancel", err, errcode.BlobUploadUnknown)
	wantCode(t, "CancelUpload of unknown id", e.reg.CancelUpload(ctx, "app", "0123"), errcode.BlobUploadUnknown)
	e.noUploadFiles()
}

func TestMount(t *testing.T) {
	e := newRegEnv(t, registry.Options{})
	ctx := t.Context()
	content := []byte("shared base layer")
	d := pushBlob(t, e.reg, "src", content)
	all := func(string) bool { return true }
	none := func(string) bool { return false }
	only := func(name string) func(string) bool { return func(r string) bool { return r == name } }

	// Before any mount, the blob is not visible in dst even once dst exists.
	pushBlob(t, e.reg, "dst", []byte("dst's own"))
	_, err := e.reg.StatBlob(ctx, "dst", d)
	wantCode(t, "blob of src seen from dst", err, errcode.BlobUnknown)

	// With from.
	info, ok, err := e.reg.Mount(ctx, "dst", d, "src", all)
	if err != nil || !ok || info.Digest != d || info.Size != int64(len(content)) {
		t.Fatalf("Mount from src = %+v, %v, %v", info, ok, err)
	}
	readBlob(t, e.reg, "dst", d, content)

	// from that the caller may not read: not mounted, not visible.
	for _, c := range []struct {
		repo, from string
		canRead    func(string) bool
	}{
		{"denied", "src", none},
		{"denied", "src", only("denied")},
		{"denied", "elsewhere", all},      // blob is not in from
		{"denied", "Bad_Name", all},       // invalid from
		{"denied", "src/../other", all},   // invalid from
		{"denied", "", none},              // no from, nowhere readable
		{"denied", "", only("denied")},    // no from, readable only in the target
		{"denied", "", only("elsewhere")}, // no from, readable where the blob is not
	} {
		_, ok, err := e.reg.Mount(ctx, c.repo, d, c.from, c.canRead)
		if err != nil || ok {
			t.Fatalf("Mount(%s from %q) = %v, %v; want not mounted", c.repo, c.from, ok, err)
		}
		if _, err := e.reg.StatBlob(ctx, "denied", d); err == nil {
			t.Fatalf("Mount(%s from %q) made the blob visible", c.repo, c.from)
		}
	}
	if ok, _ := e.store.RepositoryExists(ctx, "denied"); ok {
		t.Fatal("a refused mount created the repository")
	}

	// Without from: any repository the caller can read that holds it.
	info, ok, err = e.reg.Mount(ctx, "anywhere", d, "", only("dst"))
	if err != nil || !ok || info.Size != int64(len(content)) {
		t.Fatalf("Mount without from = %+v, %v, %v", info, ok, err)
	}
	readBlob(t, e.reg, "anywhere", d, content)

	// An unknown digest is never mounted.
	_, ok, err = e.reg.Mount(ctx, "dst", sha256Of([]byte("unknown")), "src", all)
	if err != nil || ok {
		t.Fatalf("Mount of an unknown blob = %v, %v", ok, err)
	}
	_, ok, err = e.reg.Mount(ctx, "dst", sha256Of([]byte("unknown")), "", all)
	if err != nil || ok {
		t.Fatalf("Mount of an unknown blob without from = %v, %v", ok, err)
	}

	// Deleting it from src leaves the mounts; it can no longer be mounted from src.
	if err := e.reg.DeleteBlob(ctx, "src", d); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "DeleteBlob twice", e.reg.DeleteBlob(ctx, "src", d), errcode.BlobUnknown)
	wantCode(t, "DeleteBlob in unknown repository", e.reg.DeleteBlob(ctx, "nope", d), errcode.NameUnknown)
	_, err = e.reg.OpenBlob(ctx, "src", d)
	wantCode(t, "OpenBlob after DeleteBlob", err, errcode.BlobUnknown)
	readBlob(t, e.reg, "dst", d, content)
	if _, ok, _ := e.reg.Mount(ctx, "late", d, "src", all); ok {
		t.Fatal("mounted from a repository the blob was deleted from")
	}
	if _, ok, _ := e.reg.Mount(ctx, "late", d, "dst", all); !ok {
		t.Fatal("mount from dst failed")
	}
}

// ---- manifests ----

func TestPutManifestReferences(t *testing.T) {
	e := newRegEnv(t, registry.Options{})
	ctx := t.Context()
	config, layer := []byte(`{"architecture":"amd64"}`), []byte("layer bytes")
	m := image(t, config, layer)
	foreign := blobDesc(layerType, []byte("non-distributable"))
	foreign.URLs = []string{"https://example.com/layer"}
	m.Layers = append(m.Layers, foreign)
	payload := marshal(t, m)

	_, err := e.reg.PutManifest(ctx, "app", tag("v1"), oci.MediaTypeOCIManifest, payload, nil)
	wantCode(t, "manifest with no blobs pushed", err, errcode.ManifestBlobUnknown)
	pushBlob(t, e.reg, "app", config)
	_, err = e.reg.PutManifest(ctx, "app", tag("v1"), oci.MediaTypeOCIManifest, payload, nil)
	wantCode(t, "manifest with its layer missing", err, errcode.ManifestBlobUnknown)
	// The layer exists, but in another repository: still unknown here.
	pushBlob(t, e.reg, "other", layer)
	_, err = e.reg.PutManifest(ctx, "app", tag("v1"), oci.MediaTypeOCIManifest, payload, nil)
	wantCode(t, "manifest whose layer is only in another repository", err, errcode.ManifestBlobUnknown)
	_, err = e.reg.GetManifest(ctx, "app", tag("v1"), true)
	wantCode(t, "refused manifest", err, errcode.ManifestUnknown)

	pushBlob(t, e.reg, "app", layer)
	res := putManifest(t, e.reg, "app", tag("v1"), payload) // the url layer need not be here
	if res.Digest != sha256Of(payload) || !slices.Equal(res.Tags, []string{"v1"}) || res.Subject != "" {
		t.Fatalf("PutManifest = %+v", res)
	}
	got, err := e.reg.GetManifest(ctx, "app", tag("v1"), true)
	if err != nil || !bytes.Equal(got.Payload, payload) || got.MediaType != oci.MediaTypeOCIManifest || got.Digest != string(res.Digest) {
		t.Fatalf("GetManifest = %+v, %v", got, err)
	}

	// An index needs its children in the repository.
	idx := marshal(t, indexManifest{SchemaVersion: 2, MediaType: oci.MediaTypeOCIIndex, Manifests: []descriptor{
		{MediaType: oci.MediaTypeOCIManifest, Digest: res.Digest, Size: int64(len(payload))},
		{MediaType: oci.MediaTypeOCIManifest, Digest: sha256Of([]byte("absent child")), Size: 2},
	}})
	_, err = e.reg.PutManifest(ctx, "app", tag("multi"), oci.MediaTypeOCIIndex, idx, nil)
	wantCode(t, "index with a missing child", err, errcode.ManifestBlobUnknown)
	idx = marshal(t, indexManifest{SchemaVersion: 2, MediaType: oci.MediaTypeOCIIndex, Manifests: []descriptor{
		{MediaType: oci.MediaTypeOCIManifest, Digest: res.Digest, Size: int64(len(payload))},
	}})
	putManifest(t, e.reg, "app", tag("multi"), idx)
	// ... in this repository, not another.
	_, err = e.reg.PutManifest(ctx, "other", tag("multi"), oci.MediaTypeOCIIndex, idx, nil)
	wantCode(t, "index whose child is only in another repository", err, errcode.ManifestBlobUnknown)

	// Sparse mode accepts what is missing.
	sparse := newRegEnv(t, registry.Options{AllowSparseManifests: true})
	putManifest(t, sparse.reg, "app", tag("v1"), payload)
	putManifest(t, sparse.reg, "app", tag("multi"), marshal(t, indexManifest{SchemaVersion: 2, MediaType: oci.MediaTypeOCIIndex,
		Manifests: []descriptor{{MediaType: oci.MediaTypeOCIManifest, Digest: sha256Of([]byte("absent")), Size: 2}}}))
	if got, err := sparse.reg.GetManifest(ctx, "app", tag("v1"), true); err != nil || !bytes.Equal(got.Payload, payload) {
		t.Fatalf("sparse GetManifest = %+v, %v", got, err)
	}
}

func TestPutManifestDigest(t *testing.T) {
	e := newRegEnv(t, registry.Options{AllowSparseManifests: true})
	ctx := t.Context()
	payload := marshal(t, image(t, []byte("{}"), []byte("l")))
	other := marshal(t, image(t, []byte("{ }"), []byte("l")))

	_, err := e.reg.PutManifest(ctx, "app", byDigest(sha256Of(other)), oci.MediaTypeOCIManifest, payload, nil)
	wantCode(t, "manifest under another manifest's digest", err, errcode.DigestInvalid)
	_, err = e.reg.PutManifest(ctx, "app", byDigest(sha512Of(other)), oci.MediaTypeOCIManifest, payload, nil)
	wantCode(t, "manifest under a wrong sha512 digest", err, errcode.DigestInvalid)
	_, err = e.reg.GetManifest(ctx, "app", byDigest(sha256Of(other)), false)
	wantCode(t, "manifest after digest mismatch", err, errcode.NameUnknown)

	// Matching digests, both algorithms, with extra tags.
	res := putManifest(t, e.reg, "app", byDigest(sha256Of(payload)), payload, "a", "b")
	if res.Digest != sha256Of(payload) || !slices.Equal(res.Tags, []string{"a", "b"}) {
		t.Fatalf("PutManifest by digest = %+v", res)
	}
	res = putManifest(t, e.reg, "app", byDigest(sha512Of(payload)), payload)
	if res.Digest != sha512Of(payload) {
		t.Fatalf("PutManifest by sha512 = %+v", res)
	}
	for _, ref := range []registry.Reference{byDigest(sha256Of(payload)), byDigest(sha512Of(payload)), tag("a"), tag("b")} {
		got, err := e.reg.GetManifest(ctx, "app", ref, true)
		if err != nil || !bytes.Equal(got.Payload, payload) {
			t.Fatalf("GetManifest(%s) = %+v, %v", ref, got, err)
		}
	}
	// Invalid extra tags and invalid manifests are refused.
	_, err = e.reg.PutManifest(ctx, "app", byDigest(sha256Of(payload)), oci.MediaTypeOCIManifest, payload, []string{"bad tag"})
	wantCode(t, "invalid extra tag", err, errcode.ReferenceInvalid)
	_, err = e.reg.PutManifest(ctx, "app", tag("x"), oci.MediaTypeOCIManifest, []byte(`{"schemaVersion":1}`), nil)
	wantCode(t, "invalid manifest", err, errcode.ManifestInvalid)
	if tags, err := e.reg.Tags(ctx, "app", "", 100); err != nil || !slices.Equal(tags, []string{"a", "b"}) {
		t.Fatalf("Tags = %v, %v", tags, err)
	}
}

func TestReferrers(t *testing.T) {
	e := newRegEnv(t, registry.Options{})
	ctx := t.Context()
	config, layer := []byte(`{"os":"linux"}`), []byte("layer")
	pushBlob(t, e.reg, "app", config)
	pushBlob(t, e.reg, "app", layer)
	subjectPayload := marshal(t, image(t, config, layer))
	subject := putManifest(t, e.reg, "app", tag("v1"), subjectPayload).Digest

	empty := []byte("{}")
	pushBlob(t, e.reg, "app", empty)
	sig := imageManifest{SchemaVersion: 2, MediaType: oci.MediaTypeOCIManifest, ArtifactType: "application/vnd.example.signature",
		Config: blobDesc(oci.MediaTypeOCIEmpty, empty), Layers: []descriptor{blobDesc(layerType, layer)},
		Subject:     &descriptor{MediaType: oci.MediaTypeOCIManifest, Digest: subject, Size: int64(len(subjectPayload))},
		Annotations: map[string]string{"org.opencontainers.image.created": "2024-05-06T07:08:09Z"}}
	sigPayload := marshal(t, sig)
	res := putManifest(t, e.reg, "app", byDigest(sha256Of(sigPayload)), sigPayload)
	if res.Subject != subject {
		t.Fatalf("PutResult.Subject = %q, want %q", res.Subject, subject)
	}
	// Without artifactType, an image's config media type is its artifact type.
	sbomConfig := []byte(`{"sbom":true}`)
	pushBlob(t, e.reg, "app", sbomConfig)
	sbom := image(t, nil)
	sbom.Config = blobDesc("application/vnd.example.sbom.config", sbomConfig)
	sbom.Subject = sig.Subject
	sbomPayload := marshal(t, sbom)
	putManifest(t, e.reg, "app", byDigest(sha256Of(sbomPayload)), sbomPayload)
	// A referrer in another repository stays there.
	pushBlob(t, e.reg, "other", empty)
	pushBlob(t, e.reg, "other", layer)
	putManifest(t, e.reg, "other", byDigest(sha256Of(sigPayload)), sigPayload)

	descs, err := e.reg.Referrers(ctx, "app", subject, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(descs) != 2 {
		t.Fatalf("Referrers = %+v, want 2", descs)
	}
	byD := map[oci.Digest]oci.Descriptor{}
	for _, d := range descs {
		byD[d.Digest] = d
	}
	s := byD[sha256Of(sigPayload)]
	if s.MediaType != oci.MediaTypeOCIManifest || s.Size != int64(len(sigPayload)) || s.ArtifactType != sig.ArtifactType ||
		s.Annotations["org.opencontainers.image.created"] != "2024-05-06T07:08:09Z" || len(s.Annotations) != 1 {
		t.Fatalf("signature descriptor = %+v", s)
	}
	if b := byD[sha256Of(sbomPayload)]; b.ArtifactType != "application/vnd.example.sbom.config" || b.Size != int64(len(sbomPayload)) {
		t.Fatalf("sbom descriptor = %+v", b)
	}
	filtered, err := e.reg.Referrers(ctx, "app", subject, "application/vnd.example.signature")
	if err != nil || len(filtered) != 1 || filtered[0].Digest != sha256Of(sigPayload) {
		t.Fatalf("filtered Referrers = %+v, %v", filtered, err)
	}
	if other, err := e.reg.Referrers(ctx, "other", subject, ""); err != nil || len(other) != 1 {
		t.Fatalf("Referrers in other = %+v, %v", other, err)
	}
	if none, err := e.reg.Referrers(ctx, "app", sha256Of([]byte("no referrers")), ""); err != nil || len(none) != 0 {
		t.Fatalf("Referrers of an unreferenced digest = %+v, %v", none, err)
	}

	// Deleting a referrer takes it out of the list.
	if err := e.reg.DeleteManifest(ctx, "app", byDigest(sha256Of(sigPayload))); err != nil {
		t.Fatal(err)
	}
	if descs, err := e.reg.Referrers(ctx, "app", subject, ""); err != nil || len(descs) != 1 || descs[0].Digest != sha256Of(sbomPayload) {
		t.Fatalf("Referrers after delete = %+v, %v", descs, err)
	}
}

func TestDeleteManifestAndTag(t *testing.T) {
	e := newRegEnv(t, registry.Options{AllowSparseManifests: true})
	ctx := t.Context()
	p1 := marshal(t, image(t, []byte("{1}")))
	p2 := marshal(t, image(t, []byte("{2}")))
	putManifest(t, e.reg, "app", tag("one"), p1, "also-one")
	putManifest(t, e.reg, "app", tag("two"), p2)

	// Deleting a tag leaves its manifest.
	if err := e.reg.DeleteManifest(ctx, "app", tag("also-one")); err != nil {
		t.Fatal(err)
	}
	_, err := e.reg.GetManifest(ctx, "app", tag("also-one"), false)
	wantCode(t, "deleted tag", err, errcode.ManifestUnknown)
	if _, err := e.reg.GetManifest(ctx, "app", tag("one"), false); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "DeleteManifest of a deleted tag", e.reg.DeleteManifest(ctx, "app", tag("also-one")), errcode.ManifestUnknown)

	// Deleting by digest removes the manifest and its tags.
	if err := e.reg.DeleteManifest(ctx, "app", byDigest(sha256Of(p1))); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []registry.Reference{tag("one"), byDigest(sha256Of(p1))} {
		_, err := e.reg.GetManifest(ctx, "app", ref, true)
		wantCode(t, "GetManifest("+ref.String()+") after delete", err, errcode.ManifestUnknown)
	}
	wantCode(t, "DeleteManifest twice", e.reg.DeleteManifest(ctx, "app", byDigest(sha256Of(p1))), errcode.ManifestUnknown)
	wantCode(t, "DeleteManifest in unknown repository", e.reg.DeleteManifest(ctx, "nope", tag("two")), errcode.NameUnknown)
	_, err = e.reg.GetManifest(ctx, "nope", tag("two"), false)
	wantCode(t, "GetManifest in unknown repository", err, errcode.NameUnknown)
	if tags, err := e.reg.Tags(ctx, "app", "", 10); err != nil || !slices.Equal(tags, []string{"two"}) {
		t.Fatalf("Tags = %v, %v", tags, err)
	}
	_, err = e.reg.Tags(ctx, "nope", "", 10)
	wantCode(t, "Tags of unknown repository", err, errcode.NameUnknown)
	if err := e.reg.DeleteManifest(ctx, "app", tag("two")); err != nil {
		t.Fatal(err)
	}
	if tags, err := e.reg.Tags(ctx, "app", "", 10); err != nil || len(tags) != 0 {
		t.Fatalf("Tags of a repository with no tags = %v, %v; want empty, no error", tags, err)
	}
}

// ---- concurrency ----

// TestConcurrentPushSameBlobAndTag: clients pushing the same blobs and the same tag at
// once (one monolithic, one chunked, per pair) all succeed and leave one blob row, one
// readable copy, no stray upload files, and the tag on one of the pushed manifests.
func TestConcurrentPushSameBlobAndTag(t *testing.T) {
	e := newRegEnv(t, registry.Options{})
	// A second connection to the same file, to count rows the store has no query for.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "berth.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}

	const rounds, clients = 20, 4
	ctx := context.Background()
	for round := range rounds {
		repo := "race/app"
		layer := bytes.Repeat([]byte(fmt.Sprintf("layer of round %d|", round)), 4096)
		config := []byte(fmt.Sprintf(`{"round":%d}`, round))
		payloads := make([][]byte, clients)
		for c := range clients {
			m := image(t, config, layer)
			m.Annotations = map[string]string{"client": fmt.Sprint(c)}
			payloads[c] = marshal(t, m)
		}

		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, clients)
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[c] = pushImage(ctx, e.reg, repo, c%2 == 1, config, layer, payloads[c])
			}()
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}

		for _, content := range [][]byte{layer, config} {
			d := string(sha256Of(content))
			if n := count(`SELECT COUNT(*) FROM blobs WHERE digest = ?`, d); n != 1 {
				t.Fatalf("round %d: %d blob rows for %s", round, n, d)
			}
			if n := count(`SELECT COUNT(*) FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id WHERE r.name = ? AND rb.digest = ?`, repo, d); n != 1 {
				t.Fatalf("round %d: %d repository links for %s", round, n, d)
			}
			readBlob(t, e.reg, repo, sha256Of(content), content)
		}
		got, err := e.reg.GetManifest(ctx, repo, tag("latest"), true)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(payloads, func(p []byte) bool { return bytes.Equal(p, got.Payload) && got.Digest == string(sha256Of(p)) }) {
			t.Fatalf("round %d: latest is %s, not one of the pushed manifests", round, got.Digest)
		}
		e.noUploadFiles()
	}
	if n := count(`SELECT COUNT(*) FROM tags`); n != 1 {
		t.Fatalf("%d tag rows, want 1", n)
	}
	if n, want := count(`SELECT COUNT(*) FROM blobs`), 2*rounds; n != want {
		t.Fatalf("%d blob rows, want %d", n, want)
	}
	if got := e.files("blobs"); len(got) != 2*rounds {
		t.Fatalf("%d blob files, want %d", len(got), 2*rounds)
	}
	if n := count(`SELECT COUNT(*) FROM uploads`); n != 0 {
		t.Fatalf("%d upload rows left", n)
	}
}

// pushImage pushes config and layer (monolithically, or the layer in chunks) and then the
// manifest as "latest", checking what it pushed reads back.
func pushImage(ctx context.Context, r *registry.Registry, repo string, chunked bool, config, layer, manifest []byte) error {
	if _, err := r.PutBlob(ctx, repo, sha256Of(config), body(config)); err != nil {
		return fmt.Errorf("put config: %w", err)
	}
	if chunked {
		st, err := r.StartUpload(ctx, repo, registry.Uploader{})
		if err != nil {
			return err
		}
		half := len(layer) / 2
		if _, err := r.AppendUpload(ctx, repo, st.ID, registry.Chunk{Body: bytes.NewReader(layer[:half]), Start: 0, Length: int64(half)}); err != nil {
			return fmt.Errorf("append: %w", err)
		}
		if _, err := r.FinishUpload(ctx, repo, st.ID, sha256Of(layer), registry.Chunk{Body: bytes.NewReader(layer[half:]), Start: int64(half), Length: int64(len(layer) - half)}); err != nil {
			return fmt.Errorf("finish: %w", err)
		}
	} else if _, err := r.PutBlob(ctx, repo, sha256Of(layer), body(layer)); err != nil {
		return fmt.Errorf("put layer: %w", err)
	}
	b, err := r.OpenBlob(ctx, repo, sha256Of(layer))
	if err != nil {
		return fmt.Errorf("open own layer: %w", err)
	}
	got, err := io.ReadAll(b)
	b.Close()
	if err != nil || !bytes.Equal(got, layer) {
		return fmt.Errorf("own layer reads back %d bytes (%v), want %d", len(got), err, len(layer))
	}
	if _, err := r.PutManifest(ctx, repo, registry.Reference{Tag: "latest"}, oci.MediaTypeOCIManifest, manifest, nil); err != nil {
		return fmt.Errorf("put manifest: %w", err)
	}
	return nil
}

// TestConcurrentAppendSameUpload: two PATCH requests for the same upload at the same
// offset (a client retry racing its original, or two replicas) must not let the stored
// bytes diverge from the recorded hash: the committed blob must hold exactly the bytes of
// its digest.
func TestConcurrentAppendSameUpload(t *testing.T) {
	e := newRegEnv(t, registry.Options{})
	ctx := t.Context()
	st, err := e.reg.StartUpload(ctx, "app", registry.Uploader{})
	if err != nil {
		t.Fatal(err)
	}
	good := bytes.Repeat([]byte("G"), 1024)
	bad := bytes.Repeat([]byte("B"), 1024)

	// A holds the session while its body is in flight ...
	ga := newGate(good)
	errA := make(chan error, 1)
	go func() {
		_, err := e.reg.AppendUpload(ctx, "app", st.ID, registry.Chunk{Body: ga, Start: 0, Length: int64(len(good))})
		errA <- err
	}()
	<-ga.reading
	// ... so B is refused before it writes a byte.
	gb := newGate(bad)
	close(gb.release)
	_, errB := e.reg.AppendUpload(ctx, "app", st.ID, registry.Chunk{Body: gb, Start: 0, Length: int64(len(bad))})
	if !errors.Is(errB, errcode.RangeInvalid) {
		t.Fatalf("concurrent append: err = %v, want RangeInvalid (416)", errB)
	}
	select {
	case <-gb.reading:
		t.Fatal("the refused append read its body")
	default:
	}
	close(ga.release)
	if err := <-errA; err != nil {
		t.Fatalf("first append: %v", err)
	}
	info, err := e.reg.FinishUpload(ctx, "app", st.ID, sha256Of(good), registry.Chunk{Start: -1, Length: -1})
	if err != nil {
		t.Fatal(err)
	}
	readBlob(t, e.reg, "app", info.Digest, good)
	// Blobs are stored once: an honest push of the real content elsewhere reads correctly.
	readBlob(t, e.reg, "victim", pushBlob(t, e.reg, "victim", good), good)
}

// gate is a request body that announces its first Read and then waits to be released.
type gate struct {
	r       io.Reader
	once    sync.Once
	reading chan struct{}
	release chan struct{}
}

func newGate(p []byte) *gate {
	return &gate{r: bytes.NewReader(p), reading: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) Read(p []byte) (int, error) {
	g.once.Do(func() { close(g.reading) })
	<-g.release
	return g.r.Read(p)
}

// TestBlobSizeLimitChunked: a chunk that crosses MaxBlobSize is refused, and the session
// must not then commit the oversized content.
func TestBlobSizeLimitChunked(t *testing.T) {
	e := newRegEnv(t, registry.Options{MaxBlobSize: 10})
	ctx := t.Context()
	st, err := e.reg.StartUpload(ctx, "app", registry.Uploader{})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 11)
	_, err = e.reg.AppendUpload(ctx, "app", st.ID, body(big))
	wantCode(t, "chunk past the limit", err, errcode.SizeInvalid)
	info, err := e.reg.FinishUpload(ctx, "app", st.ID, sha256Of(big), registry.Chunk{Start: -1, Length: -1})
	if err == nil {
		t.Fatalf("FinishUpload committed %+v, over the %d-byte limit", info, 10)
	}
	if _, err := e.reg.StatBlob(ctx, "app", sha256Of(big)); err == nil {
		t.Fatal("the oversized blob is visible")
	}
}
