package proxy

import (
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
)

func TestNodeConfig(t *testing.T) {
	cfg := config.Mirror{DefaultUpstream: "docker.io", Upstreams: []config.Upstream{{Name: "registry.k8s.io"}, {Name: "docker.io"}}}
	tests := []struct {
		kind string
		want []string
	}{
		{"containerd", []string{"# /etc/containerd/certs.d/registry.k8s.io/hosts.toml", `server = "https://registry.k8s.io"`,
			`server = "https://registry-1.docker.io"`, `[host."http://berth:5000"]`, `capabilities = ["pull", "resolve"]`}},
		{"docker", []string{`"registry-mirrors": [`, `"http://berth:5000"`, `"insecure-registries"`}},
		{"crio", []string{`prefix = "registry.k8s.io"`, `location = "berth:5000/registry.k8s.io"`, "insecure = true"}},
	}
	for _, tt := range tests {
		out, err := NodeConfig(tt.kind, "http://berth:5000", cfg, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.kind, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s output lacks %q:\n%s", tt.kind, w, out)
			}
		}
	}
	if _, err := NodeConfig("docker", "http://berth:5000", config.Mirror{Upstreams: cfg.Upstreams}, nil); err == nil {
		t.Error("docker config without a docker.io default upstream")
	}
	if _, err := NodeConfig("rkt", "http://berth:5000", cfg, nil); err == nil {
		t.Error("unknown runtime accepted")
	}
}

// TestNodeFilesTLS: with Berth's own CA, each runtime gets the CA where it looks for
// registry CAs and no setting that skips verification; over http no TLS setting at all.
func TestNodeFilesTLS(t *testing.T) {
	cfg := config.Mirror{DefaultUpstream: "docker.io", Upstreams: []config.Upstream{{Name: "registry.k8s.io"}, {Name: "docker.io"}}}
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	for _, tt := range []struct {
		kind, url string
		ca        []byte
		want      map[string]string // path → a line it must hold
	}{
		{"containerd", "https://berth:5000", ca, map[string]string{
			"/etc/containerd/certs.d/registry.k8s.io/hosts.toml":   `  ca = "berth-ca.crt"`,
			"/etc/containerd/certs.d/registry.k8s.io/berth-ca.crt": "BEGIN CERTIFICATE",
			"/etc/containerd/certs.d/docker.io/hosts.toml":         `[host."https://berth:5000"]`,
		}},
		{"containerd", "http://berth:5000", ca, map[string]string{
			"/etc/containerd/certs.d/docker.io/hosts.toml": `[host."http://berth:5000"]`,
		}},
		{"docker", "https://berth:5000", ca, map[string]string{
			"/etc/docker/daemon.json":               "registry-mirrors",
			"/etc/docker/certs.d/berth:5000/ca.crt": "BEGIN CERTIFICATE",
		}},
		{"crio", "https://berth:5000", ca, map[string]string{
			"/etc/containers/registries.conf.d/berth.conf": `location = "berth:5000/docker.io"`,
			"/etc/containers/certs.d/berth:5000/ca.crt":    "BEGIN CERTIFICATE",
		}},
	} {
		files, err := NodeFiles(tt.kind, tt.url, cfg, tt.ca)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, f := range files {
			got[f.Path] = f.Content
			for _, bad := range []string{"skip_verify", "insecure"} {
				if strings.Contains(f.Content, bad) {
					t.Errorf("%s %s: %s holds %q", tt.kind, tt.url, f.Path, bad)
				}
			}
			if strings.HasPrefix(tt.url, "http:") && strings.Contains(f.Content, "ca") && strings.Contains(f.Path, "ca.crt") {
				t.Errorf("%s over http writes a CA file %s", tt.kind, f.Path)
			}
		}
		for p, line := range tt.want {
			if !strings.Contains(got[p], line) {
				t.Errorf("%s %s: %s lacks %q; files: %v", tt.kind, tt.url, p, line, files)
			}
		}
	}
}

func TestParseImage(t *testing.T) {
	tests := []struct{ in, host, repo, ref string }{
		{"registry.k8s.io/pause:3.10", "registry.k8s.io", "pause", "3.10"},
		{"nginx", "docker.io", "library/nginx", "latest"},
		{"bitnami/redis:7", "docker.io", "bitnami/redis", "7"},
		{"localhost:5000/a/b@sha256:" + strings.Repeat("a", 64), "localhost:5000", "a/b", "sha256:" + strings.Repeat("a", 64)},
		{"registry.k8s.io/coredns/coredns:v1.11.3", "registry.k8s.io", "coredns/coredns", "v1.11.3"},
	}
	for _, tt := range tests {
		host, repo, ref, err := ParseImage(tt.in)
		if err != nil || host != tt.host || repo != tt.repo || ref.String() != tt.ref {
			t.Errorf("ParseImage(%q) = %q %q %q %v", tt.in, host, repo, ref.String(), err)
		}
	}
	for _, bad := range []string{"UPPER/x", "a/b:-bad", "x@sha256:zz"} {
		if _, _, _, err := ParseImage(bad); err == nil {
			t.Errorf("ParseImage(%q) accepted", bad)
		}
	}
}
