package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/scan"
)

// maxSBOM bounds an SBOM read from a referrer (a large image's CycloneDX is a few MiB).
const maxSBOM = 64 << 20

// The OCI empty descriptor, the config of artifacts that have none.
const (
	emptyJSON   = "{}"
	emptyDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	emptyType   = "application/vnd.oci.empty.v1+json"
)

// scanReferrers keeps SBOMs as referrers, through the registry so that quotas,
// immutability, GC and the referrers API treat them as any pushed artifact.
type scanReferrers struct{ reg *registry.Registry }

func (s scanReferrers) PushedSBOM(ctx context.Context, repo, digest string) ([]byte, error) {
	descs, err := s.reg.Referrers(ctx, repo, oci.Digest(digest), scan.SBOMArtifactType)
	if err != nil {
		return nil, err
	}
	for _, d := range descs {
		if _, ours := d.Annotations[scan.GeneratorAnnotation]; ours {
			continue
		}
		m, err := s.reg.GetManifest(ctx, repo, registry.Reference{Digest: d.Digest}, true)
		if err != nil {
			continue // deleted since the listing
		}
		parsed, err := oci.ParseManifest(m.MediaType, m.Payload)
		if err != nil || len(parsed.Layers) != 1 || parsed.Layers[0].Size > maxSBOM {
			continue
		}
		sbom, err := s.read(ctx, repo, parsed.Layers[0])
		if err != nil {
			return nil, fmt.Errorf("SBOM referrer %s of %s@%s: %w", d.Digest, repo, digest, err)
		}
		var doc struct{ BOMFormat string }
		if json.Unmarshal(sbom, &doc) != nil || doc.BOMFormat != "CycloneDX" {
			continue // not a CycloneDX JSON document: read the layers instead
		}
		return sbom, nil
	}
	return nil, nil
}

func (s scanReferrers) read(ctx context.Context, repo string, d oci.Descriptor) ([]byte, error) {
	b, err := s.reg.OpenBlob(ctx, repo, d.Digest)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data, err := io.ReadAll(io.LimitReader(b, maxSBOM+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != d.Size {
		return nil, errors.New("size differs from its descriptor")
	}
	return data, nil
}

func (s scanReferrers) AttachSBOM(ctx context.Context, repo, digest, mediaType string, size int64, sbom []byte, generator string) (string, error) {
	old, err := s.reg.Referrers(ctx, repo, oci.Digest(digest), scan.SBOMArtifactType)
	if err != nil {
		return "", err
	}
	layer := oci.Descriptor{MediaType: scan.SBOMArtifactType, Digest: oci.SHA256.FromBytes(sbom), Size: int64(len(sbom))}
	if err := s.putBlob(ctx, repo, []byte(emptyJSON)); err != nil {
		return "", err
	}
	if err := s.putBlob(ctx, repo, sbom); err != nil {
		return "", err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": oci.MediaTypeOCIManifest, "artifactType": scan.SBOMArtifactType,
		"config":      oci.Descriptor{MediaType: emptyType, Digest: emptyDigest, Size: int64(len(emptyJSON))},
		"layers":      []oci.Descriptor{layer},
		"subject":     oci.Descriptor{MediaType: mediaType, Digest: oci.Digest(digest), Size: size},
		"annotations": map[string]string{scan.GeneratorAnnotation: generator},
	})
	if err != nil {
		return "", err
	}
	md := oci.SHA256.FromBytes(manifest)
	if _, err := s.reg.PutManifest(ctx, repo, registry.Reference{Digest: md}, oci.MediaTypeOCIManifest, manifest, nil); err != nil {
		return "", err
	}
	for _, d := range old {
		if _, ours := d.Annotations[scan.GeneratorAnnotation]; ours && d.Digest != md {
			if err := s.reg.DeleteManifest(ctx, repo, registry.Reference{Digest: d.Digest}); err != nil {
				return "", fmt.Errorf("remove the SBOM Berth attached before: %w", err)
			}
			// Its signature goes with it (a missing one is fine).
			sigTag := strings.Replace(string(d.Digest), ":", "-", 1) + ".sig"
			if err := s.reg.DeleteManifest(ctx, repo, registry.Reference{Tag: sigTag}); err != nil && errcode.From(err) == nil {
				return "", fmt.Errorf("remove the signature of the SBOM Berth attached before: %w", err)
			}
		}
	}
	return string(md), nil
}

// AttachSignature pushes cosign's legacy signature manifest (sha256-<hex>.sig): an OCI
// manifest whose one simple-signing layer carries the signature annotation.
func (s scanReferrers) AttachSignature(ctx context.Context, repo, digest string, payload []byte, signature string) error {
	cfg := []byte(emptyJSON)
	if err := s.putBlob(ctx, repo, cfg); err != nil {
		return err
	}
	if err := s.putBlob(ctx, repo, payload); err != nil {
		return err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": oci.MediaTypeOCIManifest,
		"config": oci.Descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: oci.SHA256.FromBytes(cfg), Size: int64(len(cfg))},
		"layers": []oci.Descriptor{{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: oci.SHA256.FromBytes(payload), Size: int64(len(payload)),
			Annotations: map[string]string{"dev.cosignproject.cosign/signature": signature}}},
	})
	if err != nil {
		return err
	}
	tag := strings.Replace(digest, ":", "-", 1) + ".sig"
	_, err = s.reg.PutManifest(ctx, repo, registry.Reference{Tag: tag}, oci.MediaTypeOCIManifest, manifest, nil)
	return err
}

func (s scanReferrers) putBlob(ctx context.Context, repo string, b []byte) error {
	_, err := s.reg.PutBlob(ctx, repo, oci.SHA256.FromBytes(b), registry.Chunk{Body: bytes.NewReader(b), Length: int64(len(b))})
	return err
}
