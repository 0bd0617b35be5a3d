package trust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

// Content is what the evaluator reads signatures from: the registry (for mirrored
// repositories, the cache the mirror fills, signatures included).
type Content interface {
	GetManifest(ctx context.Context, repo string, ref registry.Reference, withPayload bool) (meta.Manifest, error)
	Referrers(ctx context.Context, repo string, dgst oci.Digest, artifactType string) ([]oci.Descriptor, error)
	OpenBlob(ctx context.Context, repo string, dgst oci.Digest) (blobstore.Blob, error)
}

// Target is the manifest a verdict is about.
type Target struct {
	Repo      string
	Digest    string
	MediaType string
	Size      int64
}

// Signature kinds.
const (
	KindBundle            = "cosign-bundle"
	KindLegacySignature   = "cosign-legacy-signature"
	KindLegacyAttestation = "cosign-legacy-attestation"
	KindNotation          = "notation"
)

// found is one signature or attestation discovered for a target.
type found struct {
	kind        string
	ref         string // where it was found: referrer digest, or tag and layer
	mediaType   string // envelope media type (notation)
	payload     []byte
	annotations map[string]string
	// predicateType is what the artifact says it attests (cosign bundles, .att layers).
	predicateType string
}

const (
	maxSignatures    = 32
	maxSignatureBlob = 1 << 20
)

// LegacyTag is cosign's tag for signatures (suffix "sig") or attestations ("att") of d.
func LegacyTag(d, suffix string) string { return strings.Replace(d, ":", "-", 1) + "." + suffix }

// discover lists the signatures of target: its referrers (OCI 1.1 API or tag schema —
// both end up as manifests with a subject) and cosign's legacy .sig/.att tags.
func discover(ctx context.Context, c Content, t Target) ([]*found, error) {
	var out []*found
	refs, err := c.Referrers(ctx, t.Repo, oci.Digest(t.Digest), "")
	if err != nil && !errors.Is(err, errcode.ManifestUnknown) && !errors.Is(err, errcode.NameUnknown) {
		return nil, err
	}
	for _, d := range refs {
		if len(out) >= maxSignatures {
			break
		}
		switch d.ArtifactType {
		case ArtifactTypeSigstoreBundle, ArtifactTypeNotation:
		default:
			continue // SBOMs and other artifacts sign nothing
		}
		m, err := manifestAt(ctx, c, t.Repo, registry.Reference{Digest: oci.Digest(d.Digest)})
		if err != nil {
			out = append(out, &found{kind: kindOf(d.ArtifactType), ref: string(d.Digest), annotations: map[string]string{"error": err.Error()}})
			continue
		}
		for _, l := range m.Layers {
			f := &found{kind: kindOf(d.ArtifactType), ref: string(d.Digest), mediaType: l.MediaType, annotations: d.Annotations}
			if f.kind == KindBundle {
				f.predicateType = d.Annotations["dev.sigstore.bundle.predicateType"]
			}
			if f.payload, err = readBlob(ctx, c, t.Repo, l); err != nil {
				f.annotations = map[string]string{"error": err.Error()}
			}
			out = append(out, f)
			break // one envelope per signature manifest
		}
	}
	for _, suffix := range []string{"sig", "att"} {
		tag := LegacyTag(t.Digest, suffix)
		m, err := manifestAt(ctx, c, t.Repo, registry.Reference{Tag: tag})
		if err != nil {
			continue
		}
		for i, l := range m.Layers {
			if len(out) >= maxSignatures {
				break
			}
			f := &found{kind: KindLegacySignature, ref: fmt.Sprintf("%s[%d]", tag, i), annotations: l.Annotations}
			if suffix == "att" {
				f.kind, f.predicateType = KindLegacyAttestation, l.Annotations[annotationPredicateType]
			}
			if f.payload, err = readBlob(ctx, c, t.Repo, l); err != nil {
				f.annotations = map[string]string{"error": err.Error()}
			}
			out = append(out, f)
		}
	}
	return out, nil
}

func kindOf(artifactType string) string {
	if artifactType == ArtifactTypeNotation {
		return KindNotation
	}
	return KindBundle
}

func manifestAt(ctx context.Context, c Content, repo string, ref registry.Reference) (*oci.Manifest, error) {
	m, err := c.GetManifest(ctx, repo, ref, true)
	if err != nil {
		return nil, err
	}
	return oci.ParseManifest(m.MediaType, m.Payload)
}

func readBlob(ctx context.Context, c Content, repo string, d oci.Descriptor) ([]byte, error) {
	if d.Size > maxSignatureBlob {
		return nil, fmt.Errorf("signature blob of %d bytes exceeds %d", d.Size, maxSignatureBlob)
	}
	b, err := c.OpenBlob(ctx, repo, oci.Digest(d.Digest))
	if err != nil {
		return nil, fmt.Errorf("signature blob %s: %w", d.Digest, err)
	}
	defer b.Close()
	data, err := io.ReadAll(io.LimitReader(b, maxSignatureBlob+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != d.Size {
		return nil, fmt.Errorf("signature blob %s: read %d bytes, descriptor says %d", d.Digest, len(data), d.Size)
	}
	return data, nil
}
