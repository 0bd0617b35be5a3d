package oci

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const (
	d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func TestParseManifest(t *testing.T) {
	image := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d1 + `","size":10},
		"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + d2 + `","size":20}]}`
	helm := `{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"` + d1 + `","size":10},
		"layers":[{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"` + d2 + `","size":20}]}`
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
		"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d1 + `","size":10,"platform":{"os":"linux","architecture":"amd64"}}]}`
	artifact := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig",
		"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + d1 + `","size":2},"layers":[],
		"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d2 + `","size":30},
		"annotations":{"k":"v"}}`
	docker := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
		"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"` + d1 + `","size":10},
		"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"` + d2 + `","size":20,"urls":["https://example.com/l"]}]}`

	tests := []struct {
		name, contentType, body string
		wantType, wantArtifact  string
		wantBlobs, wantChildren int
		wantSubject             bool
		wantErr                 string
	}{
		{name: "oci image", contentType: MediaTypeOCIManifest, body: image, wantType: MediaTypeOCIManifest, wantArtifact: "application/vnd.oci.image.config.v1+json", wantBlobs: 2},
		{name: "helm without mediaType or content type", body: helm, wantType: MediaTypeOCIManifest, wantArtifact: "application/vnd.cncf.helm.config.v1+json", wantBlobs: 2},
		{name: "helm with content type", contentType: MediaTypeOCIManifest, body: helm, wantType: MediaTypeOCIManifest, wantArtifact: "application/vnd.cncf.helm.config.v1+json", wantBlobs: 2},
		{name: "index", contentType: MediaTypeOCIIndex, body: index, wantType: MediaTypeOCIIndex, wantChildren: 1},
		{name: "index inferred", body: index, wantType: MediaTypeOCIIndex, wantChildren: 1},
		{name: "artifact with subject", contentType: MediaTypeOCIManifest, body: artifact, wantType: MediaTypeOCIManifest, wantArtifact: "application/vnd.example.sig", wantBlobs: 1, wantSubject: true},
		{name: "docker with foreign layer", contentType: MediaTypeDockerManifest, body: docker, wantType: MediaTypeDockerManifest, wantArtifact: "application/vnd.docker.container.image.v1+json", wantBlobs: 2},
		{name: "content type with parameters", contentType: MediaTypeOCIManifest + "; charset=utf-8", body: image, wantType: MediaTypeOCIManifest, wantArtifact: "application/vnd.oci.image.config.v1+json", wantBlobs: 2},
		{name: "mismatched content type", contentType: MediaTypeOCIIndex, body: image, wantErr: "does not match"},
		{name: "not json", contentType: MediaTypeOCIManifest, body: "{", wantErr: "not valid JSON"},
		{name: "empty", body: "", wantErr: "empty"},
		{name: "schema 1", contentType: "application/vnd.docker.distribution.manifest.v1+prettyjws", body: `{"schemaVersion":1,"fsLayers":[]}`, wantErr: "schema 1"},
		{name: "schemaVersion 3", body: strings.Replace(image, `"schemaVersion":2`, `"schemaVersion":3`, 1), wantErr: "schemaVersion"},
		{name: "no config", body: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`, wantErr: "config is required"},
		{name: "bad layer digest", body: strings.Replace(image, d2, "sha256:xyz", 1), wantErr: "layers[0]"},
		{name: "negative size", body: strings.Replace(image, `"size":20`, `"size":-1`, 1), wantErr: "negative"},
		{name: "unknown type", contentType: "application/vnd.example+json", body: `{"schemaVersion":2}`, wantErr: "unsupported"},
		{name: "index with layers", body: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"layers":[]}`, wantErr: "no config or layers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest(tt.contentType, []byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrInvalidManifest containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != tt.wantType || m.ArtifactType != tt.wantArtifact {
				t.Errorf("type %q artifact %q, want %q %q", m.MediaType, m.ArtifactType, tt.wantType, tt.wantArtifact)
			}
			if len(m.BlobReferences()) != tt.wantBlobs || len(m.Manifests) != tt.wantChildren || (m.Subject != nil) != tt.wantSubject {
				t.Errorf("blobs %d children %d subject %v", len(m.BlobReferences()), len(m.Manifests), m.Subject != nil)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(MediaTypeOCIManifest, []byte(`{"schemaVersion":2,"config":{"mediaType":"a","digest":"`+d1+`","size":1},"layers":[]}`))
	f.Add("", []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"a","digest":"`+d2+`","size":1}]}`))
	f.Add(MediaTypeDockerList, []byte(`{"schemaVersion":2,"mediaType":"`+MediaTypeDockerList+`","manifests":[]}`))
	f.Add("text/plain", []byte(`[]`))
	f.Fuzz(func(t *testing.T, contentType string, payload []byte) {
		m, err := ParseManifest(contentType, payload)
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("error not wrapped as ErrInvalidManifest: %v", err)
			}
			return
		}
		if !IsManifestMediaType(m.MediaType) {
			t.Fatalf("accepted media type %q", m.MediaType)
		}
		if !json.Valid(payload) {
			t.Fatal("accepted invalid JSON")
		}
		for _, d := range append(m.BlobReferences(), m.Manifests...) {
			if _, err := ParseDigest(string(d.Digest)); err != nil || d.Size < 0 {
				t.Fatalf("accepted bad descriptor %+v", d)
			}
		}
		if m.IsIndex() && m.Config != nil {
			t.Fatal("index with config")
		}
	})
}
