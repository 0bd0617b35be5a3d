package cric

// Looking at and managing what a registry holds: tags, catalog, inspect, digest, rm, tag.

import (
	"context"
	"encoding/json"
	"io"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TagList is a repository's tags.
type TagList struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// Tags lists a repository's tags (all pages).
func (c *Client) Tags(ctx context.Context, repository string) (*TagList, error) {
	repo, err := c.ParseRepository(repository)
	if err != nil {
		return nil, err
	}
	tags, err := c.puller.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	if tags == nil {
		tags = []string{}
	}
	return &TagList{Name: repo.String(), Tags: tags}, nil
}

// Catalog is a registry's repositories.
type Catalog struct {
	Registry     string   `json:"registry"`
	Repositories []string `json:"repositories"`
}

// Catalog lists a registry's repositories (all pages), optionally only those under a
// path prefix.
func (c *Client) Catalog(ctx context.Context, registry string) (*Catalog, error) {
	host, prefix, _ := strings.Cut(strings.TrimSuffix(registry, "/"), "/")
	reg, err := c.ParseRegistry(host)
	if err != nil {
		return nil, err
	}
	repos, err := c.puller.Catalog(ctx, reg)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, r := range repos {
		if prefix == "" || r == prefix || strings.HasPrefix(r, prefix+"/") {
			out = append(out, r)
		}
	}
	return &Catalog{Registry: reg.RegistryStr(), Repositories: out}, nil
}

// Digest resolves an image to its manifest digest (with a platform: that platform's).
func (c *Client) Digest(ctx context.Context, image string, plat *v1.Platform) (string, error) {
	ref, err := c.ParseReference(image)
	if err != nil {
		return "", err
	}
	if plat == nil {
		if d, err := c.puller.Head(ctx, ref); err == nil {
			return d.Digest.String(), nil
		}
	}
	_, desc, raw, err := c.resolveRemote(ctx, ref)
	if err != nil {
		return "", err
	}
	doc, mt, err := parseManifest(raw, desc.MediaType)
	if err != nil {
		return "", err
	}
	if plat == nil || !mt.IsIndex() {
		return digestOf(raw).String(), nil
	}
	child, err := pickPlatform(doc.Manifests, *plat)
	if err != nil {
		return "", err
	}
	return child.Digest.String(), nil
}

// Inspection describes an image.
type Inspection struct {
	Reference    string            `json:"reference"`
	Digest       string            `json:"digest"`
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Size         int64             `json:"size"` // manifests and blobs, each counted once
	Platforms    []PlatformInfo    `json:"platforms,omitempty"`
	Config       *ConfigInfo       `json:"config,omitempty"`
	Layers       []v1.Descriptor   `json:"layers,omitempty"`
	Subject      *v1.Descriptor    `json:"subject,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Referrers    []v1.Descriptor   `json:"referrers"`
	Manifest     json.RawMessage   `json:"manifest"`
}

// PlatformInfo is one manifest of an index.
type PlatformInfo struct {
	Platform  string `json:"platform"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

// ConfigInfo is the part of an image config people look for.
type ConfigInfo struct {
	Digest       string            `json:"digest"`
	MediaType    string            `json:"mediaType"`
	OS           string            `json:"os,omitempty"`
	Architecture string            `json:"architecture,omitempty"`
	Variant      string            `json:"variant,omitempty"`
	Created      string            `json:"created,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	User         string            `json:"user,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Raw          json.RawMessage   `json:"-"`
}

// Inspect describes an image: manifest, platforms with sizes, config, layers and
// referrers. With a platform, the platform's manifest is described.
func (c *Client) Inspect(ctx context.Context, image string, plat *v1.Platform) (*Inspection, error) {
	ref, err := c.ParseReference(image)
	if err != nil {
		return nil, err
	}
	src, desc, raw, err := c.resolveRemote(ctx, ref)
	if err != nil {
		return nil, err
	}
	root, err := c.graph(ctx, src, desc, raw, plat)
	if err != nil {
		return nil, err
	}
	in := &Inspection{
		Reference: ref.String(), Digest: root.desc.Digest.String(), MediaType: string(root.desc.MediaType),
		ArtifactType: root.doc.ArtifactType, Size: root.size(), Subject: root.doc.Subject,
		Annotations: root.doc.Annotations, Manifest: root.raw, Referrers: []v1.Descriptor{},
	}
	for _, ch := range root.children {
		p := "unknown"
		if ch.desc.Platform != nil {
			p = ch.desc.Platform.String()
		}
		in.Platforms = append(in.Platforms, PlatformInfo{Platform: p, Digest: ch.desc.Digest.String(),
			MediaType: string(ch.desc.MediaType), Size: ch.size()})
	}
	if !root.isIndex() {
		in.Layers = root.doc.Layers
		if root.doc.Config != nil {
			if in.Config, err = c.config(ctx, src, *root.doc.Config); err != nil {
				return nil, err
			}
		}
	}
	idx, err := remote.Referrers(ref.Context().Digest(root.desc.Digest.String()), c.remoteOpts(ctx)...)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	in.Referrers = append(in.Referrers, im.Manifests...)
	return in, nil
}

// config fetches and summarises an image config; other config types (artifacts) are
// only described.
func (c *Client) config(ctx context.Context, src source, d v1.Descriptor) (*ConfigInfo, error) {
	ci := &ConfigInfo{Digest: d.Digest.String(), MediaType: string(d.MediaType)}
	if !d.MediaType.IsConfig() || d.Size > manifestLimit {
		return ci, nil
	}
	l, err := src.layer(ctx, d)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, manifestLimit))
	if err != nil {
		return nil, err
	}
	ci.Raw = b
	cf, err := v1.ParseConfigFile(strings.NewReader(string(b)))
	if err != nil {
		return ci, nil
	}
	ci.OS, ci.Architecture, ci.Variant = cf.OS, cf.Architecture, cf.Variant
	if !cf.Created.IsZero() {
		ci.Created = cf.Created.UTC().Format("2006-01-02T15:04:05Z")
	}
	ci.Entrypoint, ci.Cmd, ci.Env = cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.Env
	ci.WorkingDir, ci.User, ci.Labels = cf.Config.WorkingDir, cf.Config.User, cf.Config.Labels
	return ci, nil
}

// RawConfig returns an image's config bytes (for a platform of an index).
func (c *Client) RawConfig(ctx context.Context, image string, plat *v1.Platform) ([]byte, error) {
	ref, err := c.ParseReference(image)
	if err != nil {
		return nil, err
	}
	src, desc, raw, err := c.resolveRemote(ctx, ref)
	if err != nil {
		return nil, err
	}
	if plat == nil {
		plat = DefaultPlatform()
	}
	root, err := c.graph(ctx, src, desc, raw, plat)
	if err != nil {
		return nil, err
	}
	if root.doc.Config == nil {
		return nil, notFoundErrorf("%s has no config", image)
	}
	ci, err := c.config(ctx, src, *root.doc.Config)
	if err != nil {
		return nil, err
	}
	if ci.Raw == nil {
		l, err := src.layer(ctx, *root.doc.Config)
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, manifestLimit))
	}
	return ci.Raw, nil
}

// RawManifest returns an image's manifest bytes exactly as the registry serves them.
func (c *Client) RawManifest(ctx context.Context, image string, plat *v1.Platform) ([]byte, error) {
	ref, err := c.ParseReference(image)
	if err != nil {
		return nil, err
	}
	src, desc, raw, err := c.resolveRemote(ctx, ref)
	if err != nil {
		return nil, err
	}
	if plat == nil {
		return raw, nil
	}
	root, err := c.graph(ctx, src, desc, raw, plat)
	if err != nil {
		return nil, err
	}
	return root.raw, nil
}

// Delete removes a tag (IMAGE:TAG) or a manifest (IMAGE@DIGEST). With manifest, a tag is
// first resolved and the manifest it points at is deleted, with every tag on it.
func (c *Client) Delete(ctx context.Context, image string, manifest bool) (string, error) {
	ref, err := c.ParseReference(image)
	if err != nil {
		return "", err
	}
	if _, isTag := ref.(name.Tag); isTag && manifest {
		d, err := c.puller.Head(ctx, ref)
		if err != nil {
			return "", err
		}
		ref = ref.Context().Digest(d.Digest.String())
	}
	if err := c.pusher.Delete(ctx, ref); err != nil {
		return "", err
	}
	return ref.String(), nil
}

// Tag points a new tag at an image's manifest, in the same repository.
func (c *Client) Tag(ctx context.Context, image, newTag string) (string, error) {
	ref, err := c.ParseReference(image)
	if err != nil {
		return "", err
	}
	var tag name.Tag
	if strings.ContainsAny(newTag, "/:") {
		r, _, err := c.parseImage(newTag)
		if err != nil {
			return "", err
		}
		t, ok := r.(name.Tag)
		if !ok || r.Context().String() != ref.Context().String() {
			return "", usageErrorf("tag names a new tag in the same repository (%s); to copy elsewhere use cric cp", ref.Context())
		}
		tag = t
	} else if tag, err = name.NewTag(ref.Context().String()+":"+newTag, c.nameOpts(ref.Context().RegistryStr())...); err != nil {
		return "", usageErrorf("invalid tag %q: %v", newTag, err)
	}
	desc, err := c.puller.Get(ctx, ref)
	if err != nil {
		return "", err
	}
	if err := c.pusher.Put(ctx, tag, rawManifest{raw: desc.Manifest, mt: desc.MediaType}); err != nil {
		return "", err
	}
	return tag.String() + "@" + digestOf(desc.Manifest).String(), nil
}

// sortedKeys returns a map's keys in order.
func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
