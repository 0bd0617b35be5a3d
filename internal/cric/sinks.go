package cric

// Sinks receive blobs and manifests: a registry repository (through go-containerregistry's
// Pusher, which checks for existing blobs, mounts across repositories and updates the
// referrers fallback tag), an OCI image layout directory, or an OCI layout tar written in
// one pass. Layout sinks store every blob once, whatever number of images share it.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// rootSpec says how a graph's root is recorded at the destination.
type rootSpec struct {
	tag         string            // registry: tag to set ("" = by digest only)
	annotations map[string]string // layout: the index.json entry's annotations
	seq         int               // layout: position of the entry in index.json
}

// rootEntry is an index.json entry waiting for the layout to be finished.
type rootEntry struct {
	seq int
	d   v1.Descriptor
}

func sortedEntries(es []rootEntry) []v1.Descriptor {
	sort.SliceStable(es, func(i, j int) bool { return es[i].seq < es[j].seq })
	out := make([]v1.Descriptor, 0, len(es))
	for _, e := range es {
		out = append(out, e.d)
	}
	return out
}

// sink is where a transfer writes.
type sink interface {
	String() string
	// key groups sinks that share blobs: one per repository, one per layout.
	key() string
	// hasManifest reports whether a manifest (and so everything below it) is present.
	hasManifest(ctx context.Context, d v1.Descriptor) (bool, error)
	putBlob(ctx context.Context, d v1.Descriptor, l v1.Layer) error
	// putManifest stores a manifest; root is non-nil for the graph's root.
	putManifest(ctx context.Context, n *node, root *rootSpec) error
}

// registrySink writes to one repository.
type registrySink struct {
	c    *Client
	repo name.Repository
}

func (s *registrySink) String() string { return s.repo.String() }
func (s *registrySink) key() string    { return "registry:" + s.repo.String() }

func (s *registrySink) hasManifest(ctx context.Context, d v1.Descriptor) (bool, error) {
	got, err := s.c.puller.Head(ctx, s.repo.Digest(d.Digest.String()))
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode >= 400 && te.StatusCode < 500 {
			return false, nil // absent, or not readable: the push will tell
		}
		return false, err
	}
	return got.Digest == d.Digest, nil
}

// putBlob uploads a blob unless present. A remote layer of the same registry is mounted;
// a blob another repository of this registry received in this run is mounted from there.
func (s *registrySink) putBlob(ctx context.Context, d v1.Descriptor, l v1.Layer) error {
	if ml, ok := l.(*remote.MountableLayer); ok {
		if ml.Reference.Context().RegistryStr() == s.repo.RegistryStr() {
			return s.c.pusher.Upload(ctx, s.repo, l)
		}
		l = ml.Layer // another registry: nothing to mount from
	}
	from, release := s.c.mounts.claim(ctx, s.repo, d.Digest)
	if from != nil {
		l = &remote.MountableLayer{Layer: l, Reference: from.Digest(d.Digest.String())}
	}
	err := s.c.pusher.Upload(ctx, s.repo, l)
	release(err == nil)
	return err
}

func (s *registrySink) putManifest(ctx context.Context, n *node, root *rootSpec) error {
	var ref name.Reference = s.repo.Digest(n.desc.Digest.String())
	if root != nil && root.tag != "" {
		ref = s.repo.Tag(root.tag)
	}
	return s.c.pusher.Put(ctx, ref, manifestOf(n))
}

// mountBook remembers which repository of a registry first received a blob in this
// run, so other repositories mount it instead of uploading it again.
type mountBook struct {
	mu sync.Mutex
	m  map[string]*mountEntry
}

type mountEntry struct {
	owner name.Repository
	done  chan struct{}
	ok    bool
}

func newMountBook() *mountBook { return &mountBook{m: map[string]*mountEntry{}} }

// claim returns the repository to mount from (after its upload finished), or nil when
// the caller uploads the blob itself; release must be called with the upload's outcome.
func (b *mountBook) claim(ctx context.Context, repo name.Repository, h v1.Hash) (*name.Repository, func(bool)) {
	key := repo.RegistryStr() + "|" + h.String()
	b.mu.Lock()
	e := b.m[key]
	if e == nil {
		e = &mountEntry{owner: repo, done: make(chan struct{})}
		b.m[key] = e
		b.mu.Unlock()
		return nil, func(ok bool) { e.ok = ok; close(e.done) }
	}
	b.mu.Unlock()
	noop := func(bool) {}
	if e.owner.String() == repo.String() {
		return nil, noop
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, noop
	}
	if !e.ok {
		return nil, noop
	}
	return &e.owner, noop
}

// dirSink writes an OCI image layout directory; blobs are written to a temporary file
// and renamed into place once complete and verified.
type dirSink struct {
	dir     string
	mu      sync.Mutex
	entries []rootEntry
}

func newDirSink(dir string) (*dirSink, error) {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return nil, usageErrorf("%s exists and is not a directory", dir)
		}
		if _, err := layout.FromPath(dir); err != nil {
			entries, _ := os.ReadDir(dir)
			if len(entries) > 0 {
				return nil, usageErrorf("%s exists and is not an OCI image layout", dir)
			}
		}
	}
	return &dirSink{dir: dir}, nil
}

func (s *dirSink) String() string { return s.dir }
func (s *dirSink) key() string    { return "layout:" + s.dir }

func (s *dirSink) blobPath(h v1.Hash) string {
	return filepath.Join(s.dir, "blobs", h.Algorithm, h.Hex)
}

func (s *dirSink) hasManifest(_ context.Context, d v1.Descriptor) (bool, error) {
	fi, err := os.Stat(s.blobPath(d.Digest))
	return err == nil && fi.Size() == d.Size, nil
}

func (s *dirSink) putBlob(_ context.Context, d v1.Descriptor, l v1.Layer) error {
	if fi, err := os.Stat(s.blobPath(d.Digest)); err == nil && fi.Size() == d.Size {
		return nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	return s.writeBlob(d, rc)
}

func (s *dirSink) writeBlob(d v1.Descriptor, r io.Reader) error {
	dst := s.blobPath(d.Digest)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+d.Digest.Hex[:12]+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if d.Size > 0 && n != d.Size {
		return invalidErrorf("blob %s: got %d bytes, descriptor says %d", d.Digest, n, d.Size)
	}
	return os.Rename(f.Name(), dst)
}

func (s *dirSink) putManifest(_ context.Context, n *node, root *rootSpec) error {
	if fi, err := os.Stat(s.blobPath(n.desc.Digest)); err != nil || fi.Size() != n.desc.Size {
		if err := s.writeBlob(n.desc, bytes.NewReader(n.raw)); err != nil {
			return err
		}
	}
	if root != nil {
		s.mu.Lock()
		s.entries = append(s.entries, rootEntry{root.seq, entryFor(n, root)})
		s.mu.Unlock()
	}
	return nil
}

// finish records the roots in index.json, replacing entries of the same name.
func (s *dirSink) finish() error {
	p, err := layout.FromPath(s.dir)
	if err != nil {
		if p, err = layout.Write(s.dir, empty.Index); err != nil {
			return err
		}
	}
	for _, e := range sortedEntries(s.entries) {
		key, val := AnnotationImageName, e.Annotations[AnnotationImageName]
		if val == "" {
			key, val = AnnotationRefName, e.Annotations[AnnotationRefName]
		}
		if val != "" {
			if err := p.RemoveDescriptors(func(d v1.Descriptor) bool { return d.Annotations[key] == val }); err != nil {
				return err
			}
		}
		if err := p.AppendDescriptor(e); err != nil {
			return err
		}
	}
	return nil
}

// entryFor is the index.json descriptor of a root.
func entryFor(n *node, root *rootSpec) v1.Descriptor {
	d := v1.Descriptor{MediaType: n.desc.MediaType, Digest: n.desc.Digest, Size: n.desc.Size,
		Platform: n.desc.Platform, ArtifactType: n.doc.ArtifactType}
	if len(root.annotations) > 0 {
		d.Annotations = map[string]string{}
		for k, v := range root.annotations {
			d.Annotations[k] = v
		}
	}
	return d
}

// tarSink writes an OCI layout as a tar in one pass. Blobs download in parallel into
// temporary files beside the output and are appended to the tar as each completes, so
// the disk holds each blob about twice at most briefly, never the whole layout twice.
type tarSink struct {
	path    string
	tmp     *os.File // the tar being written, renamed to path at the end
	tmpDir  string
	tw      *tar.Writer
	mu      sync.Mutex // guards tw and written
	written map[v1.Hash]bool
	entries []rootEntry
	now     time.Time
}

// smallBlob is the size below which a blob is buffered in memory rather than spooled.
const smallBlob = 1 << 20

func newTarSink(p string) (*tarSink, error) {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".cric-"+filepath.Base(p)+"-")
	if err != nil {
		return nil, err
	}
	tmpDir, err := os.MkdirTemp(dir, ".cric-blobs-")
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	s := &tarSink{path: p, tmp: f, tmpDir: tmpDir, tw: tar.NewWriter(f), written: map[v1.Hash]bool{}, now: time.Now().Truncate(time.Second)}
	if err := s.writeFile("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		s.abort()
		return nil, err
	}
	return s, nil
}

func (s *tarSink) String() string { return s.path }
func (s *tarSink) key() string    { return "layout:" + s.path }

func (s *tarSink) hasManifest(context.Context, v1.Descriptor) (bool, error) { return false, nil }

func (s *tarSink) header(name string, size int64) *tar.Header {
	return &tar.Header{Name: name, Size: size, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: s.now}
}

func (s *tarSink) writeFile(name string, b []byte) error {
	if err := s.tw.WriteHeader(s.header(name, int64(len(b)))); err != nil {
		return err
	}
	_, err := s.tw.Write(b)
	return err
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// writeBlob appends a blob to the tar once.
func (s *tarSink) writeBlob(d v1.Descriptor, r io.Reader, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written[d.Digest] {
		return nil
	}
	if err := s.tw.WriteHeader(s.header(blobName(d.Digest), size)); err != nil {
		return err
	}
	if _, err := io.Copy(s.tw, r); err != nil {
		return err
	}
	s.written[d.Digest] = true
	return nil
}

func (s *tarSink) putBlob(_ context.Context, d v1.Descriptor, l v1.Layer) error {
	s.mu.Lock()
	done := s.written[d.Digest]
	s.mu.Unlock()
	if done {
		return nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	if d.Size >= 0 && d.Size < smallBlob {
		b, err := io.ReadAll(io.LimitReader(rc, smallBlob+1))
		if err != nil {
			return err
		}
		if int64(len(b)) != d.Size {
			return invalidErrorf("blob %s: got %d bytes, descriptor says %d", d.Digest, len(b), d.Size)
		}
		return s.writeBlob(d, bytes.NewReader(b), d.Size)
	}
	f, err := os.CreateTemp(s.tmpDir, d.Digest.Hex[:12]+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, rc)
	if err != nil {
		return err
	}
	if n != d.Size {
		return invalidErrorf("blob %s: got %d bytes, descriptor says %d", d.Digest, n, d.Size)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return s.writeBlob(d, f, n)
}

func (s *tarSink) putManifest(_ context.Context, n *node, root *rootSpec) error {
	if err := s.writeBlob(n.desc, bytes.NewReader(n.raw), int64(len(n.raw))); err != nil {
		return err
	}
	if root != nil {
		s.mu.Lock()
		s.entries = append(s.entries, rootEntry{root.seq, entryFor(n, root)})
		s.mu.Unlock()
	}
	return nil
}

// finish writes index.json and moves the finished tar into place.
func (s *tarSink) finish() error {
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: sortedEntries(s.entries)}
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writeFile("index.json", b); err != nil {
		return err
	}
	if err := s.tw.Close(); err != nil {
		return err
	}
	if err := s.tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := s.tmp.Sync(); err != nil {
		return err
	}
	if err := s.tmp.Close(); err != nil {
		return err
	}
	os.RemoveAll(s.tmpDir)
	if err := os.Rename(s.tmp.Name(), s.path); err != nil {
		return fmt.Errorf("moving the archive into place: %w", err)
	}
	return nil
}

// abort removes everything written so far.
func (s *tarSink) abort() {
	s.tmp.Close()
	os.Remove(s.tmp.Name())
	os.RemoveAll(s.tmpDir)
}
