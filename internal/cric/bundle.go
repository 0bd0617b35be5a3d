package cric

// Bundles for air-gapped sites: save writes many images into one OCI image layout (a tar
// or a directory) where blobs shared between images are stored once; each index.json
// entry names its image (ref.name = the tag, io.containerd.image.name and cric's source
// annotation = the full reference). load pushes every entry of a bundle into another
// registry, under an optional prefix, keeping repository paths, tags and digests.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// SaveOptions tune Save.
type SaveOptions struct {
	Output   string       // bundle.tar, or a directory for an unpacked layout
	FromFile string       // a file with one image per line (# comments, blank lines ignored)
	Platform *v1.Platform // save one platform of each image (default: all platforms)
}

// ReadImageList reads an image list: one reference per line, '#' starts a comment.
func ReadImageList(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, strings.Fields(line)[0])
		}
	}
	return out, sc.Err()
}

// Save writes images into one bundle.
func (c *Client) Save(ctx context.Context, images []string, o SaveOptions) ([]*Result, error) {
	if o.Output == "" {
		return nil, usageErrorf("save needs -o bundle.tar (or a directory)")
	}
	if o.FromFile != "" {
		more, err := ReadImageList(o.FromFile)
		if err != nil {
			return nil, usageErrorf("--from-file: %v", err)
		}
		images = append(images, more...)
	}
	images = dedupe(images)
	if len(images) == 0 {
		return nil, usageErrorf("save needs at least one image")
	}
	items := make([]*item, len(images))
	results := make([]*Result, len(images))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Jobs)
	for i, image := range images {
		g.Go(func() error {
			ref, tag, err := c.parseImage(image)
			if err != nil {
				return err
			}
			src, desc, raw, err := c.resolveRemote(gctx, ref)
			if err != nil {
				return fmt.Errorf("%s: %w", image, err)
			}
			root, err := c.graph(gctx, src, desc, raw, o.Platform)
			if err != nil {
				return fmt.Errorf("%s: %w", image, err)
			}
			items[i] = &item{src: src, root: root, spec: rootSpec{annotations: refAnnotations(ref, tag), seq: i}}
			results[i] = resultFor(canonicalName(ref, tag), o.Output, root)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	asDir := !strings.HasSuffix(o.Output, ".tar")
	if fi, err := os.Stat(o.Output); err == nil && fi.IsDir() {
		asDir = true
	}
	if asDir {
		s, err := newDirSink(o.Output)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			it.dst = s
		}
		if err := c.transfer(ctx, items, transferOpts{verb: "saved"}); err != nil {
			return nil, err
		}
		return results, s.finish()
	}
	s, err := newTarSink(o.Output)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		it.dst = s
	}
	if err := c.transfer(ctx, items, transferOpts{verb: "saved"}); err != nil {
		s.abort()
		return nil, err
	}
	return results, s.finish()
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// LoadOptions tune Load.
type LoadOptions struct {
	To string // REGISTRY[/prefix]
}

// Load pushes every image of a bundle to REGISTRY[/prefix]/<original repository path>
// with its original tag (or by digest) and digest.
func (c *Client) Load(ctx context.Context, bundle string, o LoadOptions) ([]*Result, error) {
	if o.To == "" {
		return nil, usageErrorf("load needs --to REGISTRY[/prefix]")
	}
	host, prefix, _ := strings.Cut(strings.TrimSuffix(o.To, "/"), "/")
	reg, err := c.ParseRegistry(host)
	if err != nil {
		return nil, err
	}
	l, err := openLocal(bundle)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	if l.docker {
		return nil, usageErrorf("%s is a docker archive; load reads OCI layout bundles (use cric push for a docker archive)", bundle)
	}
	entries := l.layout.index.Manifests
	if l.selector != "" {
		d, err := l.selectEntry()
		if err != nil {
			return nil, err
		}
		entries = []v1.Descriptor{d}
	}
	items := make([]*item, len(entries))
	results := make([]*Result, len(entries))
	for i, e := range entries {
		srcName := sourceName(e)
		if srcName == "" {
			return nil, usageErrorf("entry %d of %s (%s) does not record where it came from; push it with: cric push %s:%s IMAGE",
				i, bundle, entryLabel(e), bundle, entryLabel(e))
		}
		srcRef, tag, err := c.parseImage(srcName)
		if err != nil {
			return nil, err
		}
		repoPath := srcRef.Context().RepositoryStr()
		if prefix != "" {
			repoPath = prefix + "/" + repoPath
		}
		dst := reg.RegistryStr() + "/" + repoPath
		repo, err := name.NewRepository(dst, c.nameOpts(reg.RegistryStr())...)
		if err != nil {
			return nil, usageErrorf("destination %s: %v", dst, err)
		}
		raw, err := l.layout.manifest(ctx, e)
		if err != nil {
			return nil, err
		}
		desc := e
		desc.Annotations, desc.Platform = nil, nil
		root, err := c.graph(ctx, l.layout, desc, raw, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", srcName, err)
		}
		items[i] = &item{src: l.layout, root: root, dst: &registrySink{c: c, repo: repo}, spec: rootSpec{tag: tag}}
		dstName := repo.String() + "@" + root.desc.Digest.String()
		if tag != "" {
			dstName = repo.Tag(tag).String()
		}
		results[i] = resultFor(srcName, dstName, root)
	}
	if err := c.transfer(ctx, items, transferOpts{verb: "loaded"}); err != nil {
		return nil, err
	}
	return results, nil
}

// sourceName is the full reference an entry was saved from, if recorded.
func sourceName(d v1.Descriptor) string {
	for _, k := range []string{AnnotationSource, AnnotationImageName, AnnotationRefName} {
		if v := d.Annotations[k]; strings.Contains(v, "/") {
			return v
		}
	}
	return ""
}
