package scan

import (
	"context"
	"errors"
	"strings"
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
	// as given) and removes the SBOM referrers Berth attached before.
	AttachSBOM(ctx context.Context, repo, digest, mediaType string, size int64, sbom []byte, generator string) error
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
