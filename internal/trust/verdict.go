package trust

import (
	"context"
	"fmt"
	"strings"
)

// Verdict is the outcome of checking one manifest against one policy.
type Verdict struct {
	Passed   bool   `json:"passed"`
	Policy   string `json:"policy"`
	Mode     string `json:"mode"`
	Revision int64  `json:"revision"`
	Digest   string `json:"digest"`
	// Exempt says why no signature was needed (signatures, attestations and SBOMs
	// themselves are not signed by anyone).
	Exempt string `json:"exempt,omitempty"`
	// Via is the signed index that let this child manifest pass.
	Via string `json:"via,omitempty"`
	// Missing names the requirements no signature met.
	Missing    []string          `json:"missing,omitempty"`
	Signatures []SignatureResult `json:"signatures"`
}

// SignatureResult is one signature checked against one requirement.
type SignatureResult struct {
	Kind          string `json:"kind"`
	Ref           string `json:"ref"`
	Requirement   string `json:"requirement"`
	PredicateType string `json:"predicateType,omitempty"`
	Verified      bool   `json:"verified"`
	Reason        string `json:"reason,omitempty"`
}

// Message is the denial text: the policy and what was missing.
func (v Verdict) Message() string {
	var b strings.Builder
	fmt.Fprintf(&b, "signature policy %q (%s) refuses %s: missing %s", v.Policy, v.Mode, v.Digest, strings.Join(v.Missing, ", "))
	if len(v.Signatures) == 0 {
		b.WriteString("; no signature was found")
		return b.String()
	}
	seen := map[string]bool{}
	var reasons []string
	for _, s := range v.Signatures {
		if r := s.Kind + " " + s.Ref + ": " + s.Reason; !s.Verified && !seen[r] && len(reasons) < 3 {
			seen[r] = true
			reasons = append(reasons, r)
		}
	}
	fmt.Fprintf(&b, "; %d signature(s) checked", len(v.Signatures))
	if len(reasons) > 0 {
		b.WriteString(" (" + strings.Join(reasons, "; ") + ")")
	}
	return b.String()
}

// evaluate checks target's own signatures against the policy.
func (p *compiled) evaluate(ctx context.Context, c Content, t Target) (Verdict, error) {
	v := Verdict{Policy: p.name, Mode: p.mode, Revision: p.revision, Digest: t.Digest, Signatures: []SignatureResult{}}
	sigs, err := discover(ctx, c, t)
	if err != nil {
		return v, err
	}
	for _, req := range p.reqs {
		met := false
		for _, s := range sigs {
			r := SignatureResult{Kind: s.kind, Ref: s.ref, Requirement: req.name, PredicateType: s.predicateType}
			if e := s.annotations["error"]; e != "" && s.payload == nil {
				r.Reason = e
			} else if pt, err := req.check(ctx, s, t); err != nil {
				r.Reason = err.Error()
			} else {
				r.PredicateType = pt
				r.Verified = true
				met = true
			}
			v.Signatures = append(v.Signatures, r)
		}
		if !met {
			v.Missing = append(v.Missing, req.name)
		}
	}
	v.Passed = len(v.Missing) == 0
	return v, nil
}

// check verifies one signature against the requirement and returns the predicate
// type it attests ("" for a plain signature).
func (req *requirement) check(ctx context.Context, s *found, t Target) (string, error) {
	wantAttestation := req.predicateType != ""
	switch s.kind {
	case KindNotation:
		if wantAttestation {
			return "", fmt.Errorf("requirement wants an attestation of %s, not a signature", req.predicateType)
		}
		if req.notation == nil {
			return "", fmt.Errorf("requirement names no notation trust store")
		}
		if s.mediaType != mediaTypeJWS && s.mediaType != mediaTypeCOSE {
			return "", fmt.Errorf("envelope media type %s is neither JWS nor COSE", s.mediaType)
		}
		return "", verifyNotation(ctx, req.notation, t.Repo, t, s.mediaType, s.payload)
	case KindLegacySignature:
		if wantAttestation {
			return "", fmt.Errorf("requirement wants an attestation of %s, not a signature", req.predicateType)
		}
		return "", verifyLegacySignature(req, s, t)
	case KindLegacyAttestation, KindBundle:
		if len(req.keys) == 0 && req.keyless == nil {
			return "", fmt.Errorf("requirement names no cosign signer")
		}
		var pt string
		var err error
		if s.kind == KindBundle {
			pt, err = verifyBundle(req, s.payload, t)
		} else {
			pt, err = verifyLegacyAttestation(req, s, t)
		}
		if err != nil {
			return "", err
		}
		isSignature := pt == "" || pt == predicateCosignSign
		switch {
		case wantAttestation && pt != req.predicateType:
			return pt, fmt.Errorf("verified, but attests %s, not %s", orSignature(pt), req.predicateType)
		case !wantAttestation && !isSignature:
			return pt, fmt.Errorf("verified, but is an attestation of %s, not a signature", pt)
		case isSignature:
			return "", nil // a plain signature attests nothing
		}
		return pt, nil
	}
	return "", fmt.Errorf("unknown signature kind %s", s.kind)
}

func orSignature(pt string) string {
	if pt == "" || pt == predicateCosignSign {
		return "a plain signature"
	}
	return pt
}
