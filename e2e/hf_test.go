package e2e

// The Hugging Face mirror (issue 16), end to end: a berth with hf.enabled in front of
// hubtest's Hub (on loopback, answering as huggingface.co does: LFS files redirected
// to a CDN host, X-Repo-Commit / X-Linked-Etag / X-Linked-Size, Xet headers, paginated
// listings, X-Error-Code). Clients: Hugging Face's own JavaScript client
// (@huggingface/hub from npm, run with node: listFiles, downloadFile, snapshotDownload
// with hubUrl at Berth) and Go's HTTP client replaying huggingface_hub's request
// sequence (repo info, tree, HEAD with Accept-Encoding: identity, GET, Range resume).

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/hf/hubtest"
)

const (
	hfCommit   = "0123456789abcdef0123456789abcdef01234567"
	hfRepo     = "hf-e2e/Tiny-LM"
	hfBigSize  = 256 << 20
	hfJSPkg    = "@huggingface/hub"
	hfJSVer    = "2.17.5"
	hfUpToken  = "hf_upstream_token_never_shown"
	hfUserAuth = "hf_admin:" + auAdminPass
)

// hfJSClient returns the directory holding @huggingface/hub at the pinned version,
// installing it with npm into $BERTH_TOOLS/node on first use. Outside CI a missing node
// or npm skips the test; in CI it fails.
func hfJSClient(t *testing.T) string { return nodePackage(t, hfJSPkg, hfJSVer) }

// nodePackage installs an npm package at a version into $BERTH_TOOLS/node (once) and
// returns its directory. Install scripts are not run: they download binaries from
// outside the npm registry (onnxruntime-node's CUDA build), and the CPU build is in the
// package.
func nodePackage(t *testing.T, name, version string) string {
	t.Helper()
	requireTool(t, "node")
	tools := os.Getenv("BERTH_TOOLS")
	if tools == "" {
		tools = "/opt/berth-tools"
	}
	dir := filepath.Join(tools, "node", strings.NewReplacer("@", "", "/", "-").Replace(name)+"-"+version)
	pkg := filepath.Join(append([]string{dir, "node_modules"}, strings.Split(name, "/")...)...)
	if b, err := os.ReadFile(filepath.Join(pkg, "package.json")); err == nil && strings.Contains(string(b), `"version": "`+version+`"`) {
		return pkg
	}
	requireTool(t, "npm")
	stage, err := os.MkdirTemp(filepath.Dir(dir), "stage-")
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if stage, err = os.MkdirTemp(filepath.Dir(dir), "stage-"); err != nil {
			t.Fatal(err)
		}
	}
	defer os.RemoveAll(stage)
	out, err := exec.Command("npm", "install", "--prefix", stage, "--no-audit", "--no-fund", "--no-save", "--ignore-scripts", name+"@"+version).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("npm install %s@%s: %v\n%s", name, version, err, out)
		}
		t.Skipf("npm install %s@%s failed: %v", name, version, err)
	}
	if err := os.Rename(stage, dir); err != nil && !os.IsExist(err) {
		if _, serr := os.Stat(pkg); serr != nil {
			t.Fatalf("install %s: %v", dir, err)
		}
	}
	return pkg
}

const (
	hfTJSPkg = "@huggingface/transformers"
	hfTJSVer = "4.3.2"
	// hfTokenizer is a word-level tokenizer of three tokens.
	hfTokenizer = `{"version":"1.0","truncation":null,"padding":null,"added_tokens":[{"id":0,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],` +
		`"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,` +
		`"model":{"type":"WordLevel","vocab":{"[UNK]":0,"hello":1,"world":2},"unk_token":"[UNK]"}}`
)

// hfTJSScript loads a model's config and tokenizer with @huggingface/transformers, its
// remote host set to Berth, and encodes "hello world again".
const hfTJSScript = `
const { AutoConfig, AutoTokenizer, env } = require(process.env.TJS);
env.remoteHost = process.env.HUB_URL + "/";
env.allowLocalModels = false;
env.cacheDir = process.env.CACHE_DIR;
// transformers.js sends HF_TOKEN to huggingface.co only: for a private project, add it.
const plainFetch = env.fetch;
env.fetch = (url, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set("Authorization", "Bearer " + process.env.HF_TOKEN);
  return plainFetch(url, { ...init, headers });
};
(async () => {
  const config = await AutoConfig.from_pretrained(process.env.REPO);
  const tok = await AutoTokenizer.from_pretrained(process.env.REPO);
  const ids = tok.encode("hello world again", { add_special_tokens: false });
  console.log(JSON.stringify({ model_type: config.model_type, ids: Array.from(ids, Number) }));
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
`

// hfScript drives @huggingface/hub against HUB_URL and prints what it got as JSON.
const hfScript = `
const hub = require(process.env.HFHUB);
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
(async () => {
  const hubUrl = process.env.HUB_URL, accessToken = process.env.HF_TOKEN || undefined;
  const repo = { type: process.env.REPO_TYPE || "model", name: process.env.REPO };
  const out = { files: [], downloads: {}, snapshot: {} };
  for await (const f of hub.listFiles({ repo, hubUrl, accessToken, recursive: true })) {
    out.files.push({ path: f.path, type: f.type, size: f.size, lfs: f.lfs ? f.lfs.oid : null });
  }
  for (const f of out.files.filter((f) => f.type === "file")) {
    const blob = await hub.downloadFile({ repo, path: f.path, hubUrl, accessToken });
    const h = crypto.createHash("sha256");
    let n = 0;
    for await (const chunk of blob.stream()) { h.update(chunk); n += chunk.length; }
    out.downloads[f.path] = { sha256: h.digest("hex"), size: n };
  }
  if (process.env.SNAPSHOT_DIR) {
    const dir = await hub.snapshotDownload({ repo, hubUrl, accessToken, cacheDir: process.env.SNAPSHOT_DIR });
    const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]);
    for (const p of walk(dir)) {
      out.snapshot[path.relative(dir, p)] = crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex");
    }
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
`

type hfJSResult struct {
	Files []struct {
		Path, Type string
		Size       int64
		LFS        *string
	}
	Downloads map[string]struct {
		SHA256 string
		Size   int64
	}
	Snapshot map[string]string
}

func runHFJS(t *testing.T, pkg, hubURL, token, repo, snapshot string) (hfJSResult, error) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "hf.cjs")
	if err := os.WriteFile(script, []byte(hfScript), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script)
	cmd.Env = append(os.Environ(), "HFHUB="+pkg, "HUB_URL="+hubURL, "HF_TOKEN="+token, "REPO="+repo, "SNAPSHOT_DIR="+snapshot)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return hfJSResult{}, fmt.Errorf("node: %v\n%s", err, stderr.String())
	}
	// snapshotDownload prints progress lines; the result is the last line.
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res hfJSResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return hfJSResult{}, fmt.Errorf("node output: %v\n%s", err, stdout.String())
	}
	return res, nil
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// hfGet sends one request as a Hugging Face client would.
func hfGet(t *testing.T, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "huggingface_hub/1.0; python/3.12")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestHFMirror(t *testing.T) {
	big := make([]byte, hfBigSize)
	_, _ = rand.Read(big)
	small := make([]byte, 1<<20)
	_, _ = rand.Read(small)
	files := []hubtest.File{
		{Path: "config.json", Data: []byte(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":64}`)},
		{Path: "generation_config.json", Data: []byte(`{"max_length":32}`)},
		{Path: "tokenizer.json", Data: []byte(hfTokenizer)},
		{Path: "tokenizer_config.json", Data: []byte(`{"tokenizer_class":"PreTrainedTokenizerFast","unk_token":"[UNK]","model_max_length":32}`)},
		{Path: "README.md", Data: []byte("---\nlicense: apache-2.0\n---\n# Tiny-LM\n")},
		{Path: "model.safetensors", Data: big, LFS: true},
		{Path: "onnx/model.onnx", Data: small, LFS: true},
	}
	hub := hubtest.New(&hubtest.Repo{Type: "model", ID: hfRepo, Refs: map[string]string{"main": hfCommit}, Commits: map[string][]hubtest.File{hfCommit: files}})
	hub.Token = hfUpToken
	hub.PageSize = 3
	defer hub.Close()
	want := map[string][]byte{}
	for _, f := range files {
		want[f.Path] = f.Data
	}

	cfg := "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + auAdminPass + "\n" +
		"hf:\n  enabled: true\n  upstream: " + hub.Hub.URL + "\n  token: " + hfUpToken + "\n  allowPrivateRedirects: true\n  revisionTTL: 1s\n"
	b := startBerth(t, BerthOptions{Config: cfg})
	endpoint := b.URL("/hf")
	auth := []string{"Authorization", "Bearer " + hfUserAuth}

	t.Run("anonymous refused on a private project", func(t *testing.T) {
		if resp, _ := hfGet(t, "GET", endpoint+"/api/models/"+hfRepo+"/revision/main"); resp.StatusCode != 401 {
			t.Errorf("anonymous = %d, want 401", resp.StatusCode)
		}
		if resp, _ := hfGet(t, "GET", endpoint+"/api/models/"+hfRepo+"/revision/main", "Authorization", "Bearer hf_admin:wrong"); resp.StatusCode != 401 {
			t.Errorf("wrong password = %d, want 401", resp.StatusCode)
		}
	})

	// The request sequence of huggingface_hub's snapshot_download/hf_hub_download.
	t.Run("huggingface_hub request sequence", func(t *testing.T) {
		resp, body := hfGet(t, "GET", endpoint+"/api/models/"+hfRepo+"/revision/main", auth...)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"sha":"`+hfCommit+`"`) {
			t.Fatalf("repo_info = %d %s", resp.StatusCode, body)
		}
		resp, body = hfGet(t, "GET", endpoint+"/api/models/"+hfRepo+"/tree/"+hfCommit+"?recursive=True&expand=False", auth...)
		var tree []map[string]any
		if resp.StatusCode != 200 || json.Unmarshal(body, &tree) != nil || len(tree) != len(files)+1 {
			t.Fatalf("list_repo_tree = %d %s", resp.StatusCode, body)
		}
		for _, f := range []string{"config.json", "tokenizer.json", "onnx/model.onnx"} {
			url := endpoint + "/" + hfRepo + "/resolve/" + hfCommit + "/" + f
			resp, _ := hfGet(t, "HEAD", url, append(auth, "Accept-Encoding", "identity")...)
			etag := resp.Header.Get("X-Linked-Etag")
			if etag == "" {
				etag = resp.Header.Get("ETag")
			}
			size := resp.Header.Get("X-Linked-Size")
			if size == "" {
				size = resp.Header.Get("Content-Length")
			}
			if resp.StatusCode != 200 || resp.Header.Get("X-Repo-Commit") != hfCommit || etag == "" || size != fmt.Sprint(len(want[f])) || resp.Header.Get("Location") != "" {
				t.Errorf("HEAD %s = %d %v", f, resp.StatusCode, resp.Header)
			}
			resp, body := hfGet(t, "GET", url, auth...)
			if resp.StatusCode != 200 || !bytes.Equal(body, want[f]) {
				t.Errorf("GET %s = %d, %d bytes", f, resp.StatusCode, len(body))
			}
		}
	})

	t.Run("10 concurrent downloads of the big file, one upstream fetch", func(t *testing.T) {
		hub.ResetLog()
		hub.SetRate(256 << 20) // about a second, so the clients overlap
		defer hub.SetRate(0)
		var wg sync.WaitGroup
		errs := make([]error, 10)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("GET", endpoint+"/"+hfRepo+"/resolve/main/model.safetensors", nil)
				req.Header.Set("Authorization", "Bearer "+hfUserAuth)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs[i] = err
					return
				}
				defer resp.Body.Close()
				h := sha256.New()
				n, err := io.Copy(h, resp.Body)
				if err == nil && (resp.StatusCode != 200 || n != hfBigSize || hex.EncodeToString(h.Sum(nil)) != sha256Hex(big)) {
					err = fmt.Errorf("status %d, %d bytes", resp.StatusCode, n)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		}
		if n := hub.Count("GET", "/repos/"); n != 1 {
			t.Errorf("CDN GETs = %d, want 1", n)
		}
		if got := hub.CDNBytes(); got != hfBigSize {
			t.Errorf("CDN bytes = %d, want %d (1.0x)", got, hfBigSize)
		}
		for _, r := range hub.Requests() {
			if r.Host == "cdn" && r.Authorization != "" {
				t.Errorf("the CDN received Authorization")
			}
		}
	})

	t.Run("interrupted download resumed with Range", func(t *testing.T) {
		url := endpoint + "/" + hfRepo + "/resolve/main/model.safetensors"
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+hfUserAuth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		part := make([]byte, hfBigSize/3)
		if _, err := io.ReadFull(resp.Body, part); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // the client is cut off
		resp, rest := hfGet(t, "GET", url, append(auth, "Range", fmt.Sprintf("bytes=%d-", len(part)))...)
		if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", len(part), hfBigSize-1, hfBigSize) {
			t.Fatalf("resume = %d %v", resp.StatusCode, resp.Header)
		}
		if sha256Hex(append(part, rest...)) != sha256Hex(big) {
			t.Errorf("the resumed file differs")
		}
		if resp, _ := hfGet(t, "GET", url, append(auth, "Range", "bytes=999999999999-")...); resp.StatusCode != 416 {
			t.Errorf("huge Range = %d, want 416", resp.StatusCode)
		}
	})

	t.Run("corrupt upstream bytes never served", func(t *testing.T) {
		hub.SetFault(hubtest.Corrupt)
		defer hub.SetFault(hubtest.NoFault)
		// generation_config.json has not been downloaded yet.
		url := endpoint + "/" + hfRepo + "/resolve/" + hfCommit + "/generation_config.json"
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+hfUserAuth)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && rerr == nil {
				t.Errorf("a complete body (%d bytes) was served from corrupt upstream bytes", len(body))
			}
		}
	})

	pkg := hfJSClient(t)
	t.Run("@huggingface/hub listFiles, downloadFile, snapshotDownload", func(t *testing.T) {
		snap := t.TempDir()
		res, err := runHFJS(t, pkg, endpoint, hfUserAuth, hfRepo, snap)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Downloads) != len(files) {
			t.Errorf("downloaded %d files, want %d (listing %v)", len(res.Downloads), len(files), res.Files)
		}
		for _, f := range files {
			d := res.Downloads[f.Path]
			if d.SHA256 != sha256Hex(f.Data) || d.Size != int64(len(f.Data)) {
				t.Errorf("downloadFile %s: %+v", f.Path, d)
			}
			if res.Snapshot[f.Path] != sha256Hex(f.Data) {
				t.Errorf("snapshotDownload %s: %q", f.Path, res.Snapshot[f.Path])
			}
		}
		t.Logf("@huggingface/hub %s: listFiles %d entries, downloadFile %d files, snapshotDownload %d files", hfJSVer, len(res.Files), len(res.Downloads), len(res.Snapshot))
	})

	t.Run("@huggingface/transformers AutoConfig and AutoTokenizer", func(t *testing.T) {
		tjs := nodePackage(t, hfTJSPkg, hfTJSVer)
		script := filepath.Join(t.TempDir(), "tjs.cjs")
		if err := os.WriteFile(script, []byte(hfTJSScript), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("node", script)
		cmd.Env = append(os.Environ(), "TJS="+tjs, "HUB_URL="+endpoint, "HF_TOKEN="+hfUserAuth, "REPO="+hfRepo, "CACHE_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("node: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var got struct {
			ModelType string `json:"model_type"`
			IDs       []int  `json:"ids"`
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil || got.ModelType != "llama" || fmt.Sprint(got.IDs) != "[1 2 0]" {
			t.Errorf("transformers.js through Berth: %+v %v\n%s", got, err, out)
		}
	})

	t.Run("berth mirror warm --url hf://", func(t *testing.T) {
		out := run(t, []string{"BERTH_ADMIN_PASSWORD=" + auAdminPass}, berthBin, "mirror", "warm", "--url", "http://"+b.Addr, "--username", "admin", "hf://"+hfRepo+"@main")
		if !strings.Contains(out, "cached  hf://"+hfRepo+"@main model.safetensors ("+fmt.Sprint(hfBigSize)+" bytes)") ||
			!strings.Contains(out, "manifest hf://"+hfRepo+"@main sha256:") {
			t.Errorf("remote warm-up:\n%s", out)
		}
		// The ModelPack artifact is there, readable with the same credentials.
		req, _ := http.NewRequest("GET", b.URL("/v2/hf/hf-e2e/tiny-lm/manifests/main"), nil)
		req.SetBasicAuth("admin", auAdminPass)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "application/vnd.cncf.model.manifest.v1+json") {
			t.Errorf("GET /v2/hf/hf-e2e/tiny-lm/manifests/main = %d %s", resp.StatusCode, body)
		}
	})

	t.Run("upstream stopped: the cached revision still downloads", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond) // past revisionTTL
		hub.Hub.Close()
		hub.CDN.Close()
		res, err := runHFJS(t, pkg, endpoint, hfUserAuth, hfRepo, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if res.Downloads[f.Path].SHA256 != sha256Hex(f.Data) {
				t.Errorf("with the Hub stopped, %s: %+v", f.Path, res.Downloads[f.Path])
			}
		}
		resp, _ := hfGet(t, "HEAD", endpoint+"/"+hfRepo+"/resolve/main/config.json", append(auth, "Accept-Encoding", "identity")...)
		if resp.StatusCode != 200 || resp.Header.Get("X-Repo-Commit") != hfCommit {
			t.Errorf("HEAD with the Hub stopped = %d %v", resp.StatusCode, resp.Header)
		}
		if resp, _ := hfGet(t, "GET", endpoint+"/api/models/other/never-cached/revision/main", auth...); resp.StatusCode != 503 {
			t.Errorf("never cached with the Hub stopped = %d, want 503", resp.StatusCode)
		}
	})

	t.Run("bad input refused with 400", func(t *testing.T) {
		for _, p := range []string{
			"/" + hfRepo + "/resolve/main/..%2F..%2F..%2Fetc%2Fpasswd",
			"/" + hfRepo + "/resolve/main/a/%2E%2E/%2E%2E/b",
			"/..%2Fhf-e2e/x/resolve/main/config.json",
			"/" + hfRepo + "/resolve/..%2Fmain/config.json",
			"/api/models/" + hfRepo + "/revision/ma%00in",
		} {
			resp, body := hfGet(t, "GET", endpoint+p, auth...)
			if resp.StatusCode != 400 || !strings.Contains(string(body), `"error"`) {
				t.Errorf("GET %s = %d %s, want 400", p, resp.StatusCode, body)
			}
		}
	})

	logb, _ := os.ReadFile(b.logPath)
	if bytes.Contains(logb, []byte(hfUpToken)) {
		t.Errorf("berth's log carries the upstream token")
	}
}

// TestHFModelPack: berth mirror warm hf://org/model@main caches a revision and makes it
// a ModelPack artifact; with the Hub gone, oras pulls it from /v2/hf/... and its files
// equal the originals, the same bytes the HF_ENDPOINT clients get.
func TestHFModelPack(t *testing.T) {
	oras := requireTool(t, "oras")
	weights := make([]byte, 8<<20)
	_, _ = rand.Read(weights)
	files := []hubtest.File{
		{Path: "config.json", Data: []byte(`{"model_type":"llama"}`)},
		{Path: "README.md", Data: []byte("# Tiny-LM\n")},
		{Path: "model.safetensors", Data: weights, LFS: true},
		{Path: "onnx/model.onnx", Data: weights[:1<<20], LFS: true},
	}
	hub := hubtest.New(&hubtest.Repo{Type: "model", ID: hfRepo, Refs: map[string]string{"main": hfCommit}, Commits: map[string][]hubtest.File{hfCommit: files}})
	defer hub.Close()

	data := t.TempDir()
	cfg := "hf:\n  enabled: true\n  upstream: " + hub.Hub.URL + "\n  allowPrivateRedirects: true\n"
	cfgFile := filepath.Join(data, "warm.yaml")
	if err := os.WriteFile(cfgFile, []byte("log:\n  format: text\n"+cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(t, nil, berthBin, "mirror", "warm", "--config", cfgFile, "--data", data, "hf://"+hfRepo+"@main")
	if !strings.Contains(out, "ModelPack artifact hf/hf-e2e/tiny-lm@sha256:") || !strings.Contains(out, "model.safetensors: 8388608 bytes fetched") {
		t.Fatalf("berth mirror warm:\n%s", out)
	}
	// Warming again fetches nothing.
	hub.ResetLog()
	if out := run(t, nil, berthBin, "mirror", "warm", "--config", cfgFile, "--data", data, "hf://"+hfRepo+"@main"); !strings.Contains(out, "model.safetensors: 8388608 bytes already cached") || hub.Count("GET", "/repos/") != 0 {
		t.Errorf("second warm-up:\n%s", out)
	}
	if out, err := runErr(nil, berthBin, "mirror", "warm", "--config", cfgFile, "--data", data, "hf://../x@main"); err == nil || !strings.Contains(out, "repository id") {
		t.Errorf("a bad model reference: %v\n%s", err, out)
	}

	b := startBerth(t, BerthOptions{Config: cfg, Data: data})
	hub.Close() // offline: everything below comes from Berth's cache

	ref := b.Addr + "/hf/hf-e2e/tiny-lm"
	manifest := run(t, nil, oras, "manifest", "fetch", "--plain-http", ref+":main")
	for _, want := range []string{`"artifactType":"application/vnd.cncf.model.manifest.v1+json"`, `"application/vnd.cncf.model.config.v1+json"`,
		`"application/vnd.cncf.model.weight.v1.raw"`, `"org.cncf.model.filepath":"onnx/model.onnx"`} {
		if !strings.Contains(manifest, want) {
			t.Errorf("manifest lacks %s:\n%s", want, manifest)
		}
	}
	if byCommit := run(t, nil, oras, "manifest", "fetch", "--plain-http", ref+":"+hfCommit); byCommit != manifest {
		t.Errorf("the commit tag names another manifest")
	}
	dir := t.TempDir()
	run(t, nil, oras, "pull", "--plain-http", "-o", dir, ref+":main")
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("oras pull %s: %d bytes, %v", f.Path, len(got), err)
		}
		resp, body := hfGet(t, "GET", b.URL("/hf/"+hfRepo+"/resolve/main/"+f.Path))
		if resp.StatusCode != 200 || !bytes.Equal(body, f.Data) {
			t.Errorf("HF_ENDPOINT GET %s offline = %d", f.Path, resp.StatusCode)
		}
	}
	// The mirror's project is read-only over /v2/.
	pushDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(pushDir, "x.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runErrIn(pushDir, nil, oras, "push", "--plain-http", ref+":mine", "x.txt"); err == nil || !strings.Contains(out, "read-only mirror") {
		t.Errorf("oras push into hf/: %v\n%s", err, out)
	}
	cricBin(t)
	cenv := []string{"DOCKER_CONFIG=" + t.TempDir()}
	cdir := t.TempDir()
	cric(t, cenv, "model", "pull", ref+":main", cdir)
	for _, f := range files {
		if got, err := os.ReadFile(filepath.Join(cdir, f.Path)); err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("cric model pull %s: %d bytes, %v", f.Path, len(got), err)
		}
	}

	// Across an air gap: cric save on this side, cric load into another registry, the
	// same digest there.
	bundle := filepath.Join(t.TempDir(), "models.tar")
	cric(t, cenv, "save", ref+":main", "-o", bundle)
	other := startBerth(t, BerthOptions{})
	cric(t, cenv, "load", bundle, "--to", other.Addr+"/airgap")
	loaded := run(t, nil, oras, "manifest", "fetch", "--plain-http", other.Addr+"/airgap/hf/hf-e2e/tiny-lm:main")
	if loaded != manifest {
		t.Errorf("the loaded model's manifest differs:\n%s", loaded)
	}
	ldir := t.TempDir()
	cric(t, cenv, "model", "pull", other.Addr+"/airgap/hf/hf-e2e/tiny-lm:main", ldir)
	if got, _ := os.ReadFile(filepath.Join(ldir, "model.safetensors")); !bytes.Equal(got, weights) {
		t.Errorf("the loaded model's weights differ")
	}
}

// TestCricModel: cric model push of a model directory of several hundred MB, killed
// mid-upload, resumes (the shards already sent are skipped); cric model pull gives back
// the same files, and a pull run again keeps what is on disk.
func TestCricModel(t *testing.T) {
	cricBin(t)
	b := startBerth(t, BerthOptions{})
	env := []string{"DOCKER_CONFIG=" + t.TempDir()}
	src := t.TempDir()
	want := map[string][]byte{
		"config.json":    []byte(`{"model_type":"llama"}`),
		"README.md":      []byte("# model\n"),
		"tokenizer.json": []byte(hfTokenizer),
	}
	for i := 1; i <= 4; i++ {
		shard := make([]byte, 96<<20)
		_, _ = rand.Read(shard)
		want[fmt.Sprintf("weights/model-%05d-of-00004.safetensors", i)] = shard
	}
	for p, data := range want {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ref := b.Addr + "/models/tiny:v1"

	// Interrupted: killed once two shards are in.
	cmd := exec.Command(cricPath, "model", "push", "--jobs", "1", "--progress", "plain", src, ref)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for strings.Count(stderr.String(), "pushed  sha256:") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if strings.Count(stderr.String(), "pushed  sha256:") < 2 {
		t.Fatalf("the first push did not get two blobs in:\n%s", stderr.String())
	}

	oras := requireTool(t, "oras")
	if out, err := runErr(nil, oras, "manifest", "fetch", "--plain-http", ref); err == nil {
		t.Fatalf("the killed push completed anyway (kill came too late):\n%s", out)
	}

	// Run again: the blobs already there are skipped.
	stdout, errOut, code := cricExec(env, "model", "push", "--progress", "plain", src, ref)
	if code != 0 || !strings.Contains(errOut, "already present") {
		t.Fatalf("resumed push: exit %d\n%s\n%s", code, stdout, errOut)
	}
	manifest := run(t, nil, oras, "manifest", "fetch", "--plain-http", ref)
	if !strings.Contains(manifest, `"artifactType":"application/vnd.cncf.model.manifest.v1+json"`) ||
		!strings.Contains(manifest, `"org.cncf.model.filepath":"weights/model-00002-of-00004.safetensors"`) {
		t.Errorf("manifest:\n%s", manifest)
	}

	dst := t.TempDir()
	cric(t, env, "model", "pull", ref, dst)
	for p, data := range want {
		got, err := os.ReadFile(filepath.Join(dst, p))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("pulled %s: %d bytes, %v", p, len(got), err)
		}
	}
	if _, errOut, code := cricExec(env, "model", "pull", "--progress", "plain", ref, dst); code != 0 || strings.Count(errOut, "present") < len(want) {
		t.Errorf("pull again: exit %d, want every file kept\n%s", code, errOut)
	}
	if _, _, code := cricExec(env, "model", "pull", b.Addr+"/models/none:v1", t.TempDir()); code != 4 {
		t.Errorf("pull of a missing model: exit %d, want 4 (not found)", code)
	}
}
