package cric

// The transfer engine. Given resolved graphs, their sources and sinks, it
//  1. asks each sink which manifests it already has (a present manifest means its whole
//     subtree is present and is skipped),
//  2. moves every missing blob once per sink, --jobs at a time, across all images,
//  3. writes the missing manifests children-first, and the roots last with their tags.
// Blob bytes stream from source to sink; sizes and digests are checked on the way.

import (
	"context"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// item is one image to transfer.
type item struct {
	src  source
	root *node
	dst  sink
	spec rootSpec
}

type transferOpts struct {
	verb string // past tense for progress: "pulled", "pushed", ...
	// serialManifests writes the items' manifests one item at a time: referrers of one
	// subject must not race on a registry's referrers fallback tag.
	serialManifests bool
}

type sinkDigest struct {
	sink string
	d    v1.Hash
}

func (c *Client) transfer(ctx context.Context, items []*item, o transferOpts) error {
	present, err := c.presentManifests(ctx, items)
	if err != nil {
		return err
	}
	type blobTask struct {
		src source
		dst sink
		d   v1.Descriptor
	}
	var (
		tasks    []blobTask
		total    int64
		seenBlob = map[sinkDigest]bool{}
	)
	for _, it := range items {
		var visit func(n *node)
		visit = func(n *node) {
			if present[sinkDigest{it.dst.key(), n.desc.Digest}] {
				return
			}
			total += int64(len(n.raw))
			for _, b := range n.blobs() {
				k := sinkDigest{it.dst.key(), b.Digest}
				if !seenBlob[k] {
					seenBlob[k] = true
					tasks = append(tasks, blobTask{src: it.src, dst: it.dst, d: b})
					total += b.Size
				}
			}
			for _, ch := range n.children {
				visit(ch)
			}
		}
		visit(it.root)
	}

	prog := c.newProgress(o.verb, total)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Jobs)
	for _, t := range tasks {
		g.Go(func() error {
			bp := prog.blob(t.d)
			l, err := t.src.layer(gctx, t.d)
			if err == nil {
				err = t.dst.putBlob(gctx, t.d, track(l, t.d, bp))
			}
			bp.finish(err)
			if err != nil {
				return fmt.Errorf("blob %s (%s → %s): %w", t.d.Digest, t.src, t.dst, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		prog.finish(err)
		return err
	}

	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Jobs)
	if o.serialManifests {
		g.SetLimit(1)
	}
	for _, it := range items {
		g.Go(func() error {
			var put func(n *node) error
			put = func(n *node) error {
				if present[sinkDigest{it.dst.key(), n.desc.Digest}] {
					return nil
				}
				for _, ch := range n.children {
					if err := put(ch); err != nil {
						return err
					}
				}
				if n == it.root {
					return nil
				}
				prog.done.Add(int64(len(n.raw)))
				return it.dst.putManifest(gctx, n, nil)
			}
			if err := put(it.root); err != nil {
				return fmt.Errorf("manifest of %s → %s: %w", it.src, it.dst, err)
			}
			prog.done.Add(int64(len(it.root.raw)))
			if err := it.dst.putManifest(gctx, it.root, &it.spec); err != nil {
				return fmt.Errorf("manifest %s → %s: %w", it.root.desc.Digest, it.dst, err)
			}
			return nil
		})
	}
	err = g.Wait()
	prog.finish(err)
	return err
}

// presentManifests asks each sink, once per manifest, whether it has it already.
func (c *Client) presentManifests(ctx context.Context, items []*item) (map[sinkDigest]bool, error) {
	type check struct {
		k sinkDigest
		s sink
		d v1.Descriptor
	}
	var checks []check
	seen := map[sinkDigest]bool{}
	for _, it := range items {
		it.root.postorder(func(n *node) {
			k := sinkDigest{it.dst.key(), n.desc.Digest}
			if !seen[k] {
				seen[k] = true
				checks = append(checks, check{k, it.dst, n.desc})
			}
		})
	}
	var mu sync.Mutex
	present := map[sinkDigest]bool{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Jobs)
	for _, ch := range checks {
		g.Go(func() error {
			ok, err := ch.s.hasManifest(gctx, ch.d)
			if err != nil {
				return err
			}
			mu.Lock()
			present[ch.k] = ok
			mu.Unlock()
			return nil
		})
	}
	return present, g.Wait()
}

// trackedLayer presents a blob with its descriptor's size and media type (a remote
// layer would otherwise HEAD the source for its size) and counts its bytes.
type trackedLayer struct {
	v1.Layer
	d  v1.Descriptor
	bp *blobProgress
}

func (l *trackedLayer) Digest() (v1.Hash, error)            { return l.d.Digest, nil }
func (l *trackedLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l *trackedLayer) MediaType() (types.MediaType, error) { return l.d.MediaType, nil }

func (l *trackedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return l.bp.reader(rc), nil
}

// track wraps a layer for progress, keeping it mountable if it was.
func track(l v1.Layer, d v1.Descriptor, bp *blobProgress) v1.Layer {
	if ml, ok := l.(*remote.MountableLayer); ok {
		return &remote.MountableLayer{Layer: &trackedLayer{Layer: ml.Layer, d: d, bp: bp}, Reference: ml.Reference}
	}
	return &trackedLayer{Layer: l, d: d, bp: bp}
}
