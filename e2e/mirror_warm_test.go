package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMirrorWarm: berth mirror warm fills the cache (only the platforms asked for), so
// pulls succeed once the upstream is gone; berth mirror config prints node snippets.
func TestMirrorWarm(t *testing.T) {
	crane := requireTool(t, "crane")
	upstream := startBerth(t, BerthOptions{})
	seedPause(t, upstream, "pause", "3.10")
	cfg := fmt.Sprintf("mirror:\n  upstreams:\n    - name: registry.k8s.io\n      url: http://%s\n", upstream.Addr)
	mirror := startBerth(t, BerthOptions{Config: cfg})
	mirror.Stop() // warm runs against the data directory, like an operator before start

	list := filepath.Join(t.TempDir(), "images.txt")
	os.WriteFile(list, []byte("# kubeadm config images list\nregistry.k8s.io/pause:3.10\n"), 0o600)
	out, err := runErr(nil, berthBin, "mirror", "warm", "--config", mirror.Config, "--data", mirror.Data,
		"--from-file", list, "--platform", "linux/amd64")
	if err != nil {
		t.Fatalf("mirror warm: %v\n%s", err, out)
	}
	if !strings.Contains(out, "warm-up: 1 images") || strings.Count(out, "fetched ") != 2 || strings.Count(out, "manifest ") != 2 {
		t.Fatalf("warm output: want the index, the amd64 manifest and its 2 blobs fetched:\n%s", out)
	}
	// A second run finds everything cached.
	out, err = runErr(nil, berthBin, "mirror", "warm", "--config", mirror.Config, "--data", mirror.Data,
		"--platform", "linux/amd64", "registry.k8s.io/pause:3.10")
	if err != nil || strings.Contains(out, "fetched ") || strings.Count(out, "cached ") != 2 {
		t.Fatalf("second warm should only find cached blobs: %v\n%s", err, out)
	}
	// An image of an unconfigured registry is reported, and the command fails.
	if out, err := runErr(nil, berthBin, "mirror", "warm", "--config", mirror.Config, "--data", mirror.Data, "quay.io/x/y:1"); err == nil ||
		!strings.Contains(out, "not a configured upstream") {
		t.Fatalf("warm of an unconfigured registry: %v\n%s", err, out)
	}

	upstream.Stop()
	mirror.Restart()
	env := toolEnv(t)
	run(t, env, crane, "pull", "--platform", "linux/amd64", mirror.Addr+"/registry.k8s.io/pause:3.10", filepath.Join(t.TempDir(), "p.tar"))
	if _, err := runErr(env, crane, "pull", "--platform", "linux/arm64", mirror.Addr+"/registry.k8s.io/pause:3.10", filepath.Join(t.TempDir(), "q.tar")); err == nil {
		t.Fatal("arm64 was pulled with the upstream down, though warm-up fetched only linux/amd64")
	}

	for kind, want := range map[string]string{
		"containerd": `[host."http://nodes.example:5000"]`,
		"crio":       `location = "nodes.example:5000/registry.k8s.io"`,
	} {
		out := run(t, nil, berthBin, "mirror", "config", kind, "--config", mirror.Config, "--url", "http://nodes.example:5000")
		if !strings.Contains(out, want) {
			t.Errorf("mirror config %s lacks %q:\n%s", kind, want, out)
		}
	}
}
