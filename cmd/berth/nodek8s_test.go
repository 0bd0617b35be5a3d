package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/proxy"
)

// TestKubeNodeConfig renders the DaemonSet for two upstreams with a CA, then runs its
// install script with sh against a directory standing in for the host: the tree it
// leaves must be exactly the node files.
func TestKubeNodeConfig(t *testing.T) {
	cfg := config.Mirror{Upstreams: []config.Upstream{{Name: "registry.k8s.io"}, {Name: "docker.io"}}}
	files, err := proxy.NodeFiles("containerd", "https://berth.internal:5000", cfg, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := kubeNodeConfig(files, "kube-system", "busybox:1.36")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(out))
	var docs []map[string]any
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			break
		}
		docs = append(docs, d)
	}
	if len(docs) != 2 || docs[0]["kind"] != "ConfigMap" || docs[1]["kind"] != "DaemonSet" {
		t.Fatalf("want a ConfigMap and a DaemonSet:\n%s", out)
	}
	if !strings.Contains(out, "path: /etc/containerd/certs.d") || !strings.Contains(out, "berth.dev/node-config-sha256") {
		t.Errorf("DaemonSet lacks the hostPath or the rollout hash:\n%s", out)
	}
	data := docs[0]["data"].(map[string]any)

	root := t.TempDir()
	cfgDir, host := filepath.Join(root, "config"), filepath.Join(root, "host")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(cfgDir, k), []byte(v.(string)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := strings.NewReplacer("/config/", cfgDir+"/", "/host/certs.d", host).Replace(data["install.sh"].(string))
	cmd := exec.Command("sh", "-c", script)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install script: %v\n%s\n%s", err, b, script)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(host, strings.TrimPrefix(f.Path, proxy.ContainerdCertsDir)))
		if err != nil || !bytes.Equal(got, []byte(f.Content)) {
			t.Errorf("%s: not installed as rendered (%v)", f.Path, err)
		}
	}
	var n int
	_ = filepath.Walk(host, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n++
		}
		return nil
	})
	if n != len(files) {
		t.Errorf("the host tree holds %d files, want %d (no leftovers)", n, len(files))
	}
}
