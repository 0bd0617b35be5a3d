// Package trust evaluates signature policies at pull: which signers (cosign keys,
// keyless certificate identities under a trusted root, notation trust stores) must have
// signed or attested a manifest before Berth serves it. Signatures are found through the
// registry's own referrers and cosign's legacy sha256-<hex>.sig/.att tags; verdicts are
// cached per (manifest, generation), where the generation moves on every policy change
// and every signature that arrives, on every replica.
package trust

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/berth-registry/berth/internal/config"
	notation "github.com/notaryproject/notation-go"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Modes.
const (
	ModeOff     = "off"
	ModeWarn    = "warn"
	ModeEnforce = "enforce"
)

var policyName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// compiled is a policy ready to check: keys parsed, roots loaded, verifiers built.
type compiled struct {
	name     string
	mode     string
	revision int64
	reqs     []*requirement
	spec     config.TrustPolicy
}

type requirement struct {
	name          string
	predicateType string
	keys          []key
	keyless       *keyless
	notation      notation.Verifier
	requireTlog   bool
	root          *root.TrustedRoot // for keys with requireTlog
}

type key struct {
	id       string // short fingerprint for messages
	verifier signature.Verifier
}

type keyless struct {
	root       *root.TrustedRoot
	identities verify.CertificateIdentities
	opts       []verify.VerifierOption
}

// Validate checks a policy document without keeping the result.
func Validate(name string, spec config.TrustPolicy) error {
	_, err := compile(name, 0, spec)
	return err
}

func compile(name string, revision int64, spec config.TrustPolicy) (*compiled, error) {
	if !policyName.MatchString(name) {
		return nil, fmt.Errorf("policy name %q: want lower-case letters, digits, '.', '_' or '-'", name)
	}
	c := &compiled{name: name, mode: spec.Mode, revision: revision, spec: spec}
	switch spec.Mode {
	case ModeOff, ModeWarn, ModeEnforce:
	case "":
		c.mode = ModeEnforce
	default:
		return nil, fmt.Errorf("policy %s: mode %q: want off, warn or enforce", name, spec.Mode)
	}
	if len(spec.Requirements) == 0 && c.mode != ModeOff {
		return nil, fmt.Errorf("policy %s: no requirements (a policy needs at least one signer)", name)
	}
	seen := map[string]bool{}
	for i, r := range spec.Requirements {
		if r.Name == "" {
			r.Name = fmt.Sprintf("requirement-%d", i+1)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("policy %s: requirement %q appears twice", name, r.Name)
		}
		seen[r.Name] = true
		req, err := compileRequirement(r)
		if err != nil {
			return nil, fmt.Errorf("policy %s, requirement %s: %w", name, r.Name, err)
		}
		c.reqs = append(c.reqs, req)
	}
	return c, nil
}

func compileRequirement(r config.TrustRequirement) (*requirement, error) {
	req := &requirement{name: r.Name, predicateType: r.PredicateType, requireTlog: r.RequireTlog}
	if len(r.CosignKeys) == 0 && len(r.Identities) == 0 && len(r.NotationCertificates) == 0 {
		return nil, errors.New("names no signer: give cosignKeys, identities (with trustedRoot) or notationCertificates")
	}
	if r.PredicateType != "" && len(r.NotationCertificates) > 0 {
		return nil, errors.New("predicateType applies to cosign attestations; notation signs no attestations")
	}
	var err error
	if r.TrustedRoot != "" {
		if req.root, err = root.NewTrustedRootFromPath(r.TrustedRoot); err != nil {
			return nil, fmt.Errorf("trustedRoot %s: %w", r.TrustedRoot, err)
		}
	}
	for i, k := range r.CosignKeys {
		pemBytes, err := inlineOrFile(k)
		if err != nil {
			return nil, fmt.Errorf("cosignKeys[%d]: %w", i, err)
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("cosignKeys[%d]: %w", i, err)
		}
		v, err := signature.LoadDefaultVerifier(pub)
		if err != nil {
			return nil, fmt.Errorf("cosignKeys[%d]: %w", i, err)
		}
		// The key's label in verdicts: SHA-256 of its PKIX form (not cryptoutils.SKID,
		// whose SHA-1 panics under GODEBUG=fips140=only).
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, fmt.Errorf("cosignKeys[%d]: %w", i, err)
		}
		id := sha256.Sum256(der)
		req.keys = append(req.keys, key{id: fmt.Sprintf("%x", id[:8]), verifier: v})
	}
	if r.RequireTlog && len(r.CosignKeys) > 0 && req.root == nil {
		return nil, errors.New("requireTlog with cosignKeys needs trustedRoot (the Rekor keys to check log entries with)")
	}
	if len(r.Identities) > 0 {
		if req.root == nil {
			return nil, errors.New("identities need trustedRoot (a sigstore trusted_root.json file)")
		}
		kl := &keyless{root: req.root}
		for i, id := range r.Identities {
			ci, err := identity(id)
			if err != nil {
				return nil, fmt.Errorf("identities[%d]: %w", i, err)
			}
			kl.identities = append(kl.identities, ci)
		}
		if r.RequireTlog {
			kl.opts = append(kl.opts, verify.WithTransparencyLog(1))
		}
		if r.RequireSCT {
			kl.opts = append(kl.opts, verify.WithSignedCertificateTimestamps(1))
		}
		if r.RequireTimestamp {
			kl.opts = append(kl.opts, verify.WithObserverTimestamps(1))
		} else {
			kl.opts = append(kl.opts, verify.WithCurrentTime())
		}
		req.keyless = kl
	}
	if len(r.NotationCertificates) > 0 {
		var certs []*x509.Certificate
		for i, c := range r.NotationCertificates {
			b, err := inlineOrFile(c)
			if err != nil {
				return nil, fmt.Errorf("notationCertificates[%d]: %w", i, err)
			}
			parsed, err := parseCerts(b)
			if err != nil {
				return nil, fmt.Errorf("notationCertificates[%d]: %w", i, err)
			}
			certs = append(certs, parsed...)
		}
		if req.notation, err = newNotationVerifier(r.Name, certs, r.NotationIdentities); err != nil {
			return nil, fmt.Errorf("notation: %w", err)
		}
	}
	return req, nil
}

// identity builds a certificate identity; regular expressions match the whole value.
func identity(id config.TrustIdentity) (verify.CertificateIdentity, error) {
	if (id.Issuer == "") == (id.IssuerRegex == "") {
		return verify.CertificateIdentity{}, errors.New("give exactly one of issuer and issuerRegex")
	}
	if (id.Subject == "") == (id.SubjectRegex == "") {
		return verify.CertificateIdentity{}, errors.New("give exactly one of subject and subjectRegex")
	}
	return verify.NewShortCertificateIdentity(id.Issuer, anchor(id.IssuerRegex), id.Subject, anchor(id.SubjectRegex))
}

func anchor(re string) string {
	if re == "" {
		return ""
	}
	return `^(?:` + re + `)$`
}

// inlineOrFile reads a PEM value given inline or as a file path.
func inlineOrFile(v string) ([]byte, error) {
	if strings.Contains(v, "-----BEGIN ") {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("not inline PEM and not a readable file: %w", err)
	}
	return b, nil
}

func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}
