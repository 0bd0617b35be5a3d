package e2e

// Edge preheat (issue 15): three berths on loopback, upstream → regional → edge, each
// tier a mirror of the one above; a webhook on the upstream announces pushes of prod/*
// to the edge, which warms them through the regional tier. Helpers are prefixed "ph".

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// phCount counts the access-log lines of b (all its processes) for method and path.
func phCount(t *testing.T, b *Berth, method, path string) int {
	t.Helper()
	n := 0
	for _, a := range rpAccessLog(t, b) {
		if a.method == method && a.path == path && a.status < 300 {
			n++
		}
	}
	return n
}

// TestPreheatThreeTier: a push to the upstream's prod/ project reaches the edge's cache
// within seconds — only v* tags and linux/amd64, as the edge asked — with each blob crossing each
// link once; a push outside the rule is not preheated; with the regional tier stopped,
// the edge still serves the preheated image, to crane and to containerd.
func TestPreheatThreeTier(t *testing.T) {
	requireTool(t, "crane")
	w := &cricWorld{env: toolEnv(t), dir: t.TempDir()}
	authCfg := "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword + "\n"
	up := startBerth(t, BerthOptions{Config: authCfg})
	regional := startBerth(t, BerthOptions{Config: `mirror:
  defaultUpstream: upstream.test
  upstreams:
    - name: upstream.test
      url: ` + up.URL("") + `
      username: admin
      password: ` + admPassword + `
      tagTTL: 1s
`})
	var key [32]byte
	_, _ = rand.Read(key[:])
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key[:])
	secretFile := filepath.Join(t.TempDir(), "preheat.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	edge := startBerth(t, BerthOptions{Config: `mirror:
  defaultUpstream: regional.test
  upstreams:
    - name: regional.test
      url: ` + regional.URL("") + `
      tagTTL: 1s
events:
  preheat:
    enabled: true
    secretFile: ` + secretFile + `
    upstream: regional.test
    platforms: [linux/amd64]
    tags: ["v*"]
`})
	run(t, w.env, "crane", "auth", "login", up.Addr, "-u", "admin", "-p", admPassword)
	admOK(t, up, "", "project", "create", "prod")
	admOK(t, up, "", "project", "create", "dev")
	// The preheat rule: pushes of prod/* announced to the edge.
	admOK(t, up, "", "webhook", "create", "edge-preheat", edge.URL("/preheat"), "--events", "artifact.pushed", "--repos", "prod/*", "--secret-file", secretFile)

	pushed := time.Now()
	digest, plats := rplMultiArch(t, w, up, "prod/app", "v1")
	run(t, w.env, "crane", "append", "--oci-empty-base", "-f", w.randomLayer(t, "dev", 3000), "-t", up.Addr+"/dev/app:v1")
	preheated := regexp.MustCompile(`msg=preheated image=regional.test/prod/app:v1 fetched=(\d+)`)
	var fetched string
	whWait(t, 30*time.Second, "the edge to preheat prod/app:v1", func() bool {
		for _, f := range phLogs(t, edge) {
			if m := preheated.FindStringSubmatch(f); m != nil {
				fetched = m[1]
				return true
			}
		}
		return false
	})
	t.Logf("edge holds prod/app:v1 (%s items fetched) %v after the push started", fetched, time.Since(pushed).Round(time.Millisecond))
	for _, f := range phLogs(t, edge) {
		if strings.Contains(f, "regional.test/dev/app") || strings.Contains(f, "regional.test/prod/app:build-") {
			t.Fatalf("preheated outside the rule: %s", f)
		}
	}

	// Each amd64 blob crossed each link once; arm64 stayed above.
	amd := plats["linux/amd64"]
	var man struct {
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(run(t, w.env, "crane", "manifest", up.Addr+"/prod/app@"+amd)), &man); err != nil || len(man.Layers) == 0 {
		t.Fatalf("amd64 manifest: %v", err)
	}
	var layers []string // the config was read by crane while building; the layers were not
	for _, l := range man.Layers {
		layers = append(layers, l.Digest)
	}
	for _, d := range layers {
		if n := phCount(t, up, "GET", "/v2/prod/app/blobs/"+d); n != 1 {
			t.Errorf("blob %s fetched %d times from the upstream, want 1", d, n)
		}
		if n := phCount(t, regional, "GET", "/v2/prod/app/blobs/"+d); n != 1 {
			t.Errorf("blob %s fetched %d times from the regional tier, want 1", d, n)
		}
	}

	// An announcement without a valid signature is refused.
	forged := []byte(`{"specversion":"1.0","id":"evt_x","source":"berth","type":"io.berth.artifact.pushed","data":{"repository":"prod/evil","tags":["v1"]}}`)
	res, _ := clHTTP(t, http.MethodPost, edge.URL("/preheat"), map[string]string{"Content-Type": "application/cloudevents+json",
		"webhook-id": "evt_x", "webhook-timestamp": strconv.FormatInt(time.Now().Unix(), 10), "webhook-signature": "v1,AAAA"}, forged)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged announcement: %s, want 401", res.Status)
	}

	// Cut off from its region, the edge serves what it has.
	regional.Stop()
	for _, ref := range []string{edge.Addr + "/prod/app:v1", edge.Addr + "/prod/app@" + digest} {
		if got := strings.TrimSpace(run(t, w.env, "crane", "digest", "--platform", "linux/amd64", ref)); got != amd {
			t.Fatalf("%s (linux/amd64) from the edge with the region down: %s, want %s", ref, got, amd)
		}
	}
	dir := t.TempDir()
	run(t, w.env, "crane", "pull", "--platform", "linux/amd64", "--format", "oci", edge.Addr+"/prod/app:v1", dir)
	// containerd, with the edge as its mirror for regional.test (hosts.toml, ?ns=).
	cd := miStartContainerd(t)
	hostsDir := filepath.Join(cd.dir, "certs.d")
	if err := os.MkdirAll(filepath.Join(hostsDir, "regional.test"), 0o755); err != nil {
		t.Fatal(err)
	}
	hosts := "server = \"https://regional.test\"\n\n[host.\"http://" + edge.Addr + "\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
	if err := os.WriteFile(filepath.Join(hostsDir, "regional.test", "hosts.toml"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	cd.mustCtr(t, "image", "pull", "--hosts-dir", hostsDir, "--platform", "linux/amd64", "regional.test/prod/app:v1")
	if out := cd.mustCtr(t, "image", "ls", "-q"); !strings.Contains(out, "regional.test/prod/app:v1") {
		t.Fatalf("containerd lists %q", out)
	}
	if _, err := runErr(w.env, "crane", "manifest", edge.Addr+"/prod/app@"+plats["linux/arm64"]); err == nil {
		t.Fatal("the edge holds linux/arm64, which it was not asked to preheat")
	}
}

// phLogs returns the lines of every log file b wrote.
func phLogs(t *testing.T, b *Berth) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(b.Data, "berth-*.log"))
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Split(string(data), "\n")...)
	}
	return out
}
