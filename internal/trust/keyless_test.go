package trust

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
	"github.com/berth-registry/berth/internal/oci"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	klIssuer  = "https://issuer.example.com"
	klSubject = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
)

// TestTrustKeyless: keyless (certificate identity) signatures under a private CA, the
// way cosign v3 makes them (a DSSE in-toto statement about the manifest digest in a
// sigstore bundle referrer), checked through the evaluator against a trusted_root.json
// file. The CA, Rekor log and timestamp authority are sigstore-go's test Sigstore
// (pkg/testing/ca), because cosign cannot sign keyless offline.
func TestTrustKeyless(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	// The test Sigstore names its Rekor log by the hex text of its ID; a
	// trusted_root.json holds the raw ID, which entries name.
	rekor := vs.RekorLogs()
	for _, l := range rekor {
		if l.ID, err = hex.DecodeString(string(l.ID)); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), vs.CTLogs(), vs.TimestampingAuthorities(), rekor)
	if err != nil {
		t.Fatal(err)
	}
	rootJSON, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	rootPath := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(rootPath, rootJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	other, err := ca.NewVirtualSigstore() // another CA: its certificates are not trusted
	if err != nil {
		t.Fatal(err)
	}
	exact := config.TrustIdentity{Issuer: klIssuer, Subject: klSubject}
	cases := []struct {
		name     string
		id       config.TrustIdentity
		signer   *ca.VirtualSigstore
		subject  string // identity in the certificate
		statedOf string // "other" signs a statement about another digest
		tlog     bool
		legacy   bool   // cosign's legacy .sig format (certificate and Rekor bundle annotations)
		forged   bool   // the legacy Rekor promise is signed by another log
		denied   string // substring of the denial (policy, requirement or reason); "" means served
	}{
		{name: "exact identity", id: exact, signer: vs, subject: klSubject, tlog: true},
		{name: "anchored regex", id: config.TrustIdentity{IssuerRegex: `https://issuer\.example\.com`, SubjectRegex: `https://github\.com/acme/.*@refs/heads/main`}, signer: vs, subject: klSubject},
		{name: "regex matches only the whole subject", id: config.TrustIdentity{Issuer: klIssuer, SubjectRegex: `https://github\.com/acme/app`}, signer: vs, subject: klSubject, denied: "expected SAN value to match regex"},
		{name: "wrong subject", id: exact, signer: vs, subject: "https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main", denied: `expected SAN value "`},
		{name: "wrong issuer", id: config.TrustIdentity{Issuer: "https://accounts.google.com", Subject: klSubject}, signer: vs, subject: klSubject, denied: "no matching CertificateIdentity"},
		{name: "untrusted CA", id: exact, signer: other, subject: klSubject, tlog: true, denied: "missing keyless"},
		{name: "statement about another digest", id: exact, signer: vs, subject: klSubject, statedOf: "other", denied: "does not match any digest"},
		{name: "legacy .sig, exact identity, tlog and timestamp", id: exact, signer: vs, subject: klSubject, tlog: true, legacy: true},
		{name: "legacy .sig, anchored regex", id: config.TrustIdentity{Issuer: klIssuer, SubjectRegex: `https://github\.com/acme/.*`}, signer: vs, subject: klSubject, legacy: true},
		{name: "legacy .sig, wrong subject", id: exact, signer: vs, subject: "https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main", tlog: true, legacy: true, denied: `expected SAN value "`},
		{name: "legacy .sig, untrusted CA", id: exact, signer: other, subject: klSubject, tlog: true, legacy: true, denied: "missing keyless"},
		{name: "legacy .sig, promise from another log", id: exact, signer: vs, subject: klSubject, tlog: true, legacy: true, forged: true, denied: "not enough verified log entries"},
		{name: "legacy .sig for another digest", id: exact, signer: vs, subject: klSubject, statedOf: "other", tlog: true, legacy: true, denied: "signature is for "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, metatest.Backends(t)[0].Open(t))
			req := config.TrustRequirement{Name: "keyless", Identities: []config.TrustIdentity{tc.id}, TrustedRoot: rootPath,
				RequireTlog: tc.tlog, RequireTimestamp: tc.tlog}
			if _, err := e.store.Put(ctx, Policy{Name: "release", ScopeKind: ScopeProject, Scope: "p",
				Spec: config.TrustPolicy{Mode: ModeEnforce, Requirements: []config.TrustRequirement{req}}}); err != nil {
				t.Fatal(err)
			}
			img := e.image("p/app", "v1", "app")
			stated := img.Digest
			if tc.statedOf != "" {
				stated = e.image("p/app", "other", tc.statedOf).Digest
			}
			if tc.legacy {
				log := tc.signer
				if tc.forged {
					log = other
				}
				e.keylessLegacySig("p/app", img.Digest, tc.signer, log, tc.subject, stated)
			} else {
				e.bundleReferrer("p/app", img, keylessBundle(t, tc.signer, tc.subject, stated))
			}
			ev, err := NewEvaluator(ctx, e.store, e.reg, Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			err = ev.Check(ctx, "p/app", "", meta.Manifest{Digest: img.Digest, MediaType: img.MediaType, Size: img.Size}, nil)
			switch {
			case tc.denied == "" && err != nil:
				t.Fatalf("denied: %v", err)
			case tc.denied != "" && (!errors.Is(err, errcode.Denied) || !strings.Contains(err.Error(), tc.denied)):
				t.Fatalf("got %v, want DENIED containing %q", err, tc.denied)
			}
		})
	}
}

// keylessBundle signs, as cosign v3 sign does, an in-toto statement of predicate type
// cosign/sign/v1 about digest with a certificate for subject from s, and returns the
// sigstore bundle (v0.3: certificate, Rekor entry with inclusion proof, RFC 3161 time).
func keylessBundle(t *testing.T, s *ca.VirtualSigstore, subject, digest string) []byte {
	t.Helper()
	statement, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []map[string]any{{"name": "registry.example/p/app", "digest": map[string]string{"sha256": strings.TrimPrefix(digest, "sha256:")}}},
		"predicateType": predicateCosignSign,
		"predicate":     map[string]any{},
	})
	ent, err := s.AttestAtTime(subject, klIssuer, statement, time.Now().Add(5*time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	vc, _ := ent.VerificationContent()
	sc, _ := ent.SignatureContent()
	tlogs, _ := ent.TlogEntries()
	stamps, _ := ent.Timestamps()
	env := sc.(*bundle.Envelope).Envelope
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	// The test Sigstore's entry carries no kind and version; a bundle must.
	tle := tlogs[0].TransparencyLogEntry()
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
			TlogEntries:               []*protorekor.TransparencyLogEntry{tle},
			TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: stamps[0]}}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{Payload: payload, PayloadType: env.PayloadType,
			Signatures: []*protodsse.Signature{{Sig: sig}}}},
	}
	raw, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// bundleReferrer stores a sigstore bundle as cosign v3 does: an OCI 1.1 referrer of
// target whose one layer is the bundle.
func (e *env) bundleReferrer(repo string, target meta.Manifest, raw []byte) {
	e.t.Helper()
	layer := e.blob(repo, raw)
	empty := e.blob(repo, []byte("{}"))
	e.manifest(repo, "", desc{"schemaVersion": 2, "mediaType": oci.MediaTypeOCIManifest, "artifactType": ArtifactTypeSigstoreBundle,
		"config":  desc{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.Digest, "size": empty.Size},
		"layers":  []desc{{"mediaType": ArtifactTypeSigstoreBundle, "digest": layer.Digest, "size": layer.Size}},
		"subject": desc{"mediaType": target.MediaType, "digest": target.Digest, "size": target.Size}})
}

// keylessLegacySig pushes target's sha256-<hex>.sig as cosign v2 keyless signing does
// (and registry.k8s.io publishes): a simple-signing payload about digest signed with a
// Fulcio certificate for subject from s, and the Rekor hashedrekord entry's promise
// signed by log.
func (e *env) keylessLegacySig(repo, target string, s, log *ca.VirtualSigstore, subject, digest string) {
	t := e.t
	t.Helper()
	leaf, priv, err := s.GenerateLeafCert(subject, klIssuer)
	if err != nil {
		t.Fatal(err)
	}
	payload := simpleSigning(digest)
	h := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, priv.(*ecdsa.PrivateKey), h[:])
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	body, _ := json.Marshal(desc{"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": desc{
		"data":      desc{"hash": desc{"algorithm": "sha256", "value": hex.EncodeToString(h[:])}},
		"signature": desc{"content": sig, "publicKey": desc{"content": certPEM}}}})
	logID, err := s.RekorLogID() // the entry names s's log; log signs the promise
	if err != nil {
		t.Fatal(err)
	}
	promise := tlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: time.Now().Add(time.Minute).Unix(), LogIndex: 7, LogID: logID}
	set, err := log.RekorSignPayload(promise)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := json.Marshal(desc{"SignedEntryTimestamp": set, "Payload": promise})
	l := e.blob(repo, payload)
	cfg := e.blob(repo, []byte(`{}`))
	e.manifest(repo, LegacyTag(target, "sig"), desc{"schemaVersion": 2, "mediaType": oci.MediaTypeOCIManifest,
		"config": desc{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg.Digest, "size": cfg.Size},
		"layers": []desc{{"mediaType": mediaTypeSimpleSigning, "digest": l.Digest, "size": l.Size, "annotations": map[string]string{
			annotationSignature:   base64.StdEncoding.EncodeToString(sig),
			annotationCertificate: string(certPEM),
			annotationRekorBundle: string(rb)}}}})
}
