package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"

	"github.com/opencontainers/go-digest"
)

// Manifest media types Berth accepts.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeOCIEmpty       = "application/vnd.oci.empty.v1+json"

	mediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// ErrInvalidManifest reports a manifest Berth refuses to store.
var ErrInvalidManifest = errors.New("invalid manifest")

// Descriptor is the subset of an OCI descriptor the registry needs to follow references.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// Manifest is a parsed, validated manifest or index. The raw bytes are kept elsewhere:
// the registry always stores and serves what the client sent, byte for byte.
type Manifest struct {
	MediaType    string
	ArtifactType string // the manifest's artifactType, or for an image without one its config media type
	Config       *Descriptor
	Layers       []Descriptor
	Manifests    []Descriptor // index children
	Subject      *Descriptor
	Annotations  map[string]string
}

// IsIndex tells whether the manifest lists other manifests.
func (m *Manifest) IsIndex() bool {
	return m.MediaType == MediaTypeOCIIndex || m.MediaType == MediaTypeDockerList
}

// BlobReferences returns the blobs (config and layers) the manifest points at.
func (m *Manifest) BlobReferences() []Descriptor {
	refs := make([]Descriptor, 0, len(m.Layers)+1)
	if m.Config != nil {
		refs = append(refs, *m.Config)
	}
	return append(refs, m.Layers...)
}

type wireManifest struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
	FSLayers      json.RawMessage   `json:"fsLayers"`
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidManifest, fmt.Sprintf(format, args...))
}

// ParseManifest parses and validates payload, sent with the Content-Type contentType.
// The media type comes from the payload's mediaType field when present (Content-Type
// must then agree), else from Content-Type, else from the payload's shape: Helm and
// other OCI clients omit the field.
func ParseManifest(contentType string, payload []byte) (*Manifest, error) {
	if len(bytes.TrimSpace(payload)) == 0 {
		return nil, invalid("empty body")
	}
	var w wireManifest
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, invalid("not valid JSON: %v", err)
	}
	ct := ""
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, invalid("bad Content-Type %q", contentType)
		}
		ct = mt
	}
	mediaType := w.MediaType
	switch {
	case mediaType != "" && ct != "" && ct != mediaType && !genericContentType(ct):
		return nil, invalid("Content-Type %q does not match mediaType %q", ct, mediaType)
	case mediaType == "" && ct != "" && !genericContentType(ct):
		mediaType = ct
	case mediaType == "":
		if w.Manifests != nil {
			mediaType = MediaTypeOCIIndex
		} else {
			mediaType = MediaTypeOCIManifest
		}
	}
	if mediaType == mediaTypeDockerSchema1 || mediaType == mediaTypeDockerSchema1Signed || w.FSLayers != nil {
		return nil, invalid("Docker schema 1 manifests are not supported")
	}
	if w.SchemaVersion == nil || *w.SchemaVersion != 2 {
		return nil, invalid("schemaVersion must be 2")
	}
	m := &Manifest{
		MediaType:    mediaType,
		ArtifactType: w.ArtifactType,
		Config:       w.Config,
		Layers:       w.Layers,
		Manifests:    w.Manifests,
		Subject:      w.Subject,
		Annotations:  w.Annotations,
	}
	switch mediaType {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if w.Manifests != nil {
			return nil, invalid("an image manifest has no manifests field")
		}
		if w.Config == nil {
			return nil, invalid("config is required")
		}
		if err := validateDescriptor("config", w.Config); err != nil {
			return nil, err
		}
		for i := range w.Layers {
			if err := validateDescriptor(fmt.Sprintf("layers[%d]", i), &w.Layers[i]); err != nil {
				return nil, err
			}
		}
		if mediaType == MediaTypeDockerManifest && w.Layers == nil {
			return nil, invalid("layers is required")
		}
	case MediaTypeOCIIndex, MediaTypeDockerList:
		if w.Config != nil || w.Layers != nil {
			return nil, invalid("an index has no config or layers")
		}
		if w.Manifests == nil {
			return nil, invalid("manifests is required")
		}
		for i := range w.Manifests {
			if err := validateDescriptor(fmt.Sprintf("manifests[%d]", i), &w.Manifests[i]); err != nil {
				return nil, err
			}
		}
	default:
		return nil, invalid("unsupported manifest media type %q", mediaType)
	}
	if w.Subject != nil {
		if err := validateDescriptor("subject", w.Subject); err != nil {
			return nil, err
		}
	}
	if m.ArtifactType == "" && m.Config != nil {
		// The referrers API reports an image's config media type as its artifact type.
		m.ArtifactType = m.Config.MediaType
	}
	return m, nil
}

// genericContentType is what some clients send when they do not know better; the body's
// own mediaType then decides.
func genericContentType(ct string) bool {
	return ct == "application/json" || ct == "application/octet-stream"
}

func validateDescriptor(field string, d *Descriptor) error {
	if d.MediaType == "" {
		return invalid("%s: mediaType is required", field)
	}
	if _, err := ParseDigest(string(d.Digest)); err != nil {
		return invalid("%s: %v", field, err)
	}
	if d.Size < 0 {
		return invalid("%s: negative size", field)
	}
	return nil
}

// IsManifestMediaType tells whether mt names a manifest or index Berth stores.
func IsManifestMediaType(mt string) bool {
	switch mt {
	case MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList:
		return true
	}
	return false
}
