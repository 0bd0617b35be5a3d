package e2e

// Berth's own image (issue 17), built by cmd/berth-dist as `make image` builds it: the
// index is reproducible (two builds, one digest), multi-arch, runs as a non-root user,
// carries an SBOM referrer, and the image pulled and run by podman serves a push/pull
// smoke test; its FIPS variant reports FIPS mode on.

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const imageVersion = "e2e-test"

// buildImage runs berth-dist image from the module root and returns, per tag, the index
// digest and the SBOM digest it printed.
func buildImage(t *testing.T, layout, variants, platforms, push string) map[string][2]string {
	t.Helper()
	args := []string{"run", "./cmd/berth-dist", "image", "-version", imageVersion, "-variants", variants, "-platforms", platforms, "-layout", layout}
	if push != "" {
		args = append(args, "-push", push)
	}
	start := time.Now()
	out, err := runErrIn("..", nil, "go", args...)
	if err != nil {
		t.Fatalf("berth-dist image: %v\n%s", err, out)
	}
	t.Logf("berth-dist image -variants %s -platforms %s: %s\n%s", variants, platforms, time.Since(start).Round(time.Millisecond), out)
	res := map[string][2]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[2] == "sbom" {
			res[f[0]] = [2]string{f[1], f[3]}
		}
	}
	return res
}

func TestImage(t *testing.T) {
	crane := requireTool(t, "crane")
	oras := requireTool(t, "oras")
	podman := requireTool(t, "podman")
	env := toolEnv(t)
	b := startBerth(t, BerthOptions{})
	repo := b.Addr + "/berth/berth"
	work := t.TempDir()

	first := buildImage(t, filepath.Join(work, "a"), "std", "linux/amd64,linux/arm64", "")
	second := buildImage(t, filepath.Join(work, "b"), "std", "linux/amd64,linux/arm64", repo)
	if len(first) != 1 || first[imageVersion] != second[imageVersion] {
		t.Fatalf("two builds of one commit differ: %v and %v", first, second)
	}
	ia, _ := os.ReadFile(filepath.Join(work, "a", "index.json"))
	ib, _ := os.ReadFile(filepath.Join(work, "b", "index.json"))
	if len(ia) == 0 || string(ia) != string(ib) {
		t.Fatalf("the layouts' index.json differ:\n%s\n%s", ia, ib)
	}
	indexDigest, sbomDigest := second[imageVersion][0], second[imageVersion][1]
	fips := buildImage(t, filepath.Join(work, "fips"), "fips", "linux/amd64", repo)
	if _, ok := fips[imageVersion+"-fips"]; !ok {
		t.Fatalf("no %s-fips variant: %v", imageVersion, fips)
	}

	// The index: both platforms, OCI media types, the labels.
	var idx struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Platform struct{ OS, Architecture string } `json:"platform"`
		} `json:"manifests"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal([]byte(run(t, env, crane, "manifest", repo+":"+imageVersion)), &idx); err != nil {
		t.Fatal(err)
	}
	if idx.MediaType != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 2 ||
		idx.Manifests[0].Platform.Architecture != "amd64" || idx.Manifests[1].Platform.Architecture != "arm64" ||
		idx.Annotations["org.opencontainers.image.version"] != imageVersion {
		t.Fatalf("index: %+v", idx)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		var cfg struct {
			Architecture string `json:"architecture"`
			Config       struct {
				User       string              `json:"User"`
				Entrypoint []string            `json:"Entrypoint"`
				Volumes    map[string]struct{} `json:"Volumes"`
				Labels     map[string]string   `json:"Labels"`
			} `json:"config"`
		}
		if err := json.Unmarshal([]byte(run(t, env, crane, "config", "--platform", "linux/"+arch, repo+":"+imageVersion)), &cfg); err != nil {
			t.Fatal(err)
		}
		_, vol := cfg.Config.Volumes["/data"]
		if cfg.Architecture != arch || cfg.Config.User != "65532:65532" || cfg.Config.Entrypoint[0] != "/usr/local/bin/berth" ||
			!vol || cfg.Config.Labels["org.opencontainers.image.revision"] == "" ||
			cfg.Config.Labels["org.opencontainers.image.source"] == "" {
			t.Fatalf("linux/%s config: %+v", arch, cfg)
		}
	}

	// The filesystem (linux/amd64): static berth and cric, the CA bundle, the berth user,
	// /data owned by it.
	fsTar := filepath.Join(work, "fs.tar")
	run(t, env, crane, "export", "--platform", "linux/amd64", repo+":"+imageVersion, fsTar)
	checkImageFS(t, fsTar)

	// The SBOM referrer, by the referrers API and by oras.
	if out := run(t, env, oras, "discover", "--plain-http", repo+":"+imageVersion); !strings.Contains(out, "application/spdx+json") || !strings.Contains(out, sbomDigest) {
		t.Fatalf("oras discover lacks the SBOM %s:\n%s", sbomDigest, out)
	}
	r := auDo(t, http.MethodGet, b.URL("/v2/berth/berth/referrers/"+indexDigest+"?artifactType=application/spdx%2Bjson"), nil, nil)
	if r.status != 200 || !strings.Contains(string(r.body), sbomDigest) {
		t.Fatalf("referrers of the index: %d %s", r.status, r.body)
	}
	var sbom struct {
		Manifest struct {
			Layers []struct{ Digest string } `json:"layers"`
		}
	}
	_ = json.Unmarshal([]byte(run(t, env, crane, "manifest", repo+"@"+sbomDigest)), &sbom.Manifest)
	if len(sbom.Manifest.Layers) != 1 {
		t.Fatalf("SBOM manifest: %+v", sbom)
	}
	doc := run(t, env, crane, "blob", repo+"@"+sbom.Manifest.Layers[0].Digest)
	for _, want := range []string{`"spdxVersion": "SPDX-2.3"`, `"github.com/google/go-containerregistry"`, `pkg:golang/stdlib@go1.`} {
		if !strings.Contains(doc, want) {
			t.Fatalf("SBOM lacks %s:\n%s", want, tail(doc, 3000))
		}
	}

	// podman pulls and runs the image (runc with explicit ulimits: ecosystem.md pitfall
	// 9; a non-root user's default nproc limit is above what runc may set here).
	root := t.TempDir()
	for _, e := range env { // podman wants its auth file to exist
		if f, ok := strings.CutPrefix(e, "REGISTRY_AUTH_FILE="); ok {
			_ = os.WriteFile(f, []byte("{}"), 0o600)
		}
	}
	p := func(args ...string) (string, error) {
		base := []string{"--root", filepath.Join(root, "root"), "--runroot", filepath.Join(root, "run"), "--storage-driver", "vfs",
			"--events-backend", "none", "--cgroup-manager", "cgroupfs", "--runtime", "runc"}
		return runErr(env, podman, append(base, args...)...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := p(args...)
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	limits := []string{"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"}
	must("pull", "--tls-verify=false", repo+":"+imageVersion)
	addr := freeAddr(t)
	name := "berth-e2e-" + strings.ReplaceAll(strings.Split(addr, ":")[1], ".", "")
	must(append(append([]string{"run", "-d", "--name", name, "--network", "host"}, limits...), "-e", "BERTH_ADDR="+addr, repo+":"+imageVersion)...)
	t.Cleanup(func() { _, _ = p("rm", "-f", "-t", "0", name) })
	inner := &Berth{t: t, Addr: addr}
	ready := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !ready; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(inner.URL("/readyz")); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == 200
		}
	}
	if !ready {
		logs, _ := p("logs", name)
		t.Fatalf("the containerised berth is not ready on %s:\n%s", addr, logs)
	}
	// The image has no shell or curl: its health check is berth's own.
	if out := must("exec", name, "/usr/local/bin/berth", "healthcheck"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("berth healthcheck in the container: %q", out)
	}
	if logs, _ := p("logs", name); !strings.Contains(logs, `"data":"/data"`) {
		t.Errorf("the container's berth does not use /data:\n%s", logs)
	}
	// Push and pull through it: crane copies the image index (both platforms) in,
	// and pulls one platform back out.
	run(t, env, crane, "copy", repo+":"+imageVersion, addr+"/smoke/berth:1")
	if d := strings.TrimSpace(run(t, env, crane, "digest", addr+"/smoke/berth:1")); d != indexDigest {
		t.Fatalf("digest in the containerised berth %s, want %s", d, indexDigest)
	}
	run(t, env, crane, "pull", "--platform", "linux/arm64", addr+"/smoke/berth:1", filepath.Join(work, "pulled.tar"))
	digest := pushImage(t, inner, "smoke/app", "v1", []byte("smoke layer"))
	if d := strings.TrimSpace(run(t, env, crane, "digest", addr+"/smoke/app:v1")); d != digest {
		t.Fatalf("pulled digest %s, pushed %s", d, digest)
	}

	// The FIPS variant: the same entrypoint, FIPS mode on by default (GOFIPS140 build).
	must("pull", "--tls-verify=false", repo+":"+imageVersion+"-fips")
	out := must(append(append([]string{"run", "--rm", "--network", "none"}, limits...), repo+":"+imageVersion+"-fips", "version")...)
	if !strings.Contains(out, "berth "+imageVersion) || !strings.Contains(out, "fips140:  on (module v1.0.0-") {
		t.Fatalf("berth version in the FIPS image:\n%s", out)
	}
}

// checkImageFS reads an exported image filesystem and checks what the README's image
// section promises of it.
func checkImageFS(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	walkTar(t, f, func(h *tar.Header, body io.Reader) {
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		hdrs[name] = h
		if h.Typeflag == tar.TypeReg {
			var err error
			if data[name], err = io.ReadAll(body); err != nil {
				t.Fatal(err)
			}
		}
	})
	for _, bin := range []string{"usr/local/bin/berth", "usr/local/bin/cric"} {
		h := hdrs[bin]
		if h == nil || h.Mode&0o111 == 0 {
			t.Fatalf("the image lacks an executable %s: %+v", bin, h)
		}
		e, err := elf.NewFile(bytes.NewReader(data[bin]))
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		for _, p := range e.Progs {
			if p.Type == elf.PT_INTERP {
				t.Fatalf("%s is dynamically linked (it has an ELF interpreter)", bin)
			}
		}
	}
	if ca := data["etc/ssl/certs/ca-certificates.crt"]; !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Fatalf("the image's CA bundle holds no certificate (%d bytes)", len(ca))
	}
	if !strings.Contains(string(data["etc/passwd"]), "berth:x:65532:65532:") {
		t.Fatalf("/etc/passwd has no berth user:\n%s", data["etc/passwd"])
	}
	if d := hdrs["data"]; d == nil || d.Typeflag != tar.TypeDir || d.Uid != 65532 || d.Gid != 65532 {
		t.Fatalf("/data is not a directory owned by 65532: %+v", d)
	}
}

// walkTar calls fn for each entry of the tar stream r, with the entry's body.
func walkTar(t *testing.T, r io.Reader, fn func(h *tar.Header, body io.Reader)) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(h, tr)
	}
}
