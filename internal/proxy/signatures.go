package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

// Artifact types a signature policy reads (package trust). Other referrers (SBOMs,
// scan reports) are not copied: nothing checks them at pull.
var signatureArtifactTypes = map[string]bool{
	"application/vnd.dev.sigstore.bundle.v0.3+json": true,
	"application/vnd.cncf.notary.signature":         true,
}

// maxSignatureBlob bounds each signature blob copied from an upstream; signatures are
// a few kilobytes, and the bound keeps a hostile upstream from filling the cache.
const maxSignatureBlob = 1 << 20

// FetchSignatures copies the signatures and attestations of a mirrored manifest from
// its upstream into the cache repository: OCI referrers (through the referrers API or,
// when the upstream has none, the sha256-<hex> tag schema) of the signature artifact
// types, and cosign's legacy sha256-<hex>.sig and .att tags, each with its blobs. A
// reference the upstream does not have is not an error; the first other failure is
// returned after everything else was tried.
func (m *Mirror) FetchSignatures(ctx context.Context, upstream, localRepo, digest string) error {
	u := m.byName[upstream]
	if u == nil {
		return fmt.Errorf("no upstream %s", upstream)
	}
	t := &Target{Upstream: u, LocalRepo: localRepo, Repo: strings.TrimPrefix(localRepo, upstream+"/")}
	var errs []error
	note := func(err error) {
		if err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	refs, err := m.upstreamReferrers(ctx, t, digest)
	note(err)
	for _, d := range refs {
		if !signatureArtifactTypes[d.ArtifactType] {
			continue
		}
		if _, err := m.reg.GetManifest(ctx, localRepo, registry.Reference{Digest: d.Digest}, false); err == nil {
			continue // immutable, and its blobs came with it
		}
		note(m.copyArtifact(ctx, t, registry.Reference{Digest: d.Digest}))
	}
	for _, suffix := range []string{".sig", ".att"} {
		// Not cached by digest: cosign adds layers to the same tag for each signature.
		note(m.copyArtifact(ctx, t, registry.Reference{Tag: strings.Replace(digest, ":", "-", 1) + suffix}))
	}
	return errors.Join(errs...)
}

// upstreamReferrers lists the referrers of digest on the upstream.
func (m *Mirror) upstreamReferrers(ctx context.Context, t *Target, digest string) ([]oci.Descriptor, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(t.Upstream.cfg.Timeout))
	defer cancel()
	resp, err := t.Upstream.do(ctx, http.MethodGet, t.Repo, "referrers/"+digest, http.Header{"Accept": {oci.MediaTypeOCIIndex}})
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, m.maxManifest))
		resp.Body.Close()
	}
	if err != nil {
		if !isNotFound(err) {
			return nil, err
		}
		// No referrers API (Distribution answers 404): the tag schema's index.
		idx, err := m.fetchManifest(ctx, t, registry.Reference{Tag: strings.Replace(digest, ":", "-", 1)})
		if err != nil {
			return nil, err
		}
		body = idx.Payload
	}
	var index struct {
		Manifests []oci.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(body, &index); err != nil {
		return nil, fmt.Errorf("upstream %s: referrers of %s: %w", t.Upstream.cfg.Name, digest, err)
	}
	return index.Manifests, nil
}

// copyArtifact stores a small artifact manifest from the upstream with its blobs.
func (m *Mirror) copyArtifact(ctx context.Context, t *Target, ref registry.Reference) error {
	man, err := m.fetchManifest(ctx, t, ref)
	if err != nil {
		return err
	}
	parsed, err := oci.ParseManifest(man.MediaType, man.Payload)
	if err != nil {
		return err
	}
	for _, d := range parsed.BlobReferences() {
		if _, err := m.reg.StatBlob(ctx, t.LocalRepo, d.Digest); err == nil {
			continue
		}
		if err := m.copySmallBlob(ctx, t, d); err != nil {
			return err
		}
	}
	return nil
}

func (m *Mirror) copySmallBlob(ctx context.Context, t *Target, d oci.Descriptor) error {
	if d.Size > maxSignatureBlob {
		return fmt.Errorf("upstream %s: signature blob %s of %d bytes exceeds %d", t.Upstream.cfg.Name, d.Digest, d.Size, maxSignatureBlob)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(t.Upstream.cfg.Timeout))
	defer cancel()
	resp, err := t.Upstream.do(ctx, http.MethodGet, t.Repo, "blobs/"+string(d.Digest), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSignatureBlob+1))
	if err != nil {
		return err
	}
	// PutBlob verifies the digest: a tampered blob is refused, not cached.
	_, err = m.reg.PutBlob(ctx, t.LocalRepo, d.Digest, registry.Chunk{Body: bytes.NewReader(data), Length: int64(len(data))})
	return err
}
