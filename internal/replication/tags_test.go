package replication

import "testing"

func TestTagSelected(t *testing.T) {
	tests := []struct {
		tags     []string
		versions string
		tag      string
		want     bool
	}{
		{nil, "", "latest", true},
		{[]string{"v*"}, "", "latest", false},
		{nil, ">=1.2, <2", "v1.4.0", true},
		{nil, ">=1.2, <2", "1.2.0", true},
		{nil, ">=1.2, <2", "v2.0.0", false},
		{nil, ">=1.2, <2", "v1.1.9", false},
		{nil, ">=1.2, <2", "latest", false}, // not a version
		{nil, ">=1.2, <2", "v1.4", false},   // not a full version
		{nil, "^2", "v2.9.1", true},         // caret: same major
		{nil, "~1.4", "v1.5.0", false},      // tilde: same minor
		{[]string{"v1.*"}, "<1.5", "v1.4.2", true},
		{[]string{"v1.*"}, "<1.5", "v2.0.0", false}, // the glob first
		{nil, ">=1.0.0-0", "v1.0.0-rc.1", true},     // pre-releases when the range names one
		{nil, ">=1.0.0", "v1.1.0-rc.1", false},
	}
	for _, tt := range tests {
		r := Rule{Tags: tt.tags, TagVersions: tt.versions}
		if got := r.tagSelected(tt.tag); got != tt.want {
			t.Errorf("tags %v versions %q: tag %q selected %v, want %v", tt.tags, tt.versions, tt.tag, got, tt.want)
		}
	}
}

func TestTagVersionsValidated(t *testing.T) {
	r := Rule{Name: "r", Direction: Push, Remote: Remote{URL: "https://registry.example"}, Repositories: []string{"team/**"}, TagVersions: ">= one"}
	if err := r.validate(); err == nil {
		t.Fatal("an unreadable version range was accepted")
	}
	r.TagVersions = ">=1.2, <2"
	if err := r.validate(); err != nil {
		t.Fatalf("a good range was refused: %v", err)
	}
}

func TestManifestType(t *testing.T) {
	const index = "application/vnd.oci.image.index.v1+json"
	tests := []struct {
		mediaType, payload, want string
		globs                    []string
		selected                 bool
	}{
		{"application/vnd.oci.image.manifest.v1+json", `{"config":{"mediaType":"application/vnd.oci.image.config.v1+json"}}`,
			"application/vnd.oci.image.config.v1+json", []string{"application/vnd.oci.image.*"}, true},
		{"application/vnd.oci.image.manifest.v1+json", `{"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json"}}`,
			"application/vnd.cncf.helm.config.v1+json", []string{"application/vnd.oci.image.*"}, false},
		{"application/vnd.oci.image.manifest.v1+json", `{"artifactType":"application/vnd.cncf.model.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.model.config.v1+json"}}`,
			"application/vnd.cncf.model.manifest.v1+json", []string{"application/vnd.cncf.model.*"}, true},
		{index, `{"manifests":[]}`, index, []string{index, "application/vnd.oci.image.config.v1+json"}, true},
		{"application/vnd.docker.distribution.manifest.v2+json", `{"config":{"mediaType":"application/vnd.docker.container.image.v1+json"}}`,
			"application/vnd.docker.container.image.v1+json", []string{"application/*"}, true},
	}
	for _, tt := range tests {
		got := manifestType(tt.mediaType, []byte(tt.payload))
		if got != tt.want || anyMatch(tt.globs, got) != tt.selected {
			t.Errorf("manifestType(%s) = %q (selected by %v: %v), want %q (%v)", tt.payload, got, tt.globs, anyMatch(tt.globs, got), tt.want, tt.selected)
		}
	}
}
