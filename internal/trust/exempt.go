package trust

import (
	"regexp"
	"strings"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
)

// exemptTypes are artifacts that describe another manifest rather than run anywhere:
// requiring a signature on a signature would make every signature unreadable.
var exemptTypes = map[string]bool{
	ArtifactTypeSigstoreBundle:                         true,
	ArtifactTypeNotation:                               true,
	mediaTypeSimpleSigning:                             true,
	mediaTypeDSSE:                                      true,
	"application/vnd.dev.cosign.artifact.sig.v1+json":  true,
	"application/vnd.dev.cosign.artifact.sbom.v1+json": true,
	"application/vnd.in-toto+json":                     true,
	"application/spdx+json":                            true,
	"application/vnd.cyclonedx+json":                   true,
	"application/vnd.syft+json":                        true,
}

// legacyArtifactTag matches cosign's tag schema: signatures, attestations, SBOMs and
// the OCI referrers tag schema's sha256-<hex> index.
var legacyArtifactTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}(\.(sig|att|sbom))?$`)

// exempt tells why m needs no signature, or "".
func exempt(m meta.Manifest) string {
	if m.Subject != "" {
		return "refers to " + m.Subject + " (a referrer: signature, attestation, SBOM or other artifact)"
	}
	if exemptTypes[m.ArtifactType] {
		return "artifact type " + m.ArtifactType
	}
	parsed, err := oci.ParseManifest(m.MediaType, m.Payload)
	if err != nil {
		return ""
	}
	if parsed.IsIndex() {
		// The referrers tag schema's index lists only artifacts with a subject.
		if len(parsed.Manifests) > 0 {
			all := true
			for _, d := range parsed.Manifests {
				all = all && exemptTypes[d.ArtifactType]
			}
			if all {
				return "an index of signatures and attestations (referrers tag schema)"
			}
		}
		return ""
	}
	if len(parsed.Layers) == 0 {
		return ""
	}
	for _, l := range parsed.Layers {
		if !exemptTypes[l.MediaType] && !strings.HasPrefix(l.MediaType, "application/vnd.dev.cosign.") {
			return ""
		}
	}
	return "layers are signatures, attestations or SBOMs (" + parsed.Layers[0].MediaType + ")"
}

// ExemptTag tells whether a tag names a cosign signature, attestation or SBOM, or a
// referrers tag-schema index: storing one means a signature may have arrived.
func ExemptTag(tag string) bool { return legacyArtifactTag.MatchString(tag) }
