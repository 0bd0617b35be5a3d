package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

// WarmEvent reports warm-up progress.
type WarmEvent struct {
	Image  string
	Digest string
	Kind   string // manifest, blob
	Size   int64
	Cached bool // already in the cache
	Err    error
}

// ParseImage splits an image reference such as registry.k8s.io/pause:3.10,
// nginx (docker.io/library/nginx:latest) or ghcr.io/org/app@sha256:… into its registry
// host, repository and reference.
func ParseImage(image string) (host, repo string, ref registry.Reference, err error) {
	rest := image
	if i := strings.IndexByte(rest, '/'); i > 0 && (strings.ContainsAny(rest[:i], ".:") || rest[:i] == "localhost") {
		host, rest = rest[:i], rest[i+1:]
	} else {
		host = "docker.io"
	}
	refStr := "latest"
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		rest, refStr = rest[:i], rest[i+1:]
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest, refStr = rest[:i], rest[i+1:]
	}
	if host == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	if err := oci.ValidateName(rest); err != nil {
		return "", "", registry.Reference{}, fmt.Errorf("%s: %w", image, err)
	}
	ref, err = registry.ParseReference(refStr)
	if err != nil {
		return "", "", registry.Reference{}, fmt.Errorf("%s: %w", image, err)
	}
	return host, rest, ref, nil
}

type indexDoc struct {
	Manifests []struct {
		oci.Descriptor
		Platform *struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
			Variant      string `json:"variant"`
		} `json:"platform"`
	} `json:"manifests"`
}

type imageDoc struct {
	Config *oci.Descriptor  `json:"config"`
	Layers []oci.Descriptor `json:"layers"`
}

// Warm fills the cache with images so nodes never wait on the upstream: manifests, the
// platforms asked for (all when platforms is empty; "linux/amd64" style) and their blobs.
// It reports each item through progress and returns the first error after trying all.
func (m *Mirror) Warm(ctx context.Context, images, platforms []string, progress func(WarmEvent)) error {
	var firstErr error
	count := func(result string) {
		if m.metrics != nil {
			m.metrics.warmImages.WithLabelValues(result).Inc()
		}
	}
	fail := func(ev WarmEvent) {
		progress(ev)
		count("failed")
		if firstErr == nil {
			firstErr = ev.Err
		}
	}
	for _, image := range images {
		host, repo, ref, err := ParseImage(image)
		if err != nil {
			fail(WarmEvent{Image: image, Err: err})
			continue
		}
		u := m.byName[host]
		if u == nil {
			fail(WarmEvent{Image: image, Err: fmt.Errorf("%s is not a configured upstream", host)})
			continue
		}
		t, err := m.target(u, repo)
		if err != nil {
			fail(WarmEvent{Image: image, Err: err})
			continue
		}
		if err := m.warmManifest(ctx, t, image, ref, platforms, progress); err != nil {
			fail(WarmEvent{Image: image, Err: err})
			continue
		}
		count("ok")
	}
	return firstErr
}

func (m *Mirror) warmManifest(ctx context.Context, t *Target, image string, ref registry.Reference, platforms []string, progress func(WarmEvent)) error {
	man, err := m.Manifest(ctx, t, ref, true)
	if err != nil {
		return err
	}
	progress(WarmEvent{Image: image, Digest: man.Digest, Kind: "manifest", Size: man.Size})
	switch man.MediaType {
	case oci.MediaTypeOCIIndex, oci.MediaTypeDockerList:
		var idx indexDoc
		if err := json.Unmarshal(man.Payload, &idx); err != nil {
			return fmt.Errorf("%s: index: %w", image, err)
		}
		for _, d := range idx.Manifests {
			if d.Platform != nil && !wantPlatform(platforms, d.Platform.OS, d.Platform.Architecture, d.Platform.Variant) {
				continue
			}
			if err := m.warmManifest(ctx, t, image, registry.Reference{Digest: d.Digest}, platforms, progress); err != nil {
				return err
			}
		}
		return nil
	}
	var img imageDoc
	if err := json.Unmarshal(man.Payload, &img); err != nil {
		return fmt.Errorf("%s: manifest: %w", image, err)
	}
	blobs := img.Layers
	if img.Config != nil {
		blobs = append([]oci.Descriptor{*img.Config}, blobs...)
	}
	for _, d := range blobs {
		if len(d.URLs) > 0 {
			continue // non-distributable: not served by the upstream
		}
		if err := m.warmBlob(ctx, t, image, d.Digest, progress); err != nil {
			return err
		}
	}
	return nil
}

func (m *Mirror) warmBlob(ctx context.Context, t *Target, image string, dgst oci.Digest, progress func(WarmEvent)) error {
	blob, stream, err := m.OpenBlob(ctx, t, dgst)
	if err != nil {
		return fmt.Errorf("%s: blob %s: %w", image, dgst, err)
	}
	if blob != nil {
		size := blob.Size()
		blob.Close()
		progress(WarmEvent{Image: image, Digest: string(dgst), Kind: "blob", Size: size, Cached: true})
		return nil
	}
	defer stream.Close()
	n, err := io.Copy(io.Discard, stream.Reader(ctx, 0, -1))
	if err != nil {
		return fmt.Errorf("%s: blob %s: %w", image, dgst, err)
	}
	progress(WarmEvent{Image: image, Digest: string(dgst), Kind: "blob", Size: n})
	return nil
}

func wantPlatform(platforms []string, os, arch, variant string) bool {
	if len(platforms) == 0 {
		return true
	}
	for _, p := range platforms {
		parts := strings.Split(p, "/")
		if len(parts) < 2 || parts[0] != os || parts[1] != arch {
			continue
		}
		if len(parts) == 3 && parts[2] != variant {
			continue
		}
		return true
	}
	return false
}
