package cric

// Docker archives (docker save's format) are written by go-containerregistry's tarball
// package from an image assembled over a resolved graph, so its blobs stream from the
// registry with the same verification and progress as every other transfer.

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// graphImage is a single-manifest graph as go-containerregistry's CompressedImageCore.
type graphImage struct {
	ctx   context.Context
	src   source
	n     *node
	prog  *progress
	blobs []*blobProgress
	cfg   []byte
	cache map[v1.Hash]partial.CompressedLayer
}

func (g *graphImage) RawManifest() ([]byte, error)        { return g.n.raw, nil }
func (g *graphImage) MediaType() (types.MediaType, error) { return g.n.desc.MediaType, nil }

func (g *graphImage) RawConfigFile() ([]byte, error) {
	if g.cfg != nil {
		return g.cfg, nil
	}
	if g.n.doc.Config == nil {
		return nil, invalidErrorf("manifest %s has no config", g.n.desc.Digest)
	}
	l, err := g.LayerByDigest(g.n.doc.Config.Digest)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	g.cfg, err = io.ReadAll(io.LimitReader(rc, manifestLimit))
	return g.cfg, err
}

func (g *graphImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := g.cache[h]; ok {
		return l, nil
	}
	for _, d := range g.n.blobs() {
		if d.Digest != h {
			continue
		}
		l, err := g.src.layer(g.ctx, d)
		if err != nil {
			return nil, err
		}
		bp := g.prog.blob(d)
		g.blobs = append(g.blobs, bp)
		g.cache[h] = track(l, d, bp)
		return g.cache[h], nil
	}
	return nil, notFoundErrorf("blob %s is not part of manifest %s", h, g.n.desc.Digest)
}

// writeDockerArchive writes one single-platform image as a docker archive.
func (c *Client) writeDockerArchive(ctx context.Context, src source, root *node, ref name.Reference, tag, out string) error {
	if root.isIndex() {
		return usageErrorf("a docker archive holds one platform; choose one with --platform")
	}
	var tagged name.Reference = ref
	if tag != "" {
		tagged = ref.Context().Tag(tag)
	}
	prog := c.newProgress("pulled", root.size())
	gi := &graphImage{ctx: ctx, src: src, n: root, prog: prog, cache: map[v1.Hash]partial.CompressedLayer{}}
	img, err := partial.CompressedToImage(gi)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".cric-"+filepath.Base(out)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = tarball.Write(tagged, img, f)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	for _, bp := range gi.blobs {
		bp.finish(err)
	}
	prog.finish(err)
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}
