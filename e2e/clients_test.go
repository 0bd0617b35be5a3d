package e2e

// Real clients (crane, regctl, oras, skopeo, helm) against a running berth. Every test
// starts its own berth(s) and uses an isolated tool environment; the multi-arch pause
// fixture comes from fixtures_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// runOut runs a command in dir (empty: the current one) and returns its stdout alone,
// for output that is parsed; stderr is only shown when the command fails.
func clRun(t testing.TB, env []string, dir, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// lines splits command output into its non-empty trimmed lines.
func clLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// apiTags lists a repository's tags over raw HTTP.
func clTags(t testing.TB, b *Berth, repo string) []string {
	t.Helper()
	resp, body := clHTTP(t, http.MethodGet, b.URL("/v2/"+repo+"/tags/list"), nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET tags of %s: %s %s", repo, resp.Status, body)
	}
	var tl struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &tl); err != nil {
		t.Fatalf("tags list of %s: %v: %s", repo, err, body)
	}
	return tl.Tags
}

// referrers lists the referrers of digest in repo over raw HTTP (optionally filtered by
// artifactType) and returns the index and the OCI-Filters-Applied header.
func clReferrers(t testing.TB, b *Berth, repo, digest, artifactType string) (clIndex, string) {
	t.Helper()
	u := b.URL("/v2/" + repo + "/referrers/" + digest)
	if artifactType != "" {
		u += "?artifactType=" + url.QueryEscape(artifactType)
	}
	resp, body := clHTTP(t, http.MethodGet, u, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", u, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != clMTIndex {
		t.Fatalf("GET %s: Content-Type %q, want %q", u, ct, clMTIndex)
	}
	var idx clIndex
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != clMTIndex {
		t.Fatalf("GET %s: not an OCI index: %s", u, body)
	}
	return idx, resp.Header.Get("OCI-Filters-Applied")
}

// referrerTypes maps each referrer's digest to its artifactType.
func clReferrerTypes(idx clIndex) map[string]string {
	m := map[string]string{}
	for _, d := range idx.Manifests {
		m[d.Digest] = d.ArtifactType
	}
	return m
}

var clReferrersTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}`)

// assertNoReferrersTag proves a client used the referrers API and not the fallback
// referrers tag schema (a sha256-<hex> tag holding an index).
func clAssertNoReferrersTag(t testing.TB, env []string, b *Berth, repo string) {
	t.Helper()
	for _, tag := range clLines(clRun(t, env, "", "crane", "ls", b.Addr+"/"+repo)) {
		if clReferrersTag.MatchString(tag) {
			t.Fatalf("%s has referrers-tag-schema tag %q: the client fell back instead of using the referrers API", repo, tag)
		}
	}
}

// TestClientsCrane pushes the multi-arch fixture from an OCI layout with crane and
// exercises copy (same berth and across two), digest, ls, manifest, platform pull and
// delete by tag and by digest.
func TestClientsCrane(t *testing.T) {
	requireTool(t, "crane")
	p := pauseFixture(t)
	b1 := startBerth(t, BerthOptions{})
	b2 := startBerth(t, BerthOptions{})
	env := toolEnv(t)
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	p.writeLayout(t, layout, "3.9")

	src := b1.Addr + "/crane/pause:3.9"
	run(t, env, "crane", "push", layout, src)
	assertPause(t, b1, "crane/pause", "3.9")

	run(t, env, "crane", "copy", src, b1.Addr+"/crane/copy:3.9")
	run(t, env, "crane", "copy", src, b2.Addr+"/mirror/pause:3.9")
	assertPause(t, b1, "crane/copy", "3.9")
	assertPause(t, b2, "mirror/pause", "3.9")
	for _, ref := range []string{src, b1.Addr + "/crane/copy:3.9", b2.Addr + "/mirror/pause:3.9"} {
		if got := strings.TrimSpace(clRun(t, env, "", "crane", "digest", ref)); got != p.IndexDigest {
			t.Fatalf("crane digest %s = %s, want %s", ref, got, p.IndexDigest)
		}
	}
	if got := clRun(t, env, "", "crane", "manifest", src); got != string(p.Index) {
		t.Fatalf("crane manifest %s:\n got %s\nwant %s", src, got, p.Index)
	}
	armRef := b1.Addr + "/crane/pause@" + p.Platforms["linux/arm64"]
	if got := clRun(t, env, "", "crane", "manifest", armRef); got != string(p.Manifests[p.Platforms["linux/arm64"]]) {
		t.Fatalf("crane manifest %s: got %s", armRef, got)
	}

	// Pull one platform: the layout must hold the arm64 image and nothing of amd64.
	pulled := filepath.Join(dir, "pulled-arm64")
	run(t, env, "crane", "pull", "--platform", "linux/arm64", "--format", "oci", src, pulled)
	for _, d := range []string{p.Platforms["linux/arm64"], p.Layers["linux/arm64"]} {
		got, err := os.ReadFile(filepath.Join(pulled, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
		if err != nil {
			t.Fatalf("crane pull --platform linux/arm64: %v", err)
		}
		if clDigest(got) != d {
			t.Fatalf("crane pull --platform linux/arm64: %s has digest %s", d, clDigest(got))
		}
		if d == p.Layers["linux/arm64"] {
			if err := p.checkBinary("linux/arm64", got); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(pulled, "blobs", "sha256", strings.TrimPrefix(p.Layers["linux/amd64"], "sha256:"))); err == nil {
		t.Fatalf("crane pull --platform linux/arm64 also fetched the amd64 layer")
	}

	// ls, tag, delete by tag, delete by digest.
	run(t, env, "crane", "tag", b1.Addr+"/crane/copy:3.9", "extra")
	if got := clLines(clRun(t, env, "", "crane", "ls", b1.Addr+"/crane/copy")); !slices.Equal(got, []string{"3.9", "extra"}) {
		t.Fatalf("crane ls crane/copy = %v, want [3.9 extra]", got)
	}
	run(t, env, "crane", "delete", b1.Addr+"/crane/copy:extra")
	if got := clLines(clRun(t, env, "", "crane", "ls", b1.Addr+"/crane/copy")); !slices.Equal(got, []string{"3.9"}) {
		t.Fatalf("after deleting tag extra, crane ls crane/copy = %v, want [3.9]", got)
	}
	if got := strings.TrimSpace(clRun(t, env, "", "crane", "digest", b1.Addr+"/crane/copy:3.9")); got != p.IndexDigest {
		t.Fatalf("deleting tag extra changed 3.9: %s", got)
	}
	run(t, env, "crane", "delete", b1.Addr+"/crane/copy@"+p.IndexDigest)
	if out, err := runErr(env, "crane", "manifest", b1.Addr+"/crane/copy@"+p.IndexDigest); err == nil || !strings.Contains(out, "MANIFEST_UNKNOWN") {
		t.Fatalf("crane manifest after delete by digest: err %v, want MANIFEST_UNKNOWN; output:\n%s", err, out)
	}
	if out, err := runErr(env, "crane", "digest", b1.Addr+"/crane/copy:3.9"); err == nil {
		t.Fatalf("tag 3.9 still resolves after its manifest was deleted: %s", out)
	}
	// The same content in the other repository and on the other berth is untouched.
	assertPause(t, b1, "crane/pause", "3.9")
	assertPause(t, b2, "mirror/pause", "3.9")
}

// TestClientsRegctl covers regctl: image copy preserving digests, manifest get by
// platform, tag ls, artifact put/list through the referrers API, export and import.
func TestClientsRegctl(t *testing.T) {
	requireTool(t, "regctl")
	requireTool(t, "crane")
	p := pauseFixture(t)
	b := startBerth(t, BerthOptions{})
	seedPause(t, b, "src/pause", "3.9")
	env := toolEnv(t)
	dir := t.TempDir()
	run(t, env, "regctl", "registry", "set", "--tls", "disabled", b.Addr)

	ref := b.Addr + "/regctl/pause:3.9"
	run(t, env, "regctl", "image", "copy", b.Addr+"/src/pause:3.9", ref)
	assertPause(t, b, "regctl/pause", "3.9")
	if got := strings.TrimSpace(clRun(t, env, "", "regctl", "image", "digest", ref)); got != p.IndexDigest {
		t.Fatalf("regctl image digest = %s, want %s", got, p.IndexDigest)
	}
	for _, plat := range pausePlatforms {
		got := clRun(t, env, "", "regctl", "manifest", "get", ref, "--platform", plat, "--format", "raw-body")
		if want := p.Manifests[p.Platforms[plat]]; got != string(want) {
			t.Fatalf("regctl manifest get --platform %s:\n got %s\nwant %s", plat, got, want)
		}
	}
	if got := clLines(clRun(t, env, "", "regctl", "tag", "ls", b.Addr+"/regctl/pause")); !slices.Equal(got, []string{"3.9"}) {
		t.Fatalf("regctl tag ls = %v, want [3.9]", got)
	}

	// An artifact with a subject, listed back through the referrers API.
	const sbomType = "application/vnd.example.sbom"
	sbom := filepath.Join(dir, "sbom.json")
	if err := os.WriteFile(sbom, []byte(`{"sbom":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, env, "regctl", "artifact", "put", "--artifact-type", sbomType, "--file", sbom,
		"--file-media-type", "application/json", "--subject", ref)
	var listed struct {
		Descriptors []clDescriptor `json:"descriptors"`
	}
	out := clRun(t, env, "", "regctl", "artifact", "list", ref, "--format", "{{json .}}")
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("regctl artifact list: %v\n%s", err, out)
	}
	if len(listed.Descriptors) != 1 || listed.Descriptors[0].ArtifactType != sbomType {
		t.Fatalf("regctl artifact list = %+v, want one %s", listed.Descriptors, sbomType)
	}
	sbomDigest := listed.Descriptors[0].Digest
	idx, _ := clReferrers(t, b, "regctl/pause", p.IndexDigest, "")
	if got := clReferrerTypes(idx); len(got) != 1 || got[sbomDigest] != sbomType {
		t.Fatalf("referrers of %s = %v, want {%s: %s}", p.IndexDigest, got, sbomDigest, sbomType)
	}
	clAssertNoReferrersTag(t, env, b, "regctl/pause")
	raw := clRun(t, env, "", "regctl", "manifest", "get", b.Addr+"/regctl/pause@"+sbomDigest, "--format", "raw-body")
	var art clManifest
	if err := json.Unmarshal([]byte(raw), &art); err != nil {
		t.Fatal(err)
	}
	if art.Subject == nil || art.Subject.Digest != p.IndexDigest || art.ArtifactType != sbomType {
		t.Fatalf("artifact manifest: subject %+v artifactType %q, want subject %s and %s", art.Subject, art.ArtifactType, p.IndexDigest, sbomType)
	}

	// Export to a tar and import under another name: the same digests come back.
	tarPath := filepath.Join(dir, "export.tar")
	run(t, env, "regctl", "image", "export", ref, tarPath)
	run(t, env, "regctl", "image", "import", b.Addr+"/regctl/imported:1", tarPath)
	assertPause(t, b, "regctl/imported", "1")
	if got := strings.TrimSpace(clRun(t, env, "", "regctl", "image", "digest", b.Addr+"/regctl/imported:1")); got != p.IndexDigest {
		t.Fatalf("imported digest = %s, want %s", got, p.IndexDigest)
	}
}

// orasDiscover is the subset of `oras discover --format json` the tests read.
type orasDiscover struct {
	Digest    string `json:"digest"`
	Referrers []struct {
		Digest       string `json:"digest"`
		ArtifactType string `json:"artifactType"`
	} `json:"referrers"`
}

// TestClientsOras covers oras: artifact push/pull with an artifactType, attach and
// discover on the multi-arch image through the referrers API (not the tag fallback),
// artifactType filtering, and cp -r with referrers.
func TestClientsOras(t *testing.T) {
	requireTool(t, "oras")
	requireTool(t, "crane")
	p := pauseFixture(t)
	b := startBerth(t, BerthOptions{})
	env := toolEnv(t)
	dir := t.TempDir()

	// Push and pull a plain artifact.
	const helloType = "application/vnd.example.hello"
	hello := []byte("hello from berth e2e\n")
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), hello, 0o644); err != nil {
		t.Fatal(err)
	}
	clRun(t, env, dir, "oras", "push", "--plain-http", b.Addr+"/oras/hello:v1", "--artifact-type", helloType, "hello.txt:text/plain")
	out := filepath.Join(dir, "out")
	clRun(t, env, dir, "oras", "pull", "--plain-http", "-o", out, b.Addr+"/oras/hello:v1")
	if got, err := os.ReadFile(filepath.Join(out, "hello.txt")); err != nil || !bytes.Equal(got, hello) {
		t.Fatalf("oras pull: hello.txt = %q, %v; want %q", got, err, hello)
	}
	resp, body := clHTTP(t, http.MethodGet, b.URL("/v2/oras/hello/manifests/v1"), map[string]string{"Accept": clManifestAccept}, nil)
	var m clManifest
	if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET oras/hello:v1: %s %v %s", resp.Status, err, body)
	}
	if m.ArtifactType != helloType || len(m.Layers) != 1 || m.Layers[0].MediaType != "text/plain" || m.Layers[0].Digest != clDigest(hello) {
		t.Fatalf("oras/hello:v1 manifest: %s", body)
	}

	// Attach two artifacts to the multi-arch image.
	seedPause(t, b, "oras/pause", "3.9")
	const sigType, sbomType = "application/vnd.example.signature", "application/vnd.example.sbom"
	for name, content := range map[string]string{"sig.json": `{"sig":1}`, "sbom.json": `{"sbom":1}`} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	attached := map[string]string{} // digest → artifactType
	for _, a := range []struct{ typ, file string }{{sigType, "sig.json"}, {sbomType, "sbom.json"}} {
		o := clRun(t, env, dir, "oras", "attach", "--plain-http", "--format", "json", "--artifact-type", a.typ,
			b.Addr+"/oras/pause:3.9", a.file+":application/json")
		var res struct {
			Digest string `json:"digest"`
		}
		if err := json.Unmarshal([]byte(o), &res); err != nil || res.Digest == "" {
			t.Fatalf("oras attach --format json: %v\n%s", err, o)
		}
		attached[res.Digest] = a.typ
	}

	// The referrers API lists both, with their artifactType, and no referrers tag exists.
	idx, filters := clReferrers(t, b, "oras/pause", p.IndexDigest, "")
	if got := clReferrerTypes(idx); !maps.Equal(got, attached) {
		t.Fatalf("referrers of %s = %v, want %v", p.IndexDigest, got, attached)
	}
	if filters != "" {
		t.Fatalf("unfiltered referrers request answered OCI-Filters-Applied: %q", filters)
	}
	clAssertNoReferrersTag(t, env, b, "oras/pause")
	for _, typ := range []string{sigType, sbomType} {
		idx, filters := clReferrers(t, b, "oras/pause", p.IndexDigest, typ)
		if filters != "artifactType" {
			t.Fatalf("referrers?artifactType=%s: OCI-Filters-Applied %q, want artifactType", typ, filters)
		}
		if len(idx.Manifests) != 1 || idx.Manifests[0].ArtifactType != typ || attached[idx.Manifests[0].Digest] != typ {
			t.Fatalf("referrers?artifactType=%s = %+v", typ, idx.Manifests)
		}
	}
	if idx, _ := clReferrers(t, b, "oras/pause", p.IndexDigest, "application/vnd.example.none"); len(idx.Manifests) != 0 {
		t.Fatalf("referrers filtered by an unused artifactType = %+v, want none", idx.Manifests)
	}

	// oras discover sees the same set.
	var disc orasDiscover
	o := clRun(t, env, "", "oras", "discover", "--plain-http", "--format", "json", b.Addr+"/oras/pause:3.9")
	if err := json.Unmarshal([]byte(o), &disc); err != nil {
		t.Fatalf("oras discover: %v\n%s", err, o)
	}
	discovered := map[string]string{}
	for _, r := range disc.Referrers {
		discovered[r.Digest] = r.ArtifactType
	}
	if disc.Digest != p.IndexDigest || !maps.Equal(discovered, attached) {
		t.Fatalf("oras discover: digest %s referrers %v, want %s %v", disc.Digest, discovered, p.IndexDigest, attached)
	}

	// cp -r copies the image and its referrers, digests unchanged.
	clRun(t, env, "", "oras", "cp", "-r", "--from-plain-http", "--to-plain-http", b.Addr+"/oras/pause:3.9", b.Addr+"/oras/copy:3.9")
	assertPause(t, b, "oras/copy", "3.9")
	idx, _ = clReferrers(t, b, "oras/copy", p.IndexDigest, "")
	if got := clReferrerTypes(idx); !maps.Equal(got, attached) {
		t.Fatalf("after oras cp -r, referrers in oras/copy = %v, want %v", got, attached)
	}
	for d := range attached {
		src, _ := clFetch(b.URL("/v2/oras/pause/manifests/"+d), clManifestAccept)
		dst, err := clFetch(b.URL("/v2/oras/copy/manifests/"+d), clManifestAccept)
		if err != nil || !bytes.Equal(src, dst) {
			t.Fatalf("referrer %s not copied byte for byte: %v", d, err)
		}
	}
	clAssertNoReferrersTag(t, env, b, "oras/copy")
}

// TestClientsSkopeo covers skopeo: copy --all --preserve-digests between two berths,
// inspect (raw and per platform), list-tags, and a round trip through an oci: layout.
func TestClientsSkopeo(t *testing.T) {
	requireTool(t, "skopeo")
	p := pauseFixture(t)
	b1 := startBerth(t, BerthOptions{})
	b2 := startBerth(t, BerthOptions{})
	seedPause(t, b1, "src/pause", "3.9")
	env := toolEnv(t)
	dir := t.TempDir()
	noTLS := []string{"--src-tls-verify=false", "--dest-tls-verify=false"}
	skopeoCopy := func(src, dst string) {
		t.Helper()
		args := append([]string{"copy", "--all", "--preserve-digests"}, noTLS...)
		run(t, env, "skopeo", append(args, src, dst)...)
	}

	dst := "docker://" + b2.Addr + "/skopeo/pause:3.9"
	skopeoCopy("docker://"+b1.Addr+"/src/pause:3.9", dst)
	assertPause(t, b2, "skopeo/pause", "3.9")

	if got := clRun(t, env, "", "skopeo", "inspect", "--raw", "--tls-verify=false", dst); got != string(p.Index) {
		t.Fatalf("skopeo inspect --raw:\n got %s\nwant %s", got, p.Index)
	}
	for _, plat := range pausePlatforms {
		arch := strings.TrimPrefix(plat, "linux/")
		var info struct {
			Digest       string
			Architecture string
			Os           string
			Layers       []string
		}
		o := clRun(t, env, "", "skopeo", "inspect", "--override-os", "linux", "--override-arch", arch, "--tls-verify=false", dst)
		if err := json.Unmarshal([]byte(o), &info); err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, o)
		}
		if info.Digest != p.IndexDigest || info.Architecture != arch || info.Os != "linux" || !slices.Equal(info.Layers, []string{p.Layers[plat]}) {
			t.Fatalf("skopeo inspect --override-arch %s = %+v, want digest %s, linux/%s, layers [%s]", arch, info, p.IndexDigest, arch, p.Layers[plat])
		}
	}
	run(t, env, "crane", "tag", strings.TrimPrefix(dst, "docker://"), "latest")
	var tl struct {
		Repository string
		Tags       []string
	}
	o := clRun(t, env, "", "skopeo", "list-tags", "--tls-verify=false", "docker://"+b2.Addr+"/skopeo/pause")
	if err := json.Unmarshal([]byte(o), &tl); err != nil {
		t.Fatalf("skopeo list-tags: %v\n%s", err, o)
	}
	if slices.Sort(tl.Tags); !slices.Equal(tl.Tags, []string{"3.9", "latest"}) {
		t.Fatalf("skopeo list-tags = %v, want [3.9 latest]", tl.Tags)
	}

	// To an OCI layout and back (to the first berth, a new repository).
	layout := filepath.Join(dir, "layout")
	skopeoCopy(dst, "oci:"+layout+":3.9")
	checkPauseLayout(t, layout)
	skopeoCopy("oci:"+layout+":3.9", "docker://"+b1.Addr+"/skopeo/back:3.9")
	assertPause(t, b1, "skopeo/back", "3.9")
}

// TestHelm covers helm's OCI support: package, push, pull, show chart; the stored chart
// manifest (which has no top-level mediaType) comes back byte for byte.
func TestHelm(t *testing.T) {
	requireTool(t, "helm")
	b := startBerth(t, BerthOptions{})
	env := toolEnv(t)
	dir := t.TempDir()

	run(t, env, "helm", "create", filepath.Join(dir, "demo"))
	run(t, env, "helm", "package", filepath.Join(dir, "demo"), "-d", dir)
	tgz := filepath.Join(dir, "demo-0.1.0.tgz")
	pushOut := run(t, env, "helm", "push", tgz, "oci://"+b.Addr+"/charts", "--plain-http")
	dm := regexp.MustCompile(`Digest: (sha256:[0-9a-f]{64})`).FindStringSubmatch(pushOut)
	if dm == nil {
		t.Fatalf("helm push printed no digest:\n%s", pushOut)
	}
	pushed := dm[1]

	pulled := filepath.Join(dir, "pulled")
	if err := os.MkdirAll(pulled, 0o755); err != nil { // helm pull -d needs an existing dir (pitfall 11)
		t.Fatal(err)
	}
	run(t, env, "helm", "pull", "oci://"+b.Addr+"/charts/demo", "--version", "0.1.0", "--plain-http", "-d", pulled)
	want, _ := os.ReadFile(tgz)
	if got, err := os.ReadFile(filepath.Join(pulled, "demo-0.1.0.tgz")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("helm pull: chart differs from the pushed one (err %v)", err)
	}
	show := clRun(t, env, "", "helm", "show", "chart", "oci://"+b.Addr+"/charts/demo", "--version", "0.1.0", "--plain-http")
	if !strings.Contains(show, "name: demo\n") || !strings.Contains(show, "version: 0.1.0\n") {
		t.Fatalf("helm show chart:\n%s", show)
	}

	// The manifest as stored: no top-level mediaType, same bytes helm pushed.
	resp, body := clHTTP(t, http.MethodGet, b.URL("/v2/charts/demo/manifests/0.1.0"), map[string]string{"Accept": clManifestAccept}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET charts/demo:0.1.0: %s %s", resp.Status, body)
	}
	if got := clDigest(body); got != pushed || resp.Header.Get("Docker-Content-Digest") != pushed {
		t.Fatalf("GET charts/demo:0.1.0: body digest %s, Docker-Content-Digest %s; helm pushed %s", got, resp.Header.Get("Docker-Content-Digest"), pushed)
	}
	if ct := resp.Header.Get("Content-Type"); ct != clMTManifest {
		t.Fatalf("GET charts/demo:0.1.0: Content-Type %q, want %q (what helm sent)", ct, clMTManifest)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatal(err)
	}
	if _, ok := top["mediaType"]; ok {
		t.Fatalf("helm chart manifest unexpectedly has a top-level mediaType: %s", body)
	}
	var m clManifest
	_ = json.Unmarshal(body, &m)
	if m.Config.MediaType != "application/vnd.cncf.helm.config.v1+json" || len(m.Layers) != 1 ||
		m.Layers[0].MediaType != "application/vnd.cncf.helm.chart.content.v1.tar+gzip" || m.Layers[0].Digest != clDigest(want) {
		t.Fatalf("helm chart manifest: %s", body)
	}
	head, _ := clHTTP(t, http.MethodHead, b.URL("/v2/charts/demo/manifests/"+pushed), map[string]string{"Accept": clManifestAccept}, nil)
	if head.StatusCode != http.StatusOK || head.ContentLength != int64(len(body)) || head.Header.Get("Docker-Content-Digest") != pushed {
		t.Fatalf("HEAD charts/demo@%s: %s, Content-Length %d, want 200 and %d", pushed, head.Status, head.ContentLength, len(body))
	}
	if tags := clTags(t, b, "charts/demo"); !slices.Equal(tags, []string{"0.1.0"}) {
		t.Fatalf("charts/demo tags = %v, want [0.1.0]", tags)
	}
}

// TestClientsCross pushes the multi-arch fixture with each of crane, skopeo, regctl and
// oras, and pulls every one of those with each of crane, skopeo, regctl and oras into an
// OCI layout: every combination must give the identical digests and bytes.
func TestClientsCross(t *testing.T) {
	for _, tool := range []string{"crane", "skopeo", "regctl", "oras"} {
		requireTool(t, tool)
	}
	p := pauseFixture(t)
	b := startBerth(t, BerthOptions{})
	env := toolEnv(t)
	dir := t.TempDir()
	run(t, env, "regctl", "registry", "set", "--tls", "disabled", b.Addr)
	layout := filepath.Join(dir, "fixture")
	p.writeLayout(t, layout, "3.9")

	pushers := []struct {
		name string
		push func(ref string)
	}{
		{"crane", func(ref string) { run(t, env, "crane", "push", layout, ref) }},
		{"skopeo", func(ref string) {
			run(t, env, "skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "oci:"+layout+":3.9", "docker://"+ref)
		}},
		{"regctl", func(ref string) { run(t, env, "regctl", "image", "copy", "ocidir://"+layout+":3.9", ref) }},
		{"oras", func(ref string) {
			run(t, env, "oras", "cp", "--from-oci-layout", "--to-plain-http", layout+":3.9", ref)
		}},
	}
	pullers := []struct {
		name string
		pull func(ref, out string)
	}{
		{"crane", func(ref, out string) { run(t, env, "crane", "pull", "--format", "oci", ref, out) }},
		{"skopeo", func(ref, out string) {
			run(t, env, "skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "docker://"+ref, "oci:"+out+":v1")
		}},
		{"regctl", func(ref, out string) { run(t, env, "regctl", "image", "copy", ref, "ocidir://"+out+":v1") }},
		{"oras", func(ref, out string) {
			run(t, env, "oras", "cp", "--from-plain-http", "--to-oci-layout", ref, out+":v1")
		}},
	}
	for _, pu := range pushers {
		repo := "cross/by-" + pu.name
		ref := b.Addr + "/" + repo + ":v1"
		pu.push(ref)
		assertPause(t, b, repo, "v1")
		for _, pl := range pullers {
			out := filepath.Join(dir, pu.name+"-pulled-by-"+pl.name)
			pl.pull(ref, out)
			t.Logf("pushed by %s, pulled by %s", pu.name, pl.name)
			checkPauseLayout(t, out)
		}
	}
	// Same digest through every client's own digest command.
	for _, pu := range pushers {
		ref := b.Addr + "/cross/by-" + pu.name + ":v1"
		got := map[string]string{
			"crane":  strings.TrimSpace(clRun(t, env, "", "crane", "digest", ref)),
			"regctl": strings.TrimSpace(clRun(t, env, "", "regctl", "image", "digest", ref)),
			"skopeo": clDigest([]byte(clRun(t, env, "", "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref))),
			"oras":   clDigest([]byte(clRun(t, env, "", "oras", "manifest", "fetch", "--plain-http", ref))),
		}
		for tool, d := range got {
			if d != p.IndexDigest {
				t.Fatalf("%s pushed by %s: %s sees digest %s, want %s", ref, pu.name, tool, d, p.IndexDigest)
			}
		}
	}
}
