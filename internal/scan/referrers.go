package scan

import (
	"context"
	"errors"
	"strings"

	"github.com/berth-registry/berth/internal/meta"
)

// Media and artifact type of SBOMs kept as referrers.
const (
	SBOMArtifactType = "application/vnd.cyclonedx+json"
	// GeneratorAnnotation marks the SBOM referrers Berth made itself (value: the
	// engine), so that a pushed SBOM is never confused with one of Berth's.
	GeneratorAnnotation = "io.berth.sbom.generator"
)

// Referrers reads and writes SBOMs kept as OCI referrers of the images they describe.
type Referrers interface {
	// PushedSBOM returns the newest CycloneDX SBOM a client attached to repo@digest
	// (not one of Berth's), nil when there is none.
	PushedSBOM(ctx context.Context, repo, digest string) ([]byte, error)
	// AttachSBOM stores sbom as a referrer of repo@digest (subject media type and size
	// as given), removes the SBOM referrers Berth attached before, and returns the
	// referrer's manifest digest.
	AttachSBOM(ctx context.Context, repo, digest, mediaType string, size int64, sbom []byte, generator string) (string, error)
	// AttachSignature stores a cosign simple-signing signature of repo@digest (its
	// sha256-<hex>.sig tag).
	AttachSignature(ctx context.Context, repo, digest string, payload []byte, signature string) error
}

// attachSBOM stores an SBOM as the image's referrer and signs it with Berth's SBOM key,
// so that clients can check it came from Berth (cosign verify --key, or a trust policy).
func (s *Service) attachSBOM(ctx context.Context, repo string, m meta.Manifest, sbom []byte, generator string) error {
	ref, err := s.opts.Referrers.AttachSBOM(ctx, repo, m.Digest, m.MediaType, m.Size, sbom, generator)
	if err != nil {
		return err
	}
	key, err := s.store.SBOMKey(ctx)
	if err != nil {
		return err
	}
	payload, sig, err := SimpleSigning(key, s.opts.Registry+"/"+repo, ref)
	if err != nil {
		return err
	}
	return s.opts.Referrers.AttachSignature(ctx, repo, ref, payload, sig)
}

// SBOMPublicKey is the public key Berth's SBOM referrers verify with (PEM).
func (s *Service) SBOMPublicKey(ctx context.Context) (string, error) {
	key, err := s.store.SBOMKey(ctx)
	if err != nil {
		return "", err
	}
	return PublicKeyPEM(key)
}

// projectPolicy is the policy of repo's project; the zero policy when it has none.
func (s *Service) projectPolicy(ctx context.Context, repo string) (Policy, error) {
	project, _, _ := strings.Cut(repo, "/")
	p, err := s.store.Policy(ctx, project)
	if errors.Is(err, ErrNotFound) {
		return Policy{}, nil
	}
	return p, err
}
