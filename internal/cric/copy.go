package cric

// pull, push and cp: one image between a registry and a layout/archive, or between two
// registries (all platforms unless one is chosen, digests unchanged, optionally with
// everything that refers to it: signatures, SBOMs, attestations).

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Archive and layout formats.
const (
	FormatOCI           = "oci"            // OCI image layout directory
	FormatOCIArchive    = "oci-archive"    // tar of an OCI image layout
	FormatDockerArchive = "docker-archive" // docker save's tar (one platform)
)

// PullOptions tune Pull.
type PullOptions struct {
	Output       string       // directory or .tar; default: the repository's last path element
	Format       string       // oci, oci-archive or docker-archive; default from Output
	Platform     *v1.Platform // one platform of a multi-platform image
	AllPlatforms bool         // the whole index (default: DefaultPlatform)
}

// Pull copies an image from a registry into an OCI layout directory or an archive.
func (c *Client) Pull(ctx context.Context, image string, o PullOptions) (*Result, error) {
	ref, tag, err := c.parseImage(image)
	if err != nil {
		return nil, err
	}
	format, out, err := pullTarget(ref, o)
	if err != nil {
		return nil, err
	}
	plat := o.Platform
	if plat == nil && !o.AllPlatforms {
		plat = DefaultPlatform()
	}
	if o.AllPlatforms && (o.Platform != nil || format == FormatDockerArchive) {
		return nil, usageErrorf("--all-platforms cannot be combined with --platform or a docker archive")
	}
	src, desc, raw, err := c.resolveRemote(ctx, ref)
	if err != nil {
		return nil, err
	}
	root, err := c.graph(ctx, src, desc, raw, plat)
	if err != nil {
		return nil, err
	}
	res := resultFor(ref.String(), out, root)
	if format == FormatDockerArchive {
		return res, c.writeDockerArchive(ctx, src, root, ref, tag, out)
	}
	spec := rootSpec{annotations: refAnnotations(ref, tag)}
	switch format {
	case FormatOCI:
		s, err := newDirSink(out)
		if err != nil {
			return nil, err
		}
		if err := c.transfer(ctx, []*item{{src: src, root: root, dst: s, spec: spec}}, transferOpts{verb: "pulled"}); err != nil {
			return nil, err
		}
		return res, s.finish()
	default:
		s, err := newTarSink(out)
		if err != nil {
			return nil, err
		}
		if err := c.transfer(ctx, []*item{{src: src, root: root, dst: s, spec: spec}}, transferOpts{verb: "pulled"}); err != nil {
			s.abort()
			return nil, err
		}
		return res, s.finish()
	}
}

// pullTarget decides the output path and format.
func pullTarget(ref name.Reference, o PullOptions) (string, string, error) {
	out := o.Output
	if out == "" {
		out = path.Base(ref.Context().RepositoryStr())
		if o.Format == FormatOCIArchive || o.Format == FormatDockerArchive || o.Format == "docker" {
			out += ".tar"
		}
	}
	switch o.Format {
	case "":
		if strings.HasSuffix(out, ".tar") {
			return FormatOCIArchive, out, nil
		}
		return FormatOCI, out, nil
	case FormatOCI, FormatOCIArchive, FormatDockerArchive:
		return o.Format, out, nil
	case "docker":
		return FormatDockerArchive, out, nil
	}
	return "", "", usageErrorf("--format must be oci, oci-archive or docker-archive, not %q", o.Format)
}

// refAnnotations name an image in a layout's index.json: the tag as the OCI ref.name (as
// docker and containerd write it), the full name for containerd, and cric's own record
// of the full source reference.
func refAnnotations(ref name.Reference, tag string) map[string]string {
	full := canonicalName(ref, tag)
	a := map[string]string{AnnotationImageName: full, AnnotationSource: full}
	if tag != "" {
		a[AnnotationRefName] = tag
	}
	return a
}

// canonicalName writes a reference the way docker and containerd do (docker.io, not
// index.docker.io), keeping the tag of a tag@digest reference.
func canonicalName(ref name.Reference, tag string) string {
	repo := ref.Context().RegistryStr() + "/" + ref.Context().RepositoryStr()
	if ref.Context().RegistryStr() == name.DefaultRegistry {
		repo = "docker.io/" + ref.Context().RepositoryStr()
	}
	switch r := ref.(type) {
	case name.Digest:
		if tag != "" {
			return repo + ":" + tag + "@" + r.DigestStr()
		}
		return repo + "@" + r.DigestStr()
	default:
		return repo + ":" + tag
	}
}

func resultFor(src, dst string, root *node) *Result {
	r := &Result{Source: src, Destination: dst, Digest: root.desc.Digest.String(),
		MediaType: string(root.desc.MediaType), Size: root.size()}
	for _, ch := range root.children {
		if ch.desc.Platform != nil && ch.desc.Platform.OS != "unknown" {
			r.Platforms = append(r.Platforms, ch.desc.Platform.String())
		}
	}
	return r
}

// hasExplicitVersion reports whether an image string names a tag or digest.
func hasExplicitVersion(image string) bool {
	last := image[strings.LastIndexByte(image, '/')+1:]
	return strings.ContainsAny(last, ":@")
}

// Push copies an image from an OCI layout directory or archive (PATH, PATH:NAME) or a
// docker archive into a registry. Without a tag in IMAGE, the layout entry's tag is used.
func (c *Client) Push(ctx context.Context, srcSpec, image string) (*Result, error) {
	l, err := openLocal(srcSpec)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var (
		src  source
		desc v1.Descriptor
		raw  []byte
		tag  string
	)
	if l.docker {
		src, desc, raw, err = openDockerArchive(l)
		if err != nil {
			return nil, err
		}
	} else {
		desc, err = l.selectEntry()
		if err != nil {
			return nil, err
		}
		src = l.layout
		if raw, err = l.layout.manifest(ctx, desc); err != nil {
			return nil, err
		}
		if t := desc.Annotations[AnnotationRefName]; t != "" && !strings.ContainsAny(t, "/:@") {
			tag = t
		}
	}
	if !hasExplicitVersion(image) && tag != "" {
		image += ":" + tag
	}
	ref, tag, err := c.parseImage(image)
	if err != nil {
		return nil, err
	}
	root, err := c.graph(ctx, src, desc, raw, nil)
	if err != nil {
		return nil, err
	}
	if d, ok := ref.(name.Digest); ok && d.DigestStr() != root.desc.Digest.String() {
		return nil, usageErrorf("%s has digest %s, not %s", srcSpec, root.desc.Digest, d.DigestStr())
	}
	dst := &registrySink{c: c, repo: ref.Context()}
	if err := c.transfer(ctx, []*item{{src: src, root: root, dst: dst, spec: rootSpec{tag: tag}}}, transferOpts{verb: "pushed"}); err != nil {
		return nil, err
	}
	return resultFor(srcSpec, ref.String(), root), nil
}

// CopyOptions tune Copy.
type CopyOptions struct {
	Platform  *v1.Platform // copy one platform only (its manifest becomes the target)
	Referrers bool         // also copy what refers to the image, recursively
}

// Copy copies an image between registries (or repositories), all platforms by default,
// digests unchanged. Without a tag in DST, the source's tag is kept.
func (c *Client) Copy(ctx context.Context, srcImage, dstImage string, o CopyOptions) (*Result, error) {
	srcRef, srcTag, err := c.parseImage(srcImage)
	if err != nil {
		return nil, err
	}
	if !hasExplicitVersion(dstImage) {
		if srcTag != "" {
			dstImage += ":" + srcTag
		} else if d, ok := srcRef.(name.Digest); ok {
			dstImage += "@" + d.DigestStr()
		}
	}
	dstRef, dstTag, err := c.parseImage(dstImage)
	if err != nil {
		return nil, err
	}
	src, desc, raw, err := c.resolveRemote(ctx, srcRef)
	if err != nil {
		return nil, err
	}
	root, err := c.graph(ctx, src, desc, raw, o.Platform)
	if err != nil {
		return nil, err
	}
	if d, ok := dstRef.(name.Digest); ok && d.DigestStr() != root.desc.Digest.String() {
		return nil, usageErrorf("%s has digest %s, not %s", srcImage, root.desc.Digest, d.DigestStr())
	}
	dst := &registrySink{c: c, repo: dstRef.Context()}
	if err := c.transfer(ctx, []*item{{src: src, root: root, dst: dst, spec: rootSpec{tag: dstTag}}}, transferOpts{verb: "copied"}); err != nil {
		return nil, err
	}
	res := resultFor(srcRef.String(), dstRef.String(), root)
	if o.Referrers {
		n, err := c.copyReferrers(ctx, src, dst, root)
		if err != nil {
			return nil, fmt.Errorf("copying referrers: %w", err)
		}
		res.Referrers = n
	}
	return res, nil
}

// copyReferrers copies, level by level, every manifest that refers to a manifest of the
// graph (and what refers to those). The source is read through the referrers API or its
// tag-schema fallback; the destination's referrers list (or fallback tag) is updated by
// the manifest PUTs.
func (c *Client) copyReferrers(ctx context.Context, src *registrySource, dst sink, root *node) (int, error) {
	seen := map[v1.Hash]bool{}
	var frontier []v1.Hash
	root.postorder(func(n *node) {
		if !seen[n.desc.Digest] {
			seen[n.desc.Digest] = true
			frontier = append(frontier, n.desc.Digest)
		}
	})
	count := 0
	for len(frontier) > 0 {
		var items []*item
		var next []v1.Hash
		for _, subject := range frontier {
			idx, err := remote.Referrers(src.repo.Digest(subject.String()), c.remoteOpts(ctx)...)
			if err != nil {
				return count, err
			}
			im, err := idx.IndexManifest()
			if err != nil {
				return count, err
			}
			for _, d := range im.Manifests {
				if seen[d.Digest] {
					continue
				}
				seen[d.Digest] = true
				raw, err := src.manifest(ctx, d)
				if err != nil {
					return count, err
				}
				d.Platform, d.Annotations = nil, nil
				n, err := c.graph(ctx, src, d, raw, nil)
				if err != nil {
					return count, err
				}
				items = append(items, &item{src: src, root: n, dst: dst})
				n.postorder(func(m *node) {
					seen[m.desc.Digest] = true
					next = append(next, m.desc.Digest)
				})
			}
		}
		if len(items) > 0 {
			if err := c.transfer(ctx, items, transferOpts{verb: "copied", serialManifests: true}); err != nil {
				return count, err
			}
		}
		count += len(items)
		frontier = next
	}
	return count, nil
}
