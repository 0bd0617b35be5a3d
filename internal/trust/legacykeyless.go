package trust

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// Annotations of a keyless signature in cosign's legacy .sig format (what
// registry.k8s.io publishes): the Fulcio certificate and the Rekor entry's promise.
const (
	annotationRekorBundle = "dev.sigstore.cosign/bundle"
	mediaTypeBundleV01    = "application/vnd.dev.sigstore.bundle+json;version=0.1"
)

// rekorBundle is cosign's dev.sigstore.cosign/bundle annotation: the signed entry
// timestamp and what it signs.
type rekorBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"` // base64 of the canonicalized entry
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"` // hex
	} `json:"Payload"`
}

// verifyLegacyKeyless checks a keyless .sig layer by turning it into the sigstore bundle
// (v0.1: certificate, message signature, Rekor entry with its inclusion promise) that
// cosign itself would verify, so identities, the trusted root and the tlog and
// timestamp requirements apply exactly as for cosign v3 bundles. The signed payload's
// digest claim is checked by the caller.
func verifyLegacyKeyless(kl *keyless, s *found, sig []byte) error {
	blk, _ := pem.Decode([]byte(s.annotations[annotationCertificate]))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return errors.New("the " + annotationCertificate + " annotation holds no PEM certificate")
	}
	digest := sha256.Sum256(s.payload)
	doc := map[string]any{
		"mediaType": mediaTypeBundleV01,
		"verificationMaterial": map[string]any{
			"x509CertificateChain": map[string]any{"certificates": []any{map[string]any{"rawBytes": blk.Bytes}}},
		},
		"messageSignature": map[string]any{
			"messageDigest": map[string]any{"algorithm": "SHA2_256", "digest": digest[:]},
			"signature":     sig,
		},
	}
	if raw := s.annotations[annotationRekorBundle]; raw != "" {
		tle, err := legacyTlogEntry(raw)
		if err != nil {
			return err
		}
		doc["verificationMaterial"].(map[string]any)["tlogEntries"] = []any{tle}
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return fmt.Errorf("legacy keyless signature: %w", err)
	}
	v, err := verify.NewVerifier(kl.root, kl.opts...)
	if err != nil {
		return err
	}
	opts := make([]verify.PolicyOption, 0, len(kl.identities))
	for _, id := range kl.identities {
		opts = append(opts, verify.WithCertificateIdentity(id))
	}
	_, err = v.Verify(&b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(s.payload)), opts...))
	return err
}

// legacyTlogEntry is the bundle's transparency-log entry for cosign's Rekor annotation.
func legacyTlogEntry(annotation string) (map[string]any, error) {
	var rb rekorBundle
	if err := json.Unmarshal([]byte(annotation), &rb); err != nil {
		return nil, fmt.Errorf("%s annotation: %w", annotationRekorBundle, err)
	}
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil {
		return nil, fmt.Errorf("%s annotation: body is not base64", annotationRekorBundle)
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil {
		return nil, fmt.Errorf("%s annotation: logID is not hex", annotationRekorBundle)
	}
	var kind struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kind); err != nil {
		return nil, fmt.Errorf("%s annotation: entry body: %w", annotationRekorBundle, err)
	}
	return map[string]any{
		"logIndex":          fmt.Sprint(rb.Payload.LogIndex),
		"logId":             map[string]any{"keyId": logID},
		"kindVersion":       map[string]any{"kind": kind.Kind, "version": kind.APIVersion},
		"integratedTime":    fmt.Sprint(rb.Payload.IntegratedTime),
		"inclusionPromise":  map[string]any{"signedEntryTimestamp": rb.SignedEntryTimestamp},
		"canonicalizedBody": body,
	}, nil
}
