package e2e

// cric, the multi-registry client (issue 4), against a real berth and a real CNCF
// Distribution 3.1.2 with htpasswd basic auth, side by side with crane, skopeo and oras.
// Every test starts its own registries, builds its own images with crane (random layers)
// and keeps credentials in an isolated DOCKER_CONFIG.

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	cricUser = "testuser"
	cricPass = "testpass"
)

// cricPath is the cric binary TestMain builds next to berth.
var cricPath string

// cricBin returns the cric binary TestMain built.
func cricBin(t testing.TB) string {
	t.Helper()
	if cricPath == "" {
		t.Fatal("TestMain built no cric")
	}
	return cricPath
}

// cricExec runs cric and returns stdout, stderr and the exit code.
func cricExec(env []string, args ...string) (string, string, int) {
	cmd := exec.Command(cricPath, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return stdout.String(), stderr.String(), code
}

// cric runs cric, failing the test unless it succeeds; it returns stdout.
func cric(t testing.TB, env []string, args ...string) string {
	t.Helper()
	cricBin(t)
	stdout, stderr, code := cricExec(env, args...)
	if code != 0 {
		t.Fatalf("cric %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// cricFails runs cric expecting exit code want; it returns stderr.
func cricFails(t testing.TB, env []string, want int, args ...string) string {
	t.Helper()
	cricBin(t)
	stdout, stderr, code := cricExec(env, args...)
	if code != want {
		t.Fatalf("cric %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stderr
}

func cricJSON(t testing.TB, env []string, v any, args ...string) {
	t.Helper()
	out := cric(t, env, append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("cric %s: output is not the expected JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// distribution is a running CNCF Distribution registry with htpasswd basic auth.
type distribution struct {
	Addr string
	cmd  *exec.Cmd
	log  string
}

// startDistribution starts `registry serve` on a free loopback port with basic auth
// (bcrypt htpasswd) and delete enabled. Every REGISTRY_* variable is removed from its
// environment: Distribution reads them as config overrides (ecosystem.md pitfall 17).
func startDistribution(t testing.TB) *distribution {
	t.Helper()
	bin := requireTool(t, "registry")
	htp := requireTool(t, "htpasswd")
	dir := t.TempDir()
	out, err := exec.Command(htp, "-Bbn", cricUser, cricPass).Output()
	if err != nil {
		t.Fatalf("htpasswd: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), out, 0o600); err != nil {
		t.Fatal(err)
	}
	d := &distribution{Addr: freeAddr(t), log: filepath.Join(dir, "registry.log")}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
auth:
  htpasswd:
    realm: basic-realm
    path: %s
`, filepath.Join(dir, "data"), d.Addr, filepath.Join(dir, "htpasswd"))
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin, "serve", cfgPath)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			d.cmd.Env = append(d.cmd.Env, kv)
		}
	}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(d.log)
			t.Logf("distribution log tail:\n%s", tail(string(b), 4000))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + d.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("distribution answers %s without credentials, want 401", resp.Status)
			}
			return d
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(d.log)
	t.Fatalf("distribution did not start on %s:\n%s", d.Addr, b)
	return nil
}

// cricWorld is what most tests need: berth, Distribution with basic auth, an isolated
// tool environment whose docker config.json holds Distribution's credentials.
type cricWorld struct {
	berth *Berth
	dist  *distribution
	env   []string
	dir   string // scratch
	home  string
}

func newCricWorld(t *testing.T) *cricWorld {
	t.Helper()
	cricBin(t)
	requireTool(t, "crane")
	w := &cricWorld{berth: startBerth(t, BerthOptions{}), dist: startDistribution(t), env: toolEnv(t), dir: t.TempDir()}
	w.home = strings.TrimPrefix(w.env[0], "HOME=")
	return w
}

func (w *cricWorld) dockerConfig() string { return filepath.Join(w.home, ".docker", "config.json") }

// writeCreds stores Distribution's credentials the way docker login would.
func (w *cricWorld) writeCreds(t testing.TB) {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(cricUser + ":" + cricPass))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, w.dist.Addr, auth)
	if err := os.WriteFile(w.dockerConfig(), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cricImage is a multi-arch test image: an OCI index of linux/amd64 and linux/arm64
// image manifests, one random layer each.
type cricImage struct {
	Ref       string            // where it was built (berth)
	Digest    string            // index digest
	Platforms map[string]string // "linux/arm64" → manifest digest
}

// buildMultiArch builds the image with crane on berth (ecosystem.md §2): crane append
// --oci-empty-base of a random layer, mutate --set-platform, index append, and a re-PUT
// of the index without crane's per-descriptor artifactType (pitfall 4).
func (w *cricWorld) buildMultiArch(t testing.TB, repo, tag string) *cricImage {
	t.Helper()
	ref := w.berth.Addr + "/" + repo + ":" + tag
	img := &cricImage{Ref: ref, Platforms: map[string]string{}}
	var ms []string
	for _, arch := range []string{"amd64", "arm64"} {
		layer := w.randomLayer(t, "app-"+arch, 64<<10)
		tmp := ref + "-" + arch + "-tmp"
		run(t, w.env, "crane", "append", "--oci-empty-base", "-f", layer, "-t", tmp)
		archRef := ref + "-" + arch
		run(t, w.env, "crane", "mutate", tmp, "--set-platform", "linux/"+arch, "-t", archRef)
		img.Platforms["linux/"+arch] = strings.TrimSpace(run(t, w.env, "crane", "digest", archRef))
		ms = append(ms, "-m", archRef)
	}
	run(t, w.env, "crane", append(append([]string{"index", "append"}, ms...), "-t", ref)...)
	raw := run(t, w.env, "crane", "manifest", ref)
	var idx map[string]any
	if err := json.Unmarshal([]byte(raw), &idx); err != nil {
		t.Fatal(err)
	}
	for _, m := range idx["manifests"].([]any) {
		delete(m.(map[string]any), "artifactType")
	}
	body, _ := json.Marshal(idx)
	req, _ := http.NewRequest(http.MethodPut, w.berth.URL("/v2/"+repo+"/manifests/"+tag), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("re-PUT of the index: %s", resp.Status)
	}
	img.Digest = cricSHA(body)
	if got := strings.TrimSpace(run(t, w.env, "crane", "digest", ref)); got != img.Digest {
		t.Fatalf("index digest %s, want %s", got, img.Digest)
	}
	return img
}

// randomLayer writes a tar holding one file of random bytes and returns its path.
func (w *cricWorld) randomLayer(t testing.TB, name string, size int) string {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(size), ModTime: time.Unix(0, 0)})
	_, _ = tw.Write(data)
	_ = tw.Close()
	p := filepath.Join(w.dir, name+".tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func cricSHA(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// craneDigest asks crane (which reads the same config.json) for a digest.
func (w *cricWorld) craneDigest(t testing.TB, ref string) string {
	t.Helper()
	return strings.TrimSpace(run(t, w.env, "crane", "digest", ref))
}

// checkLayout verifies an OCI layout directory: every blob hashes to its name, and the
// single index.json entry has the wanted digest.
func cricCheckLayout(t testing.TB, dir, wantDigest string) map[string]string {
	t.Helper()
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != wantDigest {
		t.Fatalf("%s/index.json: %s, want one entry %s", dir, b, wantDigest)
	}
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range blobs {
		data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if cricSHA(data) != "sha256:"+e.Name() {
			t.Fatalf("%s: blob %s does not match its digest", dir, e.Name())
		}
	}
	return idx.Manifests[0].Annotations
}

func TestCricLogin(t *testing.T) {
	w := newCricWorld(t)
	reg := w.dist.Addr

	// Wrong password: refused by the registry, nothing stored, exit code 3.
	stderr := cricFails(t, w.env, 3, "login", reg, "-u", cricUser, "-p", "wrong")
	for _, want := range []string{"unauthorized", reg, "401", "authentication required"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("bad-password error %q lacks %q", stderr, want)
		}
	}
	if b, err := os.ReadFile(w.dockerConfig()); err == nil && strings.Contains(string(b), reg) {
		t.Fatalf("bad credentials were stored: %s", b)
	}
	// Without credentials Distribution refuses reads; cric says so.
	stderr = cricFails(t, w.env, 3, "tags", reg+"/any/repo")
	if !strings.Contains(stderr, "cric login "+reg) {
		t.Errorf("unauthorized error %q does not say how to log in", stderr)
	}

	// Good password from stdin: checked, then stored in config.json for every tool.
	cmd := exec.Command(cricPath, "login", reg, "-u", cricUser, "--password-stdin")
	cmd.Env = append(os.Environ(), w.env...)
	cmd.Stdin = strings.NewReader(cricPass + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	// One line of cric's own, not docker's three-line banner.
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "unencrypted") ||
		strings.Contains(string(out), "WARNING!") {
		t.Errorf("login output: %q, want one line saying the credentials are unencrypted", out)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, err := os.ReadFile(w.dockerConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if got, _ := base64.StdEncoding.DecodeString(cfg.Auths[reg].Auth); string(got) != cricUser+":"+cricPass {
		t.Fatalf("config.json after login: %s", b)
	}
	// The stored credentials work for cric and for crane.
	img := w.buildMultiArch(t, "login/app", "v1")
	cric(t, w.env, "-q", "cp", img.Ref, reg+"/login/app:v1")
	if got := w.craneDigest(t, reg+"/login/app:v1"); got != img.Digest {
		t.Fatalf("crane with cric's credentials sees %s, want %s", got, img.Digest)
	}

	cric(t, w.env, "logout", reg)
	if b, _ := os.ReadFile(w.dockerConfig()); strings.Contains(string(b), reg) {
		t.Fatalf("logout left credentials: %s", b)
	}
	cricFails(t, w.env, 3, "digest", reg+"/login/app:v1")
}

// TestCricMultiArch: pull, push and cp of a multi-arch image between berth and
// Distribution (basic auth), with every digest preserved.
func TestCricMultiArch(t *testing.T) {
	w := newCricWorld(t)
	w.writeCreds(t)
	img := w.buildMultiArch(t, "multi/app", "v1")
	dist := w.dist.Addr + "/multi/app"

	// cp berth → Distribution: all platforms by default, same index digest.
	out := cric(t, w.env, "cp", img.Ref, dist+":v1")
	if !strings.Contains(out, img.Digest) {
		t.Errorf("cp printed %q, want the digest %s", out, img.Digest)
	}
	if got := w.craneDigest(t, dist+":v1"); got != img.Digest {
		t.Fatalf("after cp, Distribution has %s, want %s", got, img.Digest)
	}
	for plat, d := range img.Platforms {
		if got := strings.TrimSpace(cric(t, w.env, "digest", "--platform", plat, dist+":v1")); got != d {
			t.Fatalf("%s manifest %s, want %s", plat, got, d)
		}
	}
	// Copying again moves no blob.
	var res []struct{ Digest string }
	cricJSON(t, w.env, &res, "cp", img.Ref, dist+":v1")
	if len(res) != 1 || res[0].Digest != img.Digest {
		t.Fatalf("second cp: %+v", res)
	}

	// pull --all-platforms from Distribution into a layout directory and an archive.
	layout := filepath.Join(w.dir, "layout")
	cric(t, w.env, "pull", "--all-platforms", dist+":v1", "-o", layout)
	ann := cricCheckLayout(t, layout, img.Digest)
	if ann["org.opencontainers.image.ref.name"] != "v1" || ann["io.containerd.image.name"] != dist+":v1" {
		t.Errorf("layout entry annotations: %v", ann)
	}
	archive := filepath.Join(w.dir, "app.tar")
	cric(t, w.env, "-q", "pull", "--all-platforms", dist+":v1", "-o", archive)
	// One platform: the platform's manifest, by its digest.
	arm := filepath.Join(w.dir, "arm64")
	cric(t, w.env, "-q", "pull", "--platform", "linux/arm64", dist+":v1", "-o", arm)
	cricCheckLayout(t, arm, img.Platforms["linux/arm64"])

	// push from the layout directory and from the archive into berth: same digests.
	cric(t, w.env, "push", layout, w.berth.Addr+"/multi/from-layout:v1")
	cric(t, w.env, "-q", "push", archive, w.berth.Addr+"/multi/from-archive") // tag from the archive
	for _, ref := range []string{w.berth.Addr + "/multi/from-layout:v1", w.berth.Addr + "/multi/from-archive:v1"} {
		if got := w.craneDigest(t, ref); got != img.Digest {
			t.Fatalf("%s: %s, want %s", ref, got, img.Digest)
		}
	}
	// cp Distribution → berth, and one platform only.
	cric(t, w.env, "-q", "cp", dist+":v1", w.berth.Addr+"/multi/back")
	if got := w.craneDigest(t, w.berth.Addr+"/multi/back:v1"); got != img.Digest {
		t.Fatalf("cp back: %s, want %s", got, img.Digest)
	}
	cric(t, w.env, "-q", "cp", "--platform", "linux/amd64", dist+":v1", w.berth.Addr+"/multi/amd64:v1")
	if got := w.craneDigest(t, w.berth.Addr+"/multi/amd64:v1"); got != img.Platforms["linux/amd64"] {
		t.Fatalf("cp --platform: %s, want %s", got, img.Platforms["linux/amd64"])
	}

	// A docker archive (one platform) round-trips through cric and loads in skopeo.
	if _, err := exec.LookPath("skopeo"); err == nil {
		dock := filepath.Join(w.dir, "docker.tar")
		cric(t, w.env, "-q", "pull", "--platform", "linux/arm64", "--format", "docker-archive", dist+":v1", "-o", dock)
		run(t, w.env, "skopeo", "inspect", "docker-archive:"+dock)
		cric(t, w.env, "-q", "push", dock, w.berth.Addr+"/multi/docker:v1")
	}

	// inspect describes the index: platforms, size, no referrers.
	var in struct {
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
		Platforms []struct {
			Platform string `json:"platform"`
			Digest   string `json:"digest"`
		} `json:"platforms"`
		Referrers []any `json:"referrers"`
	}
	cricJSON(t, w.env, &in, "inspect", dist+":v1")
	if in.Digest != img.Digest || len(in.Platforms) != 2 || in.Size < 2*64<<10 || len(in.Referrers) != 0 {
		t.Fatalf("inspect: %+v", in)
	}
	for _, p := range in.Platforms {
		if img.Platforms[p.Platform] != p.Digest {
			t.Fatalf("inspect platform %s: %s, want %s", p.Platform, p.Digest, img.Platforms[p.Platform])
		}
	}
	// Clear errors: not found is exit 4 with the registry's words.
	stderr := cricFails(t, w.env, 4, "digest", dist+":nope")
	if !strings.Contains(stderr, "not found") || !strings.Contains(stderr, "MANIFEST_UNKNOWN") {
		t.Errorf("not-found error: %q", stderr)
	}
	stderr = cricFails(t, w.env, 5, "digest", freeAddr(t)+"/x/y:z")
	if !strings.Contains(stderr, "connection refused") {
		t.Errorf("network error: %q", stderr)
	}
}

// TestCricReferrers: cp --referrers carries an oras-attached artifact both ways
// between Distribution (referrers tag schema) and berth (referrers API).
func TestCricReferrers(t *testing.T) {
	requireTool(t, "oras")
	w := newCricWorld(t)
	w.writeCreds(t)
	img := w.buildMultiArch(t, "ref/app", "v1")
	dist := w.dist.Addr + "/ref/app"
	cric(t, w.env, "-q", "cp", img.Ref, dist+":v1")
	sig := filepath.Join(w.dir, "sig.json")
	if err := os.WriteFile(sig, []byte(`{"signed":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// An artifact on the index and one on the arm64 manifest (a per-platform SBOM).
	attach := func(subject, artifactType string) {
		runIn := exec.Command("oras", "attach", "--plain-http", "--artifact-type", artifactType, subject, "sig.json:application/json")
		runIn.Dir = w.dir
		runIn.Env = append(os.Environ(), w.env...)
		if out, err := runIn.CombinedOutput(); err != nil {
			t.Fatalf("oras attach: %v\n%s", err, out)
		}
	}
	attach(dist+":v1", "application/vnd.example.signature")
	attach(dist+"@"+img.Platforms["linux/arm64"], "application/vnd.example.sbom")

	// Distribution → berth: berth's referrers API lists both artifacts afterwards.
	out := cric(t, w.env, "cp", "--referrers", dist+":v1", w.berth.Addr+"/ref/copied")
	if !strings.Contains(out, "+2 referrers") {
		t.Errorf("cp --referrers printed %q", out)
	}
	for subject, wantType := range map[string]string{img.Digest: "application/vnd.example.signature",
		img.Platforms["linux/arm64"]: "application/vnd.example.sbom"} {
		resp, err := http.Get(w.berth.URL("/v2/ref/copied/referrers/" + subject))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var idx struct {
			Manifests []struct {
				ArtifactType string `json:"artifactType"`
			} `json:"manifests"`
		}
		_ = json.Unmarshal(body, &idx)
		if resp.StatusCode != http.StatusOK || len(idx.Manifests) != 1 || idx.Manifests[0].ArtifactType != wantType {
			t.Fatalf("berth referrers of %s: %s %s", subject, resp.Status, body)
		}
	}
	var in struct {
		Referrers []struct {
			ArtifactType string `json:"artifactType"`
		} `json:"referrers"`
	}
	cricJSON(t, w.env, &in, "inspect", w.berth.Addr+"/ref/copied:v1")
	if len(in.Referrers) != 1 || in.Referrers[0].ArtifactType != "application/vnd.example.signature" {
		t.Fatalf("inspect referrers: %+v", in.Referrers)
	}

	// berth → Distribution (another repository): written through the tag schema, which
	// oras reads back.
	cric(t, w.env, "-q", "cp", "--referrers", w.berth.Addr+"/ref/copied:v1", w.dist.Addr+"/ref/back:v1")
	if got := w.craneDigest(t, w.dist.Addr+"/ref/back:v1"); got != img.Digest {
		t.Fatalf("digest after cp back: %s", got)
	}
	disc := run(t, w.env, "oras", "discover", "--plain-http", "--format", "json", w.dist.Addr+"/ref/back:v1")
	if !strings.Contains(disc, "application/vnd.example.signature") {
		t.Fatalf("oras discover after cp --referrers: %s", disc)
	}
	var tags struct {
		Tags []string `json:"tags"`
	}
	cricJSON(t, w.env, &tags, "tags", w.dist.Addr+"/ref/back")
	if !slices.Contains(tags.Tags, "sha256-"+strings.TrimPrefix(img.Platforms["linux/arm64"], "sha256:")) {
		t.Fatalf("no referrers fallback tag for the arm64 manifest: %v", tags.Tags)
	}
}

// TestCricSaveLoad: three images sharing a base layer go into one bundle where the
// shared blob is stored once; loaded into berth under a prefix they keep paths, tags
// and digests.
func TestCricSaveLoad(t *testing.T) {
	w := newCricWorld(t)
	w.writeCreds(t)
	base := w.randomLayer(t, "base", 256<<10)
	names := []string{"team/api:1.0", "team/web:2.0", "tools/cli:3.0"}
	var refs []string
	digests := map[string]string{}
	for i, n := range names {
		uniq := w.randomLayer(t, fmt.Sprintf("own-%d", i), 32<<10)
		ref := w.dist.Addr + "/" + n
		run(t, w.env, "crane", "append", "--oci-empty-base", "-f", base, "-f", uniq, "-t", ref)
		refs = append(refs, ref)
		digests[n] = w.craneDigest(t, ref)
	}
	list := filepath.Join(w.dir, "images.txt")
	if err := os.WriteFile(list, []byte("# images for the air gap\n"+refs[1]+"\n\n"+refs[2]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(w.dir, "bundle.tar")
	saved := cric(t, w.env, "save", refs[0], "--from-file", list, "-o", bundle)
	// One line per image: which image went into the bundle, at which digest.
	for i, n := range names {
		if want := refs[i] + " → " + bundle + "@" + digests[n]; !strings.Contains(saved, want+"\n") {
			t.Errorf("cric save output lacks %q:\n%s", want, saved)
		}
	}

	// Each blob once; the shared base layer once; smaller than the three saved apart.
	f, err := os.Open(bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	var index []byte
	walkTar(t, f, func(h *tar.Header, body io.Reader) {
		seen[h.Name]++
		if h.Name == "index.json" {
			index, _ = io.ReadAll(body)
		}
	})
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s appears %d times in the bundle", name, n)
		}
	}
	var m struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal([]byte(run(t, w.env, "crane", "manifest", refs[0])), &m); err != nil {
		t.Fatal(err)
	}
	shared := "blobs/sha256/" + strings.TrimPrefix(m.Layers[0].Digest, "sha256:")
	if seen[shared] != 1 {
		t.Fatalf("shared layer %s stored %d times", shared, seen[shared])
	}
	fi, _ := f.Stat()
	var apart int64
	for i, ref := range refs {
		p := filepath.Join(w.dir, fmt.Sprintf("single-%d.tar", i))
		cric(t, w.env, "-q", "save", ref, "-o", p)
		sfi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		apart += sfi.Size()
	}
	t.Logf("bundle %d bytes, the three images saved apart %d bytes", fi.Size(), apart)
	if fi.Size() >= apart || fi.Size() > apart-3*(256<<10)/2 {
		t.Fatalf("bundle %d bytes is not smaller than the images apart (%d) by the shared layer", fi.Size(), apart)
	}
	// index.json keeps the names.
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(index, &idx); err != nil || len(idx.Manifests) != 3 {
		t.Fatalf("bundle index.json: %s", index)
	}
	for i, e := range idx.Manifests {
		tag := names[i][strings.LastIndexByte(names[i], ':')+1:]
		if e.Annotations["org.opencontainers.image.ref.name"] != tag ||
			e.Annotations["com.github.berth-registry.cric.source"] != refs[i] || e.Digest != digests[names[i]] {
			t.Errorf("index.json entry %d: %+v", i, e)
		}
	}

	// Load into berth under a prefix: same repository paths, tags, digests.
	var res []struct {
		Source, Destination, Digest string
	}
	cricJSON(t, w.env, &res, "load", bundle, "--to", w.berth.Addr+"/airgap")
	if len(res) != 3 {
		t.Fatalf("load results: %+v", res)
	}
	for _, n := range names {
		ref := w.berth.Addr + "/airgap/" + n
		if got := w.craneDigest(t, ref); got != digests[n] {
			t.Fatalf("%s: %s, want %s", ref, got, digests[n])
		}
	}
	// Loading again is a no-op that still succeeds; one entry can be chosen by name.
	cric(t, w.env, "-q", "load", bundle, "--to", w.berth.Addr+"/airgap")
	cric(t, w.env, "-q", "load", bundle+":"+refs[2], "--to", w.dist.Addr+"/one")
	if got := w.craneDigest(t, w.dist.Addr+"/one/tools/cli:3.0"); got != digests["tools/cli:3.0"] {
		t.Fatalf("load of one entry: %s", got)
	}
}

// TestCricTagsCatalogJSON: listing commands with --json on both registries.
func TestCricTagsCatalogJSON(t *testing.T) {
	w := newCricWorld(t)
	w.writeCreds(t)
	img := w.buildMultiArch(t, "list/app", "v1")
	for _, reg := range []string{w.berth.Addr, w.dist.Addr} {
		cric(t, w.env, "-q", "cp", img.Ref, reg+"/list/one:v1")
		cric(t, w.env, "tag", reg+"/list/one:v1", "v2")
		cric(t, w.env, "-q", "cp", img.Ref, reg+"/list/two/deep:v1")
		var tl struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		cricJSON(t, w.env, &tl, "tags", reg+"/list/one")
		if tl.Name != reg+"/list/one" || !slices.Equal(tl.Tags, []string{"v1", "v2"}) {
			t.Fatalf("tags --json on %s: %+v", reg, tl)
		}
		var cat struct {
			Registry     string   `json:"registry"`
			Repositories []string `json:"repositories"`
		}
		cricJSON(t, w.env, &cat, "catalog", reg)
		for _, want := range []string{"list/one", "list/two/deep"} {
			if !slices.Contains(cat.Repositories, want) {
				t.Fatalf("catalog --json on %s: %+v lacks %s", reg, cat, want)
			}
		}
		cricJSON(t, w.env, &cat, "catalog", reg+"/list/two")
		if !slices.Equal(cat.Repositories, []string{"list/two/deep"}) {
			t.Fatalf("catalog with prefix on %s: %+v", reg, cat)
		}
		// Plain output: one tag per line.
		if out := cric(t, w.env, "tags", reg+"/list/one"); out != "v1\nv2\n" {
			t.Fatalf("tags on %s: %q", reg, out)
		}
		// rm of a tag leaves the manifest; rm --manifest removes it.
		cric(t, w.env, "rm", reg+"/list/one:v2")
		cricJSON(t, w.env, &tl, "tags", reg+"/list/one")
		if !slices.Equal(tl.Tags, []string{"v1"}) {
			t.Fatalf("after rm of a tag on %s: %v", reg, tl.Tags)
		}
	}
}

// TestCricCredentialHelper: credentials come from, and login writes through, a
// docker-credential-<name> helper named in config.json's credHelpers.
func TestCricCredentialHelper(t *testing.T) {
	w := newCricWorld(t)
	bin := filepath.Join(w.dir, "bin")
	store := filepath.Join(w.dir, "helper-store.json")
	calls := filepath.Join(w.dir, "helper-calls.log")
	helper := fmt.Sprintf(`#!/bin/sh
# A tiny credential helper: one credential, kept in a file.
echo "$1" >> %[2]q
case "$1" in
  store) cat > %[1]q ;;
  get) read -r server
       if [ -s %[1]q ] && grep -q "\"ServerURL\":\"$server\"" %[1]q; then cat %[1]q
       else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) cat >/dev/null; rm -f %[1]q ;;
  list) echo '{}' ;;
esac
`, store, calls)
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-crictest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(slices.Clone(w.env), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cfg := fmt.Sprintf(`{"credHelpers":{%q:"crictest"}}`, w.dist.Addr)
	if err := os.WriteFile(w.dockerConfig(), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	img := w.buildMultiArch(t, "helper/app", "v1")
	dst := w.dist.Addr + "/helper/app:v1"

	// The helper has nothing yet: unauthorized.
	cricFails(t, env, 3, "-q", "cp", img.Ref, dst)
	// Login writes through the helper, not into config.json.
	out := cric(t, env, "login", w.dist.Addr, "-u", cricUser, "-p", cricPass)
	if !strings.Contains(out, "docker-credential-crictest") {
		t.Errorf("login output %q does not name the helper", out)
	}
	b, err := os.ReadFile(store)
	if err != nil || !strings.Contains(string(b), `"Secret":"`+cricPass+`"`) {
		t.Fatalf("helper store after login: %s %v", b, err)
	}
	if b, _ := os.ReadFile(w.dockerConfig()); strings.Contains(string(b), base64.StdEncoding.EncodeToString([]byte(cricUser+":"+cricPass))) {
		t.Fatalf("config.json holds the password despite the helper: %s", b)
	}
	// Reads go through the helper: cric and crane both get in.
	cric(t, env, "-q", "cp", img.Ref, dst)
	if got := strings.TrimSpace(run(t, env, "crane", "digest", dst)); got != img.Digest {
		t.Fatalf("crane through the helper: %s", got)
	}
	if got := strings.TrimSpace(cric(t, env, "digest", dst)); got != img.Digest {
		t.Fatalf("cric through the helper: %s", got)
	}
	// Logout erases through the helper.
	cric(t, env, "logout", w.dist.Addr)
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Fatalf("helper store still there after logout: %v", err)
	}
	log, _ := os.ReadFile(calls)
	for _, op := range []string{"get", "store", "erase"} {
		if !strings.Contains(string(log), op) {
			t.Errorf("helper was never asked to %s (calls: %q)", op, log)
		}
	}
}

// TestCricInterop: an image pushed by cric is pulled by crane and skopeo, and images
// pushed by crane and skopeo are pulled by cric, digests unchanged.
func TestCricInterop(t *testing.T) {
	requireTool(t, "skopeo")
	w := newCricWorld(t)
	w.writeCreds(t)
	img := w.buildMultiArch(t, "interop/src", "v1")
	layout := filepath.Join(w.dir, "src-layout")
	cric(t, w.env, "-q", "pull", "--all-platforms", img.Ref, "-o", layout)
	authfile := "--authfile=" + w.dockerConfig()

	for _, reg := range []string{w.berth.Addr, w.dist.Addr} {
		// cric pushes; crane and skopeo pull.
		ref := reg + "/interop/by-cric:v1"
		cric(t, w.env, "-q", "push", layout, ref)
		craneOut := filepath.Join(w.dir, "crane-"+strings.ReplaceAll(reg, ":", "_"))
		run(t, w.env, "crane", "pull", "--format", "oci", ref, craneOut)
		cricCheckLayoutDigest(t, craneOut, img.Digest)
		skopeoOut := filepath.Join(w.dir, "skopeo-"+strings.ReplaceAll(reg, ":", "_"))
		run(t, w.env, "skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", authfile,
			"docker://"+ref, "oci:"+skopeoOut+":v1")
		cricCheckLayoutDigest(t, skopeoOut, img.Digest)

		// crane and skopeo push; cric pulls.
		craneRef := reg + "/interop/by-crane:v1"
		run(t, w.env, "crane", "push", layout, craneRef)
		skopeoRef := reg + "/interop/by-skopeo:v1"
		run(t, w.env, "skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", authfile,
			"oci:"+layout+":v1", "docker://"+skopeoRef)
		for _, r := range []string{craneRef, skopeoRef} {
			out := filepath.Join(w.dir, "cric-"+strings.NewReplacer(":", "_", "/", "_").Replace(r))
			cric(t, w.env, "-q", "pull", "--all-platforms", r, "-o", out)
			cricCheckLayout(t, out, img.Digest)
			if got := strings.TrimSpace(cric(t, w.env, "digest", r)); got != img.Digest {
				t.Fatalf("%s: cric digest %s, want %s", r, got, img.Digest)
			}
		}
	}
}

// cricCheckLayoutDigest checks that a layout written by another tool holds the image
// (crane writes no ref.name; skopeo does).
func cricCheckLayoutDigest(t testing.TB, dir, want string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), want) {
		t.Fatalf("%s/index.json does not reference %s: %s", dir, want, b)
	}
}
