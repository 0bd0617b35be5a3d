package config

// TrustPolicy is a signature policy: the same document in a mirror upstream's `trust:`
// block, in the admin API and in the database, so an operator writes one shape
// everywhere. It is checked by package trust (which loads keys and trusted roots).
type TrustPolicy struct {
	// Mode is off, warn (serve, but log, count and audit failures) or enforce (403).
	Mode string `yaml:"mode" json:"mode"`
	// Requirements must all be met; each is met by any one signature that verifies
	// against any of its signers.
	Requirements []TrustRequirement `yaml:"requirements" json:"requirements"`
}

// TrustRequirement names who must have signed (or attested) a manifest.
type TrustRequirement struct {
	// Name identifies the requirement in denials ("missing: release-key").
	Name string `yaml:"name" json:"name"`
	// CosignKeys are PEM public keys (ECDSA P-256/P-384, Ed25519, RSA), inline or as a
	// file path.
	CosignKeys []string `yaml:"cosignKeys" json:"cosignKeys,omitempty"`
	// Identities are keyless signers: certificates issued by a CA in TrustedRoot.
	Identities []TrustIdentity `yaml:"identities" json:"identities,omitempty"`
	// TrustedRoot is the path of a sigstore trusted_root.json (Fulcio CAs, Rekor and CT
	// logs, timestamp authorities); required with Identities. Read once, offline.
	TrustedRoot string `yaml:"trustedRoot" json:"trustedRoot,omitempty"`
	// RequireTlog demands a verified transparency-log entry (Rekor) in the signature.
	RequireTlog bool `yaml:"requireTlog" json:"requireTlog,omitempty"`
	// RequireTimestamp demands a verified timestamp (RFC 3161 or the log's integrated
	// time); without one a keyless certificate is checked at the current time.
	RequireTimestamp bool `yaml:"requireTimestamp" json:"requireTimestamp,omitempty"`
	// RequireSCT demands the Fulcio certificate's embedded certificate-transparency proof.
	RequireSCT bool `yaml:"requireSCT" json:"requireSCT,omitempty"`
	// NotationCertificates are trust-store CA certificates (PEM, inline or a file path)
	// for notation signatures.
	NotationCertificates []string `yaml:"notationCertificates" json:"notationCertificates,omitempty"`
	// NotationIdentities are notation trusted identities ("x509.subject: CN=…", or "*").
	NotationIdentities []string `yaml:"notationIdentities" json:"notationIdentities,omitempty"`
	// PredicateType, when set, asks for a signed attestation (cosign attest) of this
	// in-toto predicate type instead of a plain signature.
	PredicateType string `yaml:"predicateType" json:"predicateType,omitempty"`
}

// TrustIdentity is a keyless signer: the OIDC issuer and the certificate subject (SAN),
// each exact or as a regular expression matched against the whole value.
type TrustIdentity struct {
	Issuer       string `yaml:"issuer" json:"issuer,omitempty"`
	IssuerRegex  string `yaml:"issuerRegex" json:"issuerRegex,omitempty"`
	Subject      string `yaml:"subject" json:"subject,omitempty"`
	SubjectRegex string `yaml:"subjectRegex" json:"subjectRegex,omitempty"`
}
