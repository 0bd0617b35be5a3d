package trust

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// cosign formats.
const (
	ArtifactTypeSigstoreBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
	mediaTypeSimpleSigning     = "application/vnd.dev.cosign.simplesigning.v1+json"
	mediaTypeDSSE              = "application/vnd.dsse.envelope.v1+json"
	annotationSignature        = "dev.cosignproject.cosign/signature"
	annotationCertificate      = "dev.sigstore.cosign/certificate"
	annotationPredicateType    = "predicateType"
	// predicateCosignSign is what cosign v3 puts in the statement of a plain image
	// signature stored as a bundle (a DSSE envelope, not an attestation).
	predicateCosignSign = "https://sigstore.dev/cosign/sign/v1"
	payloadTypeInToto   = "application/vnd.in-toto+json"
)

// verifyBundle checks a sigstore bundle against a requirement's cosign signers and
// returns the in-toto predicate type it carried ("" for a message signature).
func verifyBundle(req *requirement, raw []byte, target Target) (string, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return "", fmt.Errorf("not a sigstore bundle: %w", err)
	}
	alg, hexDigest, err := splitDigest(target.Digest)
	if err != nil {
		return "", err
	}
	artifact := verify.WithArtifactDigest(alg, hexDigest)
	var errs []string
	for _, k := range req.keys {
		material := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
			return root.NewExpiringKey(k.verifier, time.Time{}, time.Time{}), nil
		})
		opts := []verify.VerifierOption{verify.WithNoObserverTimestamps()}
		var tm root.TrustedMaterial = material
		if req.requireTlog {
			tm = root.TrustedMaterialCollection{req.root, material}
			opts = []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1)}
		}
		v, err := verify.NewVerifier(tm, opts...)
		if err != nil {
			return "", err
		}
		res, err := v.Verify(&b, verify.NewPolicy(artifact, verify.WithKey()))
		if err == nil {
			return predicateOf(res), nil
		}
		errs = append(errs, "key "+k.id+": "+err.Error())
	}
	if kl := req.keyless; kl != nil {
		v, err := verify.NewVerifier(kl.root, kl.opts...)
		if err != nil {
			return "", err
		}
		opts := make([]verify.PolicyOption, 0, len(kl.identities))
		for _, id := range kl.identities {
			opts = append(opts, verify.WithCertificateIdentity(id))
		}
		res, err := v.Verify(&b, verify.NewPolicy(artifact, opts...))
		if err == nil {
			return predicateOf(res), nil
		}
		errs = append(errs, "keyless: "+err.Error())
	}
	if len(errs) == 0 {
		return "", errors.New("the requirement names no cosign signer")
	}
	return "", errors.New(strings.Join(errs, "; "))
}

func predicateOf(res *verify.VerificationResult) string {
	if res.Statement == nil {
		return ""
	}
	return res.Statement.GetPredicateType()
}

// verifyLegacySignature checks a cosign simple-signing layer (sha256-<hex>.sig tag):
// signed by one of the requirement's keys, or keyless by one of its identities.
func verifyLegacySignature(req *requirement, s *found, target Target) error {
	sig, err := base64.StdEncoding.DecodeString(s.annotations[annotationSignature])
	if err != nil || len(sig) == 0 {
		return errors.New("no readable " + annotationSignature + " annotation")
	}
	var errs []string
	switch {
	case len(req.keys) == 0:
	case req.requireTlog:
		errs = append(errs, "transparency-log entries of legacy .sig signatures by keys are not verified; sign with cosign's bundle format")
	default:
		if err = verifyWithKeys(req, sig, s.payload); err == nil {
			return simpleSigningFor(s.payload, target)
		}
		errs = append(errs, err.Error())
	}
	if req.keyless != nil {
		if s.annotations[annotationCertificate] == "" {
			errs = append(errs, "keyless: no "+annotationCertificate+" annotation")
		} else if err := verifyLegacyKeyless(req.keyless, s, sig); err != nil {
			errs = append(errs, "keyless: "+err.Error())
		} else {
			return simpleSigningFor(s.payload, target)
		}
	}
	if len(errs) == 0 {
		return errors.New("the requirement names no cosign signer")
	}
	return errors.New(strings.Join(errs, "; "))
}

// simpleSigningFor checks that a verified simple-signing payload names target.
func simpleSigningFor(payload []byte, target Target) error {
	var p struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("signed payload is not simple signing JSON: %w", err)
	}
	if p.Critical.Image.Digest != target.Digest {
		return fmt.Errorf("signature is for %s, not %s", p.Critical.Image.Digest, target.Digest)
	}
	return nil
}

// verifyLegacyAttestation checks a DSSE envelope layer (sha256-<hex>.att tag) and
// returns the statement's predicate type.
func verifyLegacyAttestation(req *requirement, s *found, target Target) (string, error) {
	if req.requireTlog {
		return "", errors.New("transparency-log entries of legacy .att attestations are not verified; attest with cosign's bundle format")
	}
	if len(req.keys) == 0 {
		return "", errors.New("keyless attestations in the legacy .att format are not verified; attest with cosign's bundle format")
	}
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(s.payload, &env); err != nil {
		return "", fmt.Errorf("not a DSSE envelope: %w", err)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return "", errors.New("DSSE payload is not base64")
	}
	pae := dssePAE(env.PayloadType, payload)
	var errs []string
	for _, sg := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(sg.Sig)
		if err != nil {
			continue
		}
		if err := verifyWithKeys(req, sig, pae); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		errs = nil
		break
	}
	if errs != nil || len(env.Signatures) == 0 {
		return "", errors.New("no DSSE signature verifies: " + strings.Join(errs, "; "))
	}
	if env.PayloadType != payloadTypeInToto {
		return "", fmt.Errorf("payload type %s is not an in-toto statement", env.PayloadType)
	}
	var st struct {
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return "", fmt.Errorf("statement: %w", err)
	}
	want, _ := strings.CutPrefix(target.Digest, "sha256:")
	for _, sub := range st.Subject {
		if sub.Digest["sha256"] == want {
			return st.PredicateType, nil
		}
	}
	return "", fmt.Errorf("attestation subject is not %s", target.Digest)
}

func verifyWithKeys(req *requirement, sig, msg []byte) error {
	if len(req.keys) == 0 {
		return errors.New("the requirement names no cosign key")
	}
	var errs []string
	for _, k := range req.keys {
		if err := k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err == nil {
			return nil
		}
		errs = append(errs, "key "+k.id+": invalid signature")
	}
	return errors.New(strings.Join(errs, "; "))
}

// dssePAE is DSSE's pre-authentication encoding, what the signature covers.
func dssePAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

func splitDigest(d string) (string, []byte, error) {
	alg, h, ok := strings.Cut(d, ":")
	if !ok || (alg != "sha256" && alg != "sha512") {
		return "", nil, fmt.Errorf("digest %s is neither sha256 nor sha512", d)
	}
	b, err := hex.DecodeString(h)
	return alg, b, err
}
