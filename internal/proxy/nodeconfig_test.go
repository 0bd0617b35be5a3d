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
		out, err := NodeConfig(tt.kind, "http://berth:5000", cfg)
		if err != nil {
			t.Fatalf("%s: %v", tt.kind, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s output lacks %q:\n%s", tt.kind, w, out)
			}
		}
	}
	if _, err := NodeConfig("docker", "http://berth:5000", config.Mirror{Upstreams: cfg.Upstreams}); err == nil {
		t.Error("docker config without a docker.io default upstream")
	}
	if _, err := NodeConfig("rkt", "http://berth:5000", cfg); err == nil {
		t.Error("unknown runtime accepted")
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
