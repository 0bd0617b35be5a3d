package dist

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Built is one variant of the image: its index, its tag and its SBOM referrer.
type Built struct {
	Tag   string
	Index v1.ImageIndex
	SBOM  *Artifact
}

// refName is the OCI layout annotation that names an index.json entry.
const refName = "org.opencontainers.image.ref.name"

// WriteLayout writes the variants into a fresh OCI image layout at dir: each index
// named by its tag in index.json, each SBOM manifest next to it.
func WriteLayout(dir string, built []Built) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("dist: %w", err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("dist: layout: %w", err)
	}
	for _, b := range built {
		if err := p.AppendIndex(b.Index, layout.WithAnnotations(map[string]string{refName: b.Tag})); err != nil {
			return fmt.Errorf("dist: layout: %w", err)
		}
		for _, l := range []v1.Layer{b.SBOM.Config, b.SBOM.Layer} {
			if err := writeBlob(p, l); err != nil {
				return err
			}
		}
		d := b.SBOM.Descriptor()
		if err := p.WriteBlob(d.Digest, io.NopCloser(bytes.NewReader(b.SBOM.raw))); err != nil {
			return fmt.Errorf("dist: layout: %w", err)
		}
		if err := p.AppendDescriptor(d); err != nil {
			return fmt.Errorf("dist: layout: %w", err)
		}
	}
	return nil
}

func writeBlob(p layout.Path, l v1.Layer) error {
	d, err := l.Digest()
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	if err := p.WriteBlob(d, rc); err != nil {
		return fmt.Errorf("dist: layout: %w", err)
	}
	return nil
}

// Push pushes a variant to repo (e.g. registry.example.com/berth/berth) as repo:tag and
// its SBOM as a referrer of the index, with credentials from Docker's config.json.
// Loopback registries are spoken to over plain http, as crane does.
func Push(ctx context.Context, repo string, b Built) (name.Reference, error) {
	r, err := name.NewRepository(repo)
	if err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	ref := r.Tag(b.Tag)
	if err := remote.WriteIndex(ref, b.Index, opts...); err != nil {
		return nil, fmt.Errorf("dist: push %s: %w", ref, err)
	}
	for _, l := range []v1.Layer{b.SBOM.Config, b.SBOM.Layer} {
		if err := remote.WriteLayer(r, l, opts...); err != nil {
			return nil, fmt.Errorf("dist: push the SBOM: %w", err)
		}
	}
	if err := remote.Put(r.Digest(b.SBOM.Descriptor().Digest.String()), b.SBOM, opts...); err != nil {
		return nil, fmt.Errorf("dist: push the SBOM: %w", err)
	}
	return ref, nil
}
