package cric

// The manifest graph: an image is a tree of manifests (an index with its platform
// manifests, or a single manifest) whose leaves are blobs (config and layers). Every
// transfer first resolves this graph from its source, verifying each manifest against
// the digest it was referenced by, then moves what the destination lacks.

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// manifestDoc is the union of the fields of image manifests, indexes and artifact
// manifests that cric needs.
type manifestDoc struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *v1.Descriptor    `json:"config,omitempty"`
	Layers        []v1.Descriptor   `json:"layers,omitempty"`
	Manifests     []v1.Descriptor   `json:"manifests,omitempty"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// node is one manifest of the graph.
type node struct {
	desc     v1.Descriptor // how it is referenced: media type, digest, size, platform
	raw      []byte        // the manifest bytes, verified against desc.Digest
	doc      manifestDoc
	children []*node // an index's manifests, in order
}

func (n *node) isIndex() bool { return n.desc.MediaType.IsIndex() }

// blobs are the config and layers of a manifest (none for an index).
func (n *node) blobs() []v1.Descriptor {
	if n.isIndex() {
		return nil
	}
	var out []v1.Descriptor
	if n.doc.Config != nil {
		out = append(out, *n.doc.Config)
	}
	return append(out, n.doc.Layers...)
}

// postorder calls fn for every node, children before parents (the order in which a
// registry accepts them).
func (n *node) postorder(fn func(*node)) {
	for _, c := range n.children {
		c.postorder(fn)
	}
	fn(n)
}

// uniqueBlobs are the distinct blobs of the whole graph, in first-seen order.
func (n *node) uniqueBlobs() []v1.Descriptor {
	seen := map[v1.Hash]bool{}
	var out []v1.Descriptor
	n.postorder(func(m *node) {
		for _, b := range m.blobs() {
			if !seen[b.Digest] {
				seen[b.Digest] = true
				out = append(out, b)
			}
		}
	})
	return out
}

// size is the number of bytes of the graph, each blob and manifest counted once.
func (n *node) size() int64 {
	var total int64
	seen := map[v1.Hash]bool{}
	n.postorder(func(m *node) {
		if !seen[m.desc.Digest] {
			seen[m.desc.Digest] = true
			total += int64(len(m.raw))
		}
	})
	for _, b := range n.uniqueBlobs() {
		total += b.Size
	}
	return total
}

// parseManifest checks and parses raw manifest bytes; mt is the media type the source
// declared (the Content-Type or the referring descriptor), which wins over the document's.
func parseManifest(raw []byte, mt types.MediaType) (manifestDoc, types.MediaType, error) {
	var doc manifestDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return doc, mt, invalidErrorf("manifest is not JSON: %v", err)
	}
	if mt == "" || mt == "application/json" || mt == "text/plain" || mt == "application/octet-stream" {
		mt = doc.MediaType
	}
	if mt == "" {
		// OCI allows a missing mediaType (helm charts have none); infer it.
		mt = types.OCIManifestSchema1
		if doc.Manifests != nil {
			mt = types.OCIImageIndex
		}
	}
	if mt.IsSchema1() || doc.SchemaVersion == 1 {
		return doc, mt, &Error{Kind: KindOther, Msg: "Docker schema 1 manifests are not supported (re-push the image with a current client)"}
	}
	return doc, mt, nil
}

// verifyBytes checks content against a descriptor's digest and size.
func verifyBytes(b []byte, d v1.Descriptor) error {
	if d.Size > 0 && int64(len(b)) != d.Size {
		return invalidErrorf("%s: got %d bytes, descriptor says %d", d.Digest, len(b), d.Size)
	}
	h, err := newHasher(d.Digest)
	if err != nil {
		return err
	}
	h.Write(b)
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Hex {
		return invalidErrorf("content of %s hashes to %s:%s", d.Digest, d.Digest.Algorithm, got)
	}
	return nil
}

func newHasher(d v1.Hash) (hash.Hash, error) {
	switch d.Algorithm {
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, invalidErrorf("unsupported digest algorithm %q", d.Algorithm)
}

func digestOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// graph resolves the manifest graph below a root whose bytes are already known. With a
// platform, an index is narrowed to the one manifest for that platform (recursively for
// nested indexes); without one, every child is resolved.
func (c *Client) graph(ctx context.Context, src source, desc v1.Descriptor, raw []byte, plat *v1.Platform) (*node, error) {
	if desc.Digest.Hex != "" {
		if err := verifyBytes(raw, desc); err != nil {
			return nil, err
		}
	} else {
		desc.Digest = digestOf(raw)
	}
	desc.Size = int64(len(raw))
	doc, mt, err := parseManifest(raw, desc.MediaType)
	if err != nil {
		return nil, err
	}
	desc.MediaType = mt
	n := &node{desc: desc, raw: raw, doc: doc}
	if !n.isIndex() {
		return n, nil
	}
	if plat != nil {
		child, err := pickPlatform(doc.Manifests, *plat)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		craw, err := src.manifest(ctx, child)
		if err != nil {
			return nil, err
		}
		return c.graph(ctx, src, child, craw, plat)
	}
	n.children = make([]*node, len(doc.Manifests))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Jobs)
	for i, d := range doc.Manifests {
		g.Go(func() error {
			craw, err := src.manifest(gctx, d)
			if err != nil {
				return err
			}
			child, err := c.graph(gctx, src, d, craw, nil)
			if err != nil {
				return err
			}
			child.desc.Platform, child.desc.Annotations = d.Platform, d.Annotations
			n.children[i] = child
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return n, nil
}

// pickPlatform chooses the manifest for a platform from an index's descriptors.
func pickPlatform(ds []v1.Descriptor, want v1.Platform) (v1.Descriptor, error) {
	for _, d := range ds {
		if d.Platform != nil && d.Platform.Satisfies(want) {
			return d, nil
		}
	}
	return v1.Descriptor{}, &Error{Kind: KindNotFound, Err: ErrNoPlatform,
		Msg: fmt.Sprintf("not found: no manifest for platform %s (the image has: %s)", want.String(), strings.Join(platforms(ds), ", "))}
}

// platforms lists the platforms of an index's descriptors (attestations and other
// unknown/unknown entries left out).
func platforms(ds []v1.Descriptor) []string {
	var out []string
	for _, d := range ds {
		if d.Platform == nil || d.Platform.OS == "unknown" {
			continue
		}
		out = append(out, d.Platform.String())
	}
	if len(out) == 0 {
		return []string{"none declared"}
	}
	return slices.Compact(out)
}

// rawManifest is a manifest to PUT as-is: go-containerregistry's Taggable plus the
// describable methods, so it never re-encodes or re-fetches anything.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }
func (r rawManifest) Digest() (v1.Hash, error)            { return digestOf(r.raw), nil }
func (r rawManifest) Size() (int64, error)                { return int64(len(r.raw)), nil }

func manifestOf(n *node) rawManifest { return rawManifest{raw: n.raw, mt: n.desc.MediaType} }
