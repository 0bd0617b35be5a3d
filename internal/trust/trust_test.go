package trust

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

// env is a real registry (SQLite + filesystem) with a trust store over the same database.
type env struct {
	t     *testing.T
	reg   *registry.Registry
	store *Store
	meta  *meta.Store
}

func newEnv(t *testing.T, ms *meta.Store) *env {
	t.Helper()
	drv, err := blobstore.NewFilesystem(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(ms, drv, registry.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return &env{t: t, reg: reg, store: NewStore(ms.DB()), meta: ms}
}

func (e *env) blob(repo string, data []byte) oci.Descriptor {
	e.t.Helper()
	d := oci.Digest(fmt.Sprintf("sha256:%x", sha256.Sum256(data)))
	if _, err := e.reg.PutBlob(context.Background(), repo, d, registry.Chunk{Body: bytes.NewReader(data), Length: int64(len(data))}); err != nil {
		e.t.Fatalf("put blob: %v", err)
	}
	return oci.Descriptor{Digest: d, Size: int64(len(data))}
}

func (e *env) manifest(repo, tag string, v any) meta.Manifest {
	e.t.Helper()
	payload, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	mt := oci.MediaTypeOCIManifest
	if strings.Contains(string(payload), `"manifests"`) {
		mt = oci.MediaTypeOCIIndex
	}
	ref := registry.Reference{Tag: tag}
	if tag == "" {
		ref = registry.Reference{Digest: oci.Digest(fmt.Sprintf("sha256:%x", sha256.Sum256(payload)))}
	}
	res, err := e.reg.PutManifest(context.Background(), repo, ref, mt, payload, nil)
	if err != nil {
		e.t.Fatalf("put manifest: %v", err)
	}
	m, err := e.reg.GetManifest(context.Background(), repo, registry.Reference{Digest: res.Digest}, true)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

type desc = map[string]any

// image pushes a one-layer image and returns its manifest.
func (e *env) image(repo, tag, content string) meta.Manifest {
	cfg := e.blob(repo, []byte(`{"architecture":"amd64","os":"linux","c":"`+content+`"}`))
	layer := e.blob(repo, []byte("layer "+content))
	return e.manifest(repo, tag, desc{"schemaVersion": 2, "mediaType": oci.MediaTypeOCIManifest,
		"config": desc{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg.Digest, "size": cfg.Size},
		"layers": []desc{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.Digest, "size": layer.Size}}})
}

type signer struct {
	key crypto.Signer
	pem string
}

func newSigner(t *testing.T, kind string) signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return signer{key: k, pem: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
}

// sign signs msg the way sigstore's default verifier for the key expects.
func (s signer) sign(t *testing.T, msg []byte) []byte {
	t.Helper()
	var sig []byte
	var err error
	switch k := s.key.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, msg)
	case *ecdsa.PrivateKey:
		h := crypto.SHA256
		if k.Curve == elliptic.P384() {
			h = crypto.SHA384
		}
		hh := h.New()
		hh.Write(msg)
		sig, err = ecdsa.SignASN1(rand.Reader, k, hh.Sum(nil))
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func simpleSigning(digest string) []byte {
	return []byte(`{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"` + digest + `"},"type":"cosign container image signature"},"optional":null}`)
}

// legacySig pushes a sha256-<hex>.sig manifest for target: payload signed by s, then
// (to tamper) replaced by stored.
func (e *env) legacySig(repo string, target string, s signer, signed, stored []byte) {
	sig := s.sign(e.t, signed)
	l := e.blob(repo, stored)
	cfg := e.blob(repo, []byte(`{}`))
	e.manifest(repo, LegacyTag(target, "sig"), desc{"schemaVersion": 2, "mediaType": oci.MediaTypeOCIManifest,
		"config": desc{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg.Digest, "size": cfg.Size},
		"layers": []desc{{"mediaType": mediaTypeSimpleSigning, "digest": l.Digest, "size": l.Size,
			"annotations": map[string]string{annotationSignature: base64.StdEncoding.EncodeToString(sig)}}}})
}

func (e *env) legacyAtt(repo, target string, s signer, predicateType string) {
	hexd := strings.TrimPrefix(target, "sha256:")
	stmt := []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"` + predicateType + `","subject":[{"name":"x","digest":{"sha256":"` + hexd + `"}}],"predicate":{}}`)
	sig := s.sign(e.t, dssePAE(payloadTypeInToto, stmt))
	envl, _ := json.Marshal(desc{"payloadType": payloadTypeInToto, "payload": base64.StdEncoding.EncodeToString(stmt),
		"signatures": []desc{{"keyid": "", "sig": base64.StdEncoding.EncodeToString(sig)}}})
	l := e.blob(repo, envl)
	cfg := e.blob(repo, []byte(`{}`))
	e.manifest(repo, LegacyTag(target, "att"), desc{"schemaVersion": 2, "mediaType": oci.MediaTypeOCIManifest,
		"config": desc{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg.Digest, "size": cfg.Size},
		"layers": []desc{{"mediaType": mediaTypeDSSE, "digest": l.Digest, "size": l.Size,
			"annotations": map[string]string{annotationPredicateType: predicateType}}}})
}

type auditLog struct {
	mu      sync.Mutex
	entries []meta.AuditEntry
}

func (a *auditLog) record(e meta.AuditEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
}

func TestTrustEvaluator(t *testing.T) {
	keyA, keyB := newSigner(t, "p256"), newSigner(t, "p256")
	keyP384, keyEd := newSigner(t, "p384"), newSigner(t, "ed25519")
	slsa := "https://slsa.dev/provenance/v1"
	keys := func(s ...signer) config.TrustPolicy {
		var pems []string
		for _, k := range s {
			pems = append(pems, k.pem)
		}
		return config.TrustPolicy{Mode: ModeEnforce, Requirements: []config.TrustRequirement{{Name: "release", CosignKeys: pems}}}
	}
	cases := []struct {
		name    string
		policy  config.TrustPolicy
		setup   func(e *env, img meta.Manifest) meta.Manifest // returns the manifest pulled
		denied  string                                        // substring of the denial; "" means served
		audited string
		signer  func() bool // what Check is told about the caller
	}{
		{name: "signed by the key", policy: keys(keyA), setup: func(e *env, img meta.Manifest) meta.Manifest {
			e.legacySig("p/app", img.Digest, keyA, simpleSigning(img.Digest), simpleSigning(img.Digest))
			return img
		}},
		{name: "P-384 key", policy: keys(keyP384), setup: func(e *env, img meta.Manifest) meta.Manifest {
			e.legacySig("p/app", img.Digest, keyP384, simpleSigning(img.Digest), simpleSigning(img.Digest))
			return img
		}},
		{name: "Ed25519 key", policy: keys(keyEd), setup: func(e *env, img meta.Manifest) meta.Manifest {
			e.legacySig("p/app", img.Digest, keyEd, simpleSigning(img.Digest), simpleSigning(img.Digest))
			return img
		}},
		{name: "one of two keys", policy: keys(keyB, keyA), setup: func(e *env, img meta.Manifest) meta.Manifest {
			e.legacySig("p/app", img.Digest, keyA, simpleSigning(img.Digest), simpleSigning(img.Digest))
			return img
		}},
		{name: "unsigned", policy: keys(keyA), setup: func(e *env, img meta.Manifest) meta.Manifest { return img },
			denied: `policy "prod-policy" (enforce) refuses sha256:`},
		{name: "signed by another key", policy: keys(keyA), setup: func(e *env, img meta.Manifest) meta.Manifest {
			e.legacySig("p/app", img.Digest, keyB, simpleSigning(img.Digest), simpleSigning(img.Digest))
			return img
		}, denied: "missing release"},
		{name: "tampered payload", policy: keys(keyA), setup: func(e *env, img meta.Manifest) meta.Manifest {
			tampered := bytes.Replace(simpleSigning(img.Digest), []byte(`"x"`), []byte(`"y"`), 1)
			e.legacySig("p/app", img.Digest, keyA, simpleSigning(img.Digest), tampered)
			return img
		}, denied: "invalid signature"},
		{name: "signature for another digest", policy: keys(keyA), setup: func(e *env, img meta.Manifest) meta.Manifest {
			other := e.image("p/app", "other", "other")
			e.legacySig("p/app", img.Digest, keyA, simpleSigning(other.Digest), simpleSigning(other.Digest))
			return img
		}, denied: "signature is for "},
		{name: "attestation required and present", policy: config.TrustPolicy{Mode: ModeEnforce, Requirements: []config.TrustRequirement{
			{Name: "signed", CosignKeys: []string{keyA.pem}}, {Name: "provenance", CosignKeys: []string{keyA.pem}, PredicateType: slsa}}},
			setup: func(e *env, img meta.Manifest) meta.Manifest {
				e.legacySig("p/app", img.Digest, keyA, simpleSigning(img.Digest), simpleSigning(img.Digest))
				e.legacyAtt("p/app", img.Digest, keyA, slsa)
				return img
			}},
		{name: "attestation of another predicate", policy: config.TrustPolicy{Mode: ModeEnforce, Requirements: []config.TrustRequirement{
			{Name: "provenance", CosignKeys: []string{keyA.pem}, PredicateType: slsa}}},
			setup: func(e *env, img meta.Manifest) meta.Manifest {
				e.legacyAtt("p/app", img.Digest, keyA, "https://spdx.dev/Document")
				return img
			}, denied: "missing provenance"},
		{name: "an attestation is not a signature", policy: keys(keyA), setup: func(e *env, img meta.Manifest) meta.Manifest {
			e.legacyAtt("p/app", img.Digest, keyA, slsa)
			return img
		}, denied: "missing release"},
		{name: "warn serves and audits", policy: config.TrustPolicy{Mode: ModeWarn, Requirements: keys(keyA).Requirements},
			setup: func(e *env, img meta.Manifest) meta.Manifest { return img }, audited: "warned"},
		{name: "signature manifests are exempt", policy: keys(keyA), setup: func(e *env, img meta.Manifest) meta.Manifest {
			e.legacySig("p/app", img.Digest, keyB, simpleSigning(img.Digest), simpleSigning(img.Digest))
			m, err := e.reg.GetManifest(context.Background(), "p/app", registry.Reference{Tag: LegacyTag(img.Digest, "sig")}, false)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}},
		{name: "child of a signed index", policy: keys(keyA), setup: func(e *env, img meta.Manifest) meta.Manifest {
			idx := e.manifest("p/app", "multi", desc{"schemaVersion": 2, "mediaType": oci.MediaTypeOCIIndex,
				"manifests": []desc{{"mediaType": oci.MediaTypeOCIManifest, "digest": img.Digest, "size": img.Size, "platform": desc{"os": "linux", "architecture": "amd64"}}}})
			e.legacySig("p/app", idx.Digest, keyA, simpleSigning(idx.Digest), simpleSigning(idx.Digest))
			return img
		}},
		{name: "child of an unsigned index", policy: keys(keyA), setup: func(e *env, img meta.Manifest) meta.Manifest {
			e.manifest("p/app", "multi", desc{"schemaVersion": 2, "mediaType": oci.MediaTypeOCIIndex,
				"manifests": []desc{{"mediaType": oci.MediaTypeOCIManifest, "digest": img.Digest, "size": img.Size}}})
			return img
		}, denied: "missing release"},
		{name: "mode off", policy: config.TrustPolicy{Mode: ModeOff}, setup: func(e *env, img meta.Manifest) meta.Manifest { return img }},
		{name: "a signer reads an unsigned manifest", policy: keys(keyA), setup: func(e *env, img meta.Manifest) meta.Manifest { return img },
			signer: func() bool { return true }, audited: "signer"},
		{name: "a caller who may not push is denied", policy: keys(keyA), setup: func(e *env, img meta.Manifest) meta.Manifest { return img },
			signer: func() bool { return false }, denied: "missing release", audited: "denied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ms := metatest.Backends(t)[0].Open(t)
			e := newEnv(t, ms)
			ctx := context.Background()
			if _, err := e.store.Put(ctx, Policy{Name: "prod-policy", ScopeKind: ScopeProject, Scope: "p", Spec: tc.policy}); err != nil {
				t.Fatal(err)
			}
			var audit auditLog
			ev, err := NewEvaluator(ctx, e.store, e.reg, Options{Audit: audit.record}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			pulled := tc.setup(e, e.image("p/app", "v1", "app"))
			for round := range 2 { // the second answer comes from the cache and must agree
				err = ev.Check(ctx, "p/app", "", meta.Manifest{Digest: pulled.Digest, MediaType: pulled.MediaType, Size: pulled.Size}, tc.signer)
				switch {
				case tc.denied == "" && err != nil:
					t.Fatalf("round %d: denied: %v", round, err)
				case tc.denied != "" && (!errors.Is(err, errcode.Denied) || !strings.Contains(err.Error(), tc.denied)):
					t.Fatalf("round %d: got %v, want DENIED containing %q", round, err, tc.denied)
				}
			}
			if tc.audited != "" && (len(audit.entries) == 0 || audit.entries[0].Result != tc.audited || audit.entries[0].Actor != "prod-policy") {
				t.Fatalf("audit entries %+v, want one %s by prod-policy", audit.entries, tc.audited)
			}
			// Another project has no policy.
			other := e.image("q/app", "v1", "app")
			if err := ev.Check(ctx, "q/app", "", other, nil); err != nil {
				t.Fatalf("project without a policy: %v", err)
			}
		})
	}
}

// TestTrustInvalidation: a verdict is cached until a signature arrives or the policy
// changes, and a second evaluator over the same database (another replica) follows.
func TestTrustInvalidation(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, b.Open(t))
			keyA, keyB := newSigner(t, "p256"), newSigner(t, "p256")
			put := func(k signer) {
				if _, err := e.store.Put(ctx, Policy{Name: "pol", ScopeKind: ScopeProject, Scope: "p",
					Spec: config.TrustPolicy{Mode: ModeEnforce, Requirements: []config.TrustRequirement{{Name: "k", CosignKeys: []string{k.pem}}}}}); err != nil {
					t.Fatal(err)
				}
			}
			put(keyA)
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			r1, err := NewEvaluator(ctx, e.store, e.reg, Options{}, log)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := NewEvaluator(ctx, e.store, e.reg, Options{}, log)
			if err != nil {
				t.Fatal(err)
			}
			img := e.image("p/app", "v1", "app")
			want := func(ev *Evaluator, denied bool, when string) {
				t.Helper()
				err := ev.Check(ctx, "p/app", "", img, nil)
				if denied != (err != nil) {
					t.Fatalf("%s: err = %v, want denied=%v", when, err, denied)
				}
			}
			want(r1, true, "unsigned")
			want(r2, true, "unsigned on replica 2")
			e.legacySig("p/app", img.Digest, keyA, simpleSigning(img.Digest), simpleSigning(img.Digest))
			want(r1, true, "signature stored but not announced (cached verdict)")
			if err := r1.Changed(ctx); err != nil {
				t.Fatal(err)
			}
			want(r1, false, "after the signature arrived")
			runOnce(t, r2)
			want(r2, false, "replica 2 after its poll")
			put(keyB)
			runOnce(t, r1)
			runOnce(t, r2)
			want(r1, true, "policy now wants key B")
			want(r2, true, "policy now wants key B, replica 2")
		})
	}
}

// runOnce lets Run make one poll.
func runOnce(t *testing.T, e *Evaluator) {
	t.Helper()
	g, err := e.store.Generation(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.mu.RLock()
	same := g == e.gen
	e.mu.RUnlock()
	if !same {
		if err := e.reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTrustPublicGoodBundle verifies a real Sigstore public-good bundle (sigstore-js's
// release provenance, from sigstore-go's module) against its trusted root, offline,
// with transparency log, timestamp and SCT required.
func TestTrustPublicGoodBundle(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/sigstore/sigstore-go").Output()
	if err != nil {
		t.Fatalf("locate sigstore-go: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "examples")
	raw := readFile(t, filepath.Join(dir, "bundle-provenance.json"))
	target := Target{Digest: "sha512:76176ffa33808b54602c7c35de5c6e9a4deb96066dba6533f50ac234f4f1f4c6b3527515dc17c06fbe2860030f410eee69ea20079bd3a2c6f3dcf3b329b10751"}
	ident := config.TrustIdentity{Issuer: "https://token.actions.githubusercontent.com",
		Subject: "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"}
	cases := []struct {
		name   string
		id     config.TrustIdentity
		target string
		want   string // error substring, "" for success
	}{
		{name: "exact identity", id: ident},
		{name: "anchored regex", id: config.TrustIdentity{Issuer: ident.Issuer, SubjectRegex: `https://github\.com/sigstore/sigstore-js/.*@refs/heads/main`}},
		{name: "unanchored prefix does not match", id: config.TrustIdentity{Issuer: ident.Issuer, SubjectRegex: `https://github\.com/sigstore/`}, want: "no matching"},
		{name: "wrong subject", id: config.TrustIdentity{Issuer: ident.Issuer, Subject: "https://github.com/evil/repo/.github/workflows/release.yml@refs/heads/main"}, want: "no matching"},
		{name: "wrong issuer", id: config.TrustIdentity{Issuer: "https://accounts.google.com", Subject: ident.Subject}, want: "no matching"},
		{name: "another artifact", id: ident, target: "sha512:" + strings.Repeat("ab", 64), want: "digest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := compileRequirement(config.TrustRequirement{Name: "sigstore-js", Identities: []config.TrustIdentity{tc.id},
				TrustedRoot: filepath.Join(dir, "trusted-root-public-good.json"), RequireTlog: true, RequireTimestamp: true, RequireSCT: true,
				PredicateType: "https://slsa.dev/provenance/v0.2"})
			if err != nil {
				t.Fatal(err)
			}
			tg := target
			if tc.target != "" {
				tg.Digest = tc.target
			}
			pt, err := verifyBundle(req, raw, tg)
			if tc.want == "" {
				if err != nil || pt != "https://slsa.dev/provenance/v0.2" {
					t.Fatalf("verify: predicate %q, err %v", pt, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestTrustPolicyValidation(t *testing.T) {
	k := newSigner(t, "p256")
	cases := []struct {
		name string
		spec config.TrustPolicy
		want string
	}{
		{"valid", config.TrustPolicy{Mode: "enforce", Requirements: []config.TrustRequirement{{CosignKeys: []string{k.pem}}}}, ""},
		{"bad mode", config.TrustPolicy{Mode: "strict", Requirements: []config.TrustRequirement{{CosignKeys: []string{k.pem}}}}, "mode"},
		{"no requirements", config.TrustPolicy{Mode: "enforce"}, "no requirements"},
		{"no signer", config.TrustPolicy{Mode: "warn", Requirements: []config.TrustRequirement{{Name: "x"}}}, "names no signer"},
		{"bad key", config.TrustPolicy{Requirements: []config.TrustRequirement{{CosignKeys: []string{"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}}}}, "cosignKeys[0]"},
		{"missing key file", config.TrustPolicy{Requirements: []config.TrustRequirement{{CosignKeys: []string{"/nonexistent.pub"}}}}, "not inline PEM"},
		{"identity without root", config.TrustPolicy{Requirements: []config.TrustRequirement{{Identities: []config.TrustIdentity{{Issuer: "i", Subject: "s"}}}}}, "trustedRoot"},
		{"identity without subject", config.TrustPolicy{Requirements: []config.TrustRequirement{{CosignKeys: []string{k.pem}}, {Name: "b", Identities: []config.TrustIdentity{{Issuer: "i"}}, TrustedRoot: "x"}}}, "trustedRoot x"},
		{"duplicate names", config.TrustPolicy{Requirements: []config.TrustRequirement{{Name: "a", CosignKeys: []string{k.pem}}, {Name: "a", CosignKeys: []string{k.pem}}}}, "twice"},
		{"notation attestation", config.TrustPolicy{Requirements: []config.TrustRequirement{{NotationCertificates: []string{"x"}, PredicateType: "p"}}}, "notation signs no attestations"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate("pol", tc.spec)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	if err := Validate("Bad Name", config.TrustPolicy{Mode: "off"}); err == nil {
		t.Fatal("a policy name with spaces was accepted")
	}
}

func TestTrustExemptTags(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	for tag, want := range map[string]bool{
		LegacyTag(d, "sig"): true, LegacyTag(d, "att"): true, LegacyTag(d, "sbom"): true,
		strings.Replace(d, ":", "-", 1): true, "latest": false, "sha256-abc.sig": false, LegacyTag(d, "sig") + "x": false,
	} {
		if got := ExemptTag(tag); got != want {
			t.Errorf("ExemptTag(%q) = %v, want %v", tag, got, want)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
