package cric

// Sources hand out manifests and blobs by digest: a registry repository, an OCI image
// layout (a directory or a tar of one, read in place through an index of the tar's
// entries, never extracted), or a docker-archive tar (docker save's format).

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// source is where a graph's manifests and blobs come from.
type source interface {
	String() string
	// manifest returns a manifest's bytes (graph verifies them).
	manifest(ctx context.Context, d v1.Descriptor) ([]byte, error)
	// layer returns a blob; its Compressed reader verifies the digest.
	layer(ctx context.Context, d v1.Descriptor) (v1.Layer, error)
}

// manifestLimit bounds what is read as a manifest.
const manifestLimit = 16 << 20

// registrySource reads one repository of a registry.
type registrySource struct {
	c    *Client
	repo name.Repository
}

func (s *registrySource) String() string { return s.repo.String() }

func (s *registrySource) manifest(ctx context.Context, d v1.Descriptor) ([]byte, error) {
	desc, err := s.c.puller.Get(ctx, s.repo.Digest(d.Digest.String()))
	if err != nil {
		return nil, err
	}
	return desc.Manifest, nil
}

// layer is a mountable remote layer: a copy within one registry mounts it instead of
// moving bytes. go-containerregistry verifies the digest as the bytes stream.
func (s *registrySource) layer(ctx context.Context, d v1.Descriptor) (v1.Layer, error) {
	return s.c.puller.Layer(ctx, s.repo.Digest(d.Digest.String()))
}

// resolveRemote fetches an image reference's root manifest.
func (c *Client) resolveRemote(ctx context.Context, ref name.Reference) (*registrySource, v1.Descriptor, []byte, error) {
	desc, err := c.puller.Get(ctx, ref)
	if err != nil {
		return nil, v1.Descriptor{}, nil, err
	}
	d := desc.Descriptor
	if _, byDigest := ref.(name.Digest); !byDigest {
		d.Digest = v1.Hash{} // a tag proves nothing about the bytes: take them as they are
	}
	return &registrySource{c: c, repo: ref.Context()}, d, desc.Manifest, nil
}

// blobStore opens blobs of an OCI image layout by digest.
type blobStore interface {
	open(h v1.Hash) (io.ReadCloser, error)
	file(name string) ([]byte, error) // a top-level file such as index.json
	String() string
}

// dirStore is an OCI image layout directory.
type dirStore struct{ dir string }

func (s dirStore) String() string { return s.dir }

func (s dirStore) blobPath(h v1.Hash) string {
	return filepath.Join(s.dir, "blobs", h.Algorithm, h.Hex)
}

func (s dirStore) open(h v1.Hash) (io.ReadCloser, error) {
	f, err := os.Open(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFoundErrorf("blob %s is not in %s", h, s.dir)
	}
	return f, err
}

func (s dirStore) file(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.dir, name))
}

// tarStore is a tar of an OCI image layout, read in place: entries are located once and
// then read with ReadAt, concurrently.
type tarStore struct {
	path    string
	f       *os.File
	entries map[string]tarEntry
}

type tarEntry struct {
	off, size int64
	link      string
}

func (s *tarStore) String() string { return s.path }

func openTarStore(p string) (*tarStore, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	magic := make([]byte, 2)
	if _, err := f.ReadAt(magic, 0); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		f.Close()
		return nil, usageErrorf("%s is gzip-compressed; decompress it first (gunzip)", p)
	}
	s := &tarStore{path: p, f: f, entries: map[string]tarEntry{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s is not a readable tar archive: %w", p, err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch h.Typeflag {
		case tar.TypeReg:
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				f.Close()
				return nil, err
			}
			s.entries[name] = tarEntry{off: off, size: h.Size}
		case tar.TypeSymlink, tar.TypeLink:
			target := h.Linkname
			if h.Typeflag == tar.TypeSymlink {
				target = path.Join(path.Dir(name), target)
			}
			s.entries[name] = tarEntry{link: strings.TrimPrefix(path.Clean("/"+target), "/")}
		}
	}
	return s, nil
}

func (s *tarStore) lookup(name string) (tarEntry, bool) {
	for range 8 {
		e, ok := s.entries[name]
		if !ok || e.link == "" {
			return e, ok
		}
		name = e.link
	}
	return tarEntry{}, false
}

func (s *tarStore) open(h v1.Hash) (io.ReadCloser, error) {
	e, ok := s.lookup("blobs/" + h.Algorithm + "/" + h.Hex)
	if !ok {
		return nil, notFoundErrorf("blob %s is not in %s", h, s.path)
	}
	return io.NopCloser(io.NewSectionReader(s.f, e.off, e.size)), nil
}

func (s *tarStore) file(name string) ([]byte, error) {
	e, ok := s.lookup(name)
	if !ok {
		return nil, fs.ErrNotExist
	}
	b := make([]byte, e.size)
	_, err := s.f.ReadAt(b, e.off)
	return b, err
}

// layoutSource reads images from an OCI image layout.
type layoutSource struct {
	store blobStore
	index *v1.IndexManifest
}

func (s *layoutSource) String() string { return s.store.String() }

func (s *layoutSource) manifest(_ context.Context, d v1.Descriptor) ([]byte, error) {
	rc, err := s.store.open(d.Digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, manifestLimit))
}

func (s *layoutSource) layer(_ context.Context, d v1.Descriptor) (v1.Layer, error) {
	return &localLayer{store: s.store, desc: d}, nil
}

// localLayer is a blob of a layout; reading it verifies digest and size.
type localLayer struct {
	store blobStore
	desc  v1.Descriptor
}

func (l *localLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *localLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *localLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *localLayer) DiffID() (v1.Hash, error) {
	return v1.Hash{}, errors.New("cric: DiffID of a layout blob is not computed")
}
func (l *localLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("cric: layout blobs are copied compressed")
}

func (l *localLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.store.open(l.desc.Digest)
	if err != nil {
		return nil, err
	}
	h, err := newHasher(l.desc.Digest)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &verifyingReader{rc: rc, h: h, d: l.desc}, nil
}

// verifyingReader hashes what it reads and fails at EOF if the digest differs.
type verifyingReader struct {
	rc io.ReadCloser
	h  interface {
		io.Writer
		Sum([]byte) []byte
	}
	d v1.Descriptor
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.h.Write(p[:n])
	if err == io.EOF {
		if got := fmt.Sprintf("%x", r.h.Sum(nil)); got != r.d.Digest.Hex {
			return n, invalidErrorf("blob %s hashes to %s:%s", r.d.Digest, r.d.Digest.Algorithm, got)
		}
	}
	return n, err
}

func (r *verifyingReader) Close() error { return r.rc.Close() }

// Annotations cric reads and writes on index.json entries.
const (
	// AnnotationRefName is the OCI name of an entry: the tag, as docker and containerd write it.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationImageName is the full image name, as containerd and docker write it.
	AnnotationImageName = "io.containerd.image.name"
	// AnnotationSource is cric's record of the full reference the entry was pulled from.
	AnnotationSource = "com.github.berth-registry.cric.source"
)

// local is an opened OCI layout or docker archive.
type local struct {
	path     string
	selector string // after "PATH:": a tag, name or digest choosing an entry
	layout   *layoutSource
	docker   bool // a docker-archive tar (manifest.json, no index.json)
	closer   io.Closer
}

func (l *local) Close() error {
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}

// openLocal opens PATH, PATH:NAME or PATH@DIGEST: a layout directory or an OCI/docker
// archive, and optionally which of its images.
func openLocal(spec string) (*local, error) {
	p, sel := splitLocal(spec)
	if p == "" {
		return nil, notFoundErrorf("%s: no such layout directory or archive", spec)
	}
	l := &local{path: p, selector: sel}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		st := dirStore{dir: p}
		idx, err := readIndex(st)
		if err != nil {
			return nil, err
		}
		l.layout = &layoutSource{store: st, index: idx}
		return l, nil
	}
	ts, err := openTarStore(p)
	if err != nil {
		return nil, err
	}
	l.closer = ts.f
	if _, ok := ts.lookup("index.json"); ok {
		idx, err := readIndex(ts)
		if err != nil {
			ts.f.Close()
			return nil, err
		}
		l.layout = &layoutSource{store: ts, index: idx}
		return l, nil
	}
	if _, ok := ts.lookup("manifest.json"); ok {
		l.docker = true
		return l, nil
	}
	ts.f.Close()
	return nil, usageErrorf("%s is neither an OCI layout archive (index.json) nor a docker archive (manifest.json)", p)
}

// splitLocal finds the longest existing path prefix of PATH[:NAME|@DIGEST].
func splitLocal(spec string) (string, string) {
	if _, err := os.Stat(spec); err == nil {
		return spec, ""
	}
	for i := len(spec) - 1; i > 0; i-- {
		if spec[i] != ':' && spec[i] != '@' {
			continue
		}
		if _, err := os.Stat(spec[:i]); err == nil {
			return spec[:i], spec[i+1:]
		}
	}
	return "", ""
}

func readIndex(s blobStore) (*v1.IndexManifest, error) {
	b, err := s.file("index.json")
	if err != nil {
		return nil, usageErrorf("%s is not an OCI image layout (no index.json)", s)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		return nil, invalidErrorf("%s/index.json: %v", s, err)
	}
	return idx, nil
}

// entryNames are the names an index.json entry answers to.
func entryNames(d v1.Descriptor) []string {
	var out []string
	for _, k := range []string{AnnotationRefName, AnnotationImageName, AnnotationSource} {
		if v := d.Annotations[k]; v != "" {
			out = append(out, v)
		}
	}
	return append(out, d.Digest.String())
}

// entryLabel is how an entry is shown in messages.
func entryLabel(d v1.Descriptor) string {
	names := entryNames(d)
	return names[0]
}

// selectEntry picks the layout entry matching the selector, or the only one.
func (l *local) selectEntry() (v1.Descriptor, error) {
	entries := l.layout.index.Manifests
	if l.selector == "" {
		if len(entries) == 1 {
			return entries[0], nil
		}
		if len(entries) == 0 {
			return v1.Descriptor{}, notFoundErrorf("%s holds no images", l.path)
		}
		return v1.Descriptor{}, usageErrorf("%s holds %d images; choose one as %s:NAME (%s)", l.path, len(entries), l.path, strings.Join(l.entryList(), ", "))
	}
	for _, d := range entries {
		if slices.Contains(entryNames(d), l.selector) {
			return d, nil
		}
	}
	return v1.Descriptor{}, notFoundErrorf("no image named %q in %s (it has: %s)", l.selector, l.path, strings.Join(l.entryList(), ", "))
}

func (l *local) entryList() []string {
	var out []string
	for _, d := range l.layout.index.Manifests {
		out = append(out, entryLabel(d))
	}
	return out
}

// dockerArchiveSource reads one image of a docker-archive tar through
// go-containerregistry's tarball package.
type dockerArchiveSource struct {
	path string
	img  v1.Image
}

func openDockerArchive(l *local) (*dockerArchiveSource, v1.Descriptor, []byte, error) {
	var tag *name.Tag
	if l.selector != "" {
		t, err := name.NewTag(l.selector)
		if err != nil {
			return nil, v1.Descriptor{}, nil, usageErrorf("%s: %v", l.selector, err)
		}
		tag = &t
	}
	img, err := tarball.ImageFromPath(l.path, tag)
	if err != nil {
		return nil, v1.Descriptor{}, nil, fmt.Errorf("reading docker archive %s: %w", l.path, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, v1.Descriptor{}, nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, v1.Descriptor{}, nil, err
	}
	return &dockerArchiveSource{path: l.path, img: img}, v1.Descriptor{MediaType: mt}, raw, nil
}

func (s *dockerArchiveSource) String() string { return s.path }

func (s *dockerArchiveSource) manifest(context.Context, v1.Descriptor) ([]byte, error) {
	return nil, errors.New("a docker archive holds no nested manifests")
}

func (s *dockerArchiveSource) layer(_ context.Context, d v1.Descriptor) (v1.Layer, error) {
	if cn, err := s.img.ConfigName(); err == nil && cn == d.Digest {
		return partial.ConfigLayer(s.img)
	}
	return s.img.LayerByDigest(d.Digest)
}
