package trust

import (
	"context"
	"crypto/x509"
	"fmt"

	notation "github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Notation signature media types.
const (
	ArtifactTypeNotation = "application/vnd.cncf.notary.signature"
	mediaTypeJWS         = "application/jose+json"
	mediaTypeCOSE        = "application/cose"
)

const notationStore = "berth"

// memoryTrustStore is a notation trust store held in memory: the requirement's CA
// certificates, so nothing is read from a notation config directory at pull time.
type memoryTrustStore []*x509.Certificate

func (m memoryTrustStore) GetCertificates(_ context.Context, t truststore.Type, name string) ([]*x509.Certificate, error) {
	if t != truststore.TypeCA || name != notationStore {
		return nil, fmt.Errorf("no trust store %s:%s", t, name)
	}
	return m, nil
}

// newNotationVerifier builds notation's own verifier with a one-policy trust policy
// document. Verification is notation's "strict" level (integrity, authenticity,
// expiry, trusted identity) with revocation skipped: Berth verifies offline, and
// revocation checking would fetch OCSP/CRL endpoints named in certificates.
func newNotationVerifier(name string, certs []*x509.Certificate, identities []string) (notation.Verifier, error) {
	if len(identities) == 0 {
		identities = []string{"*"}
	}
	doc := &trustpolicy.Document{
		Version: "1.0",
		TrustPolicies: []trustpolicy.TrustPolicy{{
			Name:           name,
			RegistryScopes: []string{"*"},
			SignatureVerification: trustpolicy.SignatureVerification{
				VerificationLevel: trustpolicy.LevelStrict.Name,
				Override:          map[trustpolicy.ValidationType]trustpolicy.ValidationAction{trustpolicy.TypeRevocation: trustpolicy.ActionSkip},
			},
			TrustStores:       []string{string(truststore.TypeCA) + ":" + notationStore},
			TrustedIdentities: identities,
		}},
	}
	return verifier.New(doc, memoryTrustStore(certs), nil)
}

// verifyNotation checks one notation envelope against the target manifest's descriptor.
func verifyNotation(ctx context.Context, v notation.Verifier, repo string, target Target, envelopeType string, envelope []byte) error {
	desc := ocispec.Descriptor{MediaType: target.MediaType, Digest: digest.Digest(target.Digest), Size: target.Size}
	_, err := v.Verify(ctx, desc, envelope, notation.VerifierVerifyOptions{
		ArtifactReference:  "berth.local/" + repo + "@" + target.Digest,
		SignatureMediaType: envelopeType,
	})
	return err
}
