package dist

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// SBOMType is the SBOM referrer's artifactType and layer media type (SPDX 2.3 JSON).
const SBOMType = "application/spdx+json"

// SBOM is an SPDX 2.3 document of the Go modules compiled into a binary (read from its
// build info, as `go version -m` does), with the Go toolchain as a package. It has no
// clock and no random namespace: it describes subject, so the same image gives the
// same document.
func SBOM(src Source, binary string, subject v1.Descriptor) ([]byte, error) {
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("dist: sbom: %w", err)
	}
	type pkg struct {
		Name             string `json:"name"`
		SPDXID           string `json:"SPDXID"`
		VersionInfo      string `json:"versionInfo"`
		DownloadLocation string `json:"downloadLocation"`
		ExternalRefs     []any  `json:"externalRefs,omitempty"`
	}
	purl := func(path, version string) []any {
		return []any{map[string]string{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:golang/" + path + "@" + version}}
	}
	id := func(s string) string {
		return "SPDXRef-Package-" + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
				return r
			}
			return '-'
		}, s)
	}
	pkgs := []pkg{
		{Name: "github.com/berth-registry/berth", SPDXID: "SPDXRef-Package-berth", VersionInfo: src.Version, DownloadLocation: "https://github.com/berth-registry/berth"},
		{Name: "go", SPDXID: "SPDXRef-Package-go", VersionInfo: bi.GoVersion, DownloadLocation: "https://go.dev/dl/", ExternalRefs: purl("stdlib", bi.GoVersion)},
	}
	type dep struct{ Path, Version string }
	var deps []dep
	for _, d := range bi.Deps {
		m := d
		if m.Replace != nil {
			m = m.Replace
		}
		deps = append(deps, dep{m.Path, m.Version})
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].Path < deps[j].Path })
	rels := []map[string]string{{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Package-berth"},
		{"spdxElementId": "SPDXRef-Package-berth", "relationshipType": "DEPENDS_ON", "relatedSpdxElement": "SPDXRef-Package-go"}}
	for _, d := range deps {
		pkgs = append(pkgs, pkg{Name: d.Path, SPDXID: id(d.Path), VersionInfo: d.Version, DownloadLocation: "NOASSERTION", ExternalRefs: purl(d.Path, d.Version)})
		rels = append(rels, map[string]string{"spdxElementId": "SPDXRef-Package-berth", "relationshipType": "DEPENDS_ON", "relatedSpdxElement": id(d.Path)})
	}
	doc := map[string]any{
		"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
		"name":              "berth " + Tag(src),
		"documentNamespace": "https://github.com/berth-registry/berth/spdx/" + Tag(src) + "/" + subject.Digest.String(),
		"creationInfo":      map[string]any{"created": src.Time.UTC().Format("2006-01-02T15:04:05Z"), "creators": []string{"Tool: berth-dist"}},
		"packages":          pkgs, "relationships": rels,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("dist: sbom: %w", err)
	}
	return buf.Bytes(), nil
}

// Artifact is an OCI 1.1 artifact manifest: an empty config, one layer, a subject. It
// implements what remote.Put and the layout writer need.
type Artifact struct {
	raw    []byte
	Config v1.Layer
	Layer  v1.Layer
}

// emptyJSON is the OCI empty descriptor's content.
var emptyJSON = []byte("{}")

// NewArtifact makes the manifest of a referrer of subject holding content.
func NewArtifact(artifactType string, content []byte, subject v1.Descriptor, annotations map[string]string) (*Artifact, error) {
	a := &Artifact{Config: static.NewLayer(emptyJSON, "application/vnd.oci.empty.v1+json"), Layer: static.NewLayer(content, types.MediaType(artifactType))}
	desc := func(l v1.Layer) (map[string]any, error) {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		sz, _ := l.Size()
		mt, _ := l.MediaType()
		return map[string]any{"mediaType": mt, "digest": d.String(), "size": sz}, nil
	}
	cd, err := desc(a.Config)
	if err != nil {
		return nil, err
	}
	ld, err := desc(a.Layer)
	if err != nil {
		return nil, err
	}
	m := map[string]any{
		"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "artifactType": artifactType,
		"config": cd, "layers": []any{ld},
		"subject":     map[string]any{"mediaType": subject.MediaType, "digest": subject.Digest.String(), "size": subject.Size},
		"annotations": annotations,
	}
	if a.raw, err = json.Marshal(m); err != nil {
		return nil, fmt.Errorf("dist: artifact: %w", err)
	}
	return a, nil
}

// RawManifest is the manifest's bytes.
func (a *Artifact) RawManifest() ([]byte, error) { return a.raw, nil }

// Descriptor describes the manifest.
func (a *Artifact) Descriptor() v1.Descriptor {
	h, sz, _ := v1.SHA256(bytes.NewReader(a.raw))
	return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: sz, ArtifactType: SBOMType}
}

// MediaType is the manifest's media type (remote.Put sends it as Content-Type).
func (a *Artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
