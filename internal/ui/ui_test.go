package ui

import (
	"testing"
)

func TestLocalPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/projects", "/projects"},
		{"/r/team/app@sha256:abc?tag=v1", "/r/team/app@sha256:abc?tag=v1"},
		{"", ""},
		{"https://evil.test/", ""},
		{"//evil.test/", ""},
		{`/\evil.test`, ""},
		{"projects", ""},
		{"/x\r\nSet-Cookie: a=b", ""},
	} {
		if got := localPath(tt.in); got != tt.want {
			t.Errorf("localPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseRef(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tt := range []struct {
		in                string
		repo, tag, digest string
		bad               bool
	}{
		{in: "team/app", repo: "team/app"},
		{in: "team/app:v1", repo: "team/app", tag: "v1"},
		{in: "registry.k8s.io/pause:3.10", repo: "registry.k8s.io/pause", tag: "3.10"},
		{in: "team/app@" + d, repo: "team/app", digest: d},
		{in: "team/app:v1@" + d, repo: "team/app", tag: "v1", digest: d},
		{in: "Team/App", bad: true},
		{in: "team/app:<script>", bad: true},
		{in: "team/app@sha256:short", bad: true},
		{in: "../etc", bad: true},
	} {
		rf, err := parseRef(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("parseRef(%q) = %+v, want an error", tt.in, rf)
			}
			continue
		}
		if err != nil || rf.Repo != tt.repo || rf.Tag != tt.tag || string(rf.Digest) != tt.digest {
			t.Errorf("parseRef(%q) = %+v, %v", tt.in, rf, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "1024", want: 1024},
		{in: "500MiB", want: 500 << 20},
		{in: "2 GiB", want: 2 << 30},
		{in: "10GB", want: 10e9},
		{in: "1.5kib", want: 1536},
		{in: "-1", bad: true},
		{in: "lots", bad: true},
		{in: "99999999TiB", bad: true},
	} {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.bad || (!tt.bad && got != tt.want) {
			t.Errorf("parseSize(%q) = %d, %v; want %d (error %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestReferrerKind(t *testing.T) {
	for _, tt := range []struct {
		artifactType, predicate, want string
	}{
		{"application/vnd.dev.sigstore.bundle.v0.3+json", "https://sigstore.dev/cosign/sign/v1", "signature"},
		{"application/vnd.dev.sigstore.bundle.v0.3+json", "https://slsa.dev/provenance/v1", "attestation"},
		{"application/vnd.cncf.notary.signature", "", "signature"},
		{"application/spdx+json", "", "sbom"},
		{"application/vnd.cyclonedx+json", "", "sbom"},
		{"application/vnd.in-toto+json", "", "attestation"},
		{"application/vnd.example.readme", "", "artifact"},
	} {
		ann := map[string]string{}
		if tt.predicate != "" {
			ann["dev.sigstore.bundle.predicateType"] = tt.predicate
		}
		if got := referrerKind(tt.artifactType, ann); got != tt.want {
			t.Errorf("referrerKind(%s, %s) = %s, want %s", tt.artifactType, tt.predicate, got, tt.want)
		}
	}
}

// Every page template parses with the layout (a broken one would fail at start).
func TestTemplatesParse(t *testing.T) {
	p, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"login", "error", "projects", "project", "project-members", "project-robots", "project-settings",
		"search", "repository", "manifest", "users", "audit", "account", "secret", "mirror", "warm", "system"} {
		if p.t[name] == nil {
			t.Errorf("no template %s", name)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestArtifactKind(t *testing.T) {
	for _, tt := range []struct{ mt, at, want string }{
		{"application/vnd.oci.image.index.v1+json", "", "index"},
		{"application/vnd.docker.distribution.manifest.list.v2+json", "", "index"},
		{"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.config.v1+json", "image"},
		{"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.container.image.v1+json", "image"},
		{"application/vnd.oci.image.manifest.v1+json", "application/vnd.cncf.helm.config.v1+json", "Helm chart"},
		{"application/vnd.oci.image.manifest.v1+json", "application/spdx+json", "application/spdx+json"},
	} {
		if got := artifactKind(tt.mt, tt.at); got != tt.want {
			t.Errorf("artifactKind(%s, %s) = %s, want %s", tt.mt, tt.at, got, tt.want)
		}
	}
}
