package scan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/scan/scannertest"
)

// registryWithManifest serves one manifest to a bearer of token, as the adapter pulls it.
func registryWithManifest(t *testing.T, repo, token string) (url, digest string) {
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	sum := sha256.Sum256(manifest)
	digest = "sha256:" + hex.EncodeToString(sum[:])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/v2/"+repo+"/manifests/"+digest {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Write(manifest)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, digest
}

func TestAdapterScan(t *testing.T) {
	regURL, digest := registryWithManifest(t, "team/app", "pull-token")
	dbTime := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	sbom := json.RawMessage(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[]}`)
	tests := []struct {
		name      string
		sbom      bool
		scan      scannertest.ScanFunc
		mediaType string
		want      []Finding
		wantSBOM  bool
		wantErr   string
		permanent bool
	}{
		{name: "findings and SBOM", sbom: true, mediaType: "application/vnd.oci.image.manifest.v1+json",
			scan: func(ctx context.Context, r scannertest.Request) (scannertest.Result, error) {
				return scannertest.Result{SBOM: sbom, Vulnerabilities: []scannertest.Vulnerability{
					{ID: "CVE-2026-0001", Package: "musl", Version: "1.2.4-r0", FixVersion: "1.2.4-r1", Severity: "High", Description: "overflow\nmore", ScoreV3: 7.5},
					{ID: "CVE-2026-0002", Package: "zlib", Version: "1.3", Severity: "Negligible"},
				}}, nil
			},
			want: []Finding{
				{ID: "CVE-2026-0001", Severity: High, CVSS: 7.5, Title: "overflow", Package: "musl", Installed: "1.2.4-r0", Fixed: "1.2.4-r1", Target: "image"},
				{ID: "CVE-2026-0002", Severity: Low, Package: "zlib", Installed: "1.3", Target: "image"},
			}, wantSBOM: true},
		{name: "no SBOM capability", mediaType: "application/vnd.docker.distribution.manifest.v2+json",
			scan: func(ctx context.Context, r scannertest.Request) (scannertest.Result, error) {
				return scannertest.Result{}, nil
			}, want: []Finding{}},
		{name: "scan fails in the adapter", mediaType: "application/vnd.oci.image.manifest.v1+json",
			scan: func(ctx context.Context, r scannertest.Request) (scannertest.Result, error) {
				return scannertest.Result{}, errors.New("layer unreadable")
			}, wantErr: "layer unreadable"},
		{name: "artifact type not scanned", mediaType: "application/vnd.oci.image.index.v1+json",
			scan: func(ctx context.Context, r scannertest.Request) (scannertest.Result, error) {
				t.Error("scanned an index")
				return scannertest.Result{}, nil
			}, wantErr: "does not scan", permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adapter, err := scannertest.New(tt.scan)
			if err != nil {
				t.Fatal(err)
			}
			adapter.Auth, adapter.SBOM = "Bearer adapter-key", tt.sbom
			adapter.SetDBUpdatedAt(dbTime)
			srv := httptest.NewServer(adapter)
			defer srv.Close()
			a := &Adapter{URL: srv.URL, Authorization: "Bearer adapter-key", RegistryURL: regURL, Timeout: time.Minute}
			res, err := a.Scan(context.Background(), Target{Repository: "team/app", Digest: digest, Token: "pull-token"}, tt.mediaType)
			for _, v := range adapter.Violations() {
				t.Errorf("specification: %s", v)
			}
			if tt.wantErr != "" {
				var ae *AdapterError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.As(err, &ae) != tt.permanent {
					t.Fatalf("err = %v, want %q (permanent %v)", err, tt.wantErr, tt.permanent)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := json.Marshal(res.Findings); string(got) != mustJSON(t, tt.want) {
				t.Errorf("findings = %s, want %s", got, mustJSON(t, tt.want))
			}
			if (res.SBOM != nil) != tt.wantSBOM || (tt.wantSBOM && string(res.SBOM) != string(sbom)) {
				t.Errorf("SBOM = %s, want %v", res.SBOM, tt.wantSBOM)
			}
			if !res.DBUpdatedAt.Equal(dbTime) || res.Engine != "Berth test adapter 1.2.0 (Berth)" {
				t.Errorf("engine %q db %v", res.Engine, res.DBUpdatedAt)
			}
			reqs := adapter.Requests()
			if len(reqs) != 1 || reqs[0].Authorization != "Bearer pull-token" || reqs[0].MimeType != tt.mediaType {
				t.Errorf("adapter saw %+v", reqs)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAdapterSpecViolationsSeen proves the test adapter's validation can fail: a client
// that breaks the specification is caught.
func TestAdapterSpecViolationsSeen(t *testing.T) {
	adapter, err := scannertest.New(func(context.Context, scannertest.Request) (scannertest.Result, error) {
		return scannertest.Result{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(adapter)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/v1/scan", "application/json", strings.NewReader(`{"registry":{"url":7}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := adapter.Violations(); len(v) == 0 {
		t.Fatal("a request with the wrong content type and a number for registry.url passed validation")
	}
}

func TestAdapterRefusesOversizedAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.scanner.adapter.metadata+json; version=1.1")
		chunk := []byte(strings.Repeat(" ", 1<<20))
		for range harborBodyLimit>>20 + 1 {
			w.Write(chunk)
		}
	}))
	defer srv.Close()
	a := &Adapter{URL: srv.URL, Timeout: time.Minute}
	if _, err := a.Metadata(context.Background()); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}
