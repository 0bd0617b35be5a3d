package e2e

// Vulnerability scanning through Harbor's pluggable scanner API (issue 11): berth talks
// to a scanner adapter on loopback that follows the published API (package
// scannertest, every request and answer validated against the spec's OpenAPI
// document). Like Harbor's Trivy adapter, it pulls the image from berth with the
// token berth hands it and scans it with a real trivy, keeping its own copy of the
// vulnerability database.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/scan/scannertest"
)

// shAdapter is a Trivy adapter: scannertest serving the API, trivy scanning.
type shAdapter struct {
	*scannertest.Server
	trivy string
	env   []string
	url   string
	db    atomic.Pointer[string] // the database copy scans read
}

// loadDB downloads the database from berth with the adapter's own credentials, as an
// adapter updates its database, and announces its build time.
func (a *shAdapter) loadDB(t *testing.T, b *Berth, dir string, updated time.Time) {
	t.Helper()
	if out, err := runErr(append(a.env, "TRIVY_USERNAME=admin", "TRIVY_PASSWORD="+admPassword), a.trivy, "image", "--quiet",
		"--download-db-only", "--db-repository", b.Addr+"/aquasecurity/trivy-db:2", "--cache-dir", dir); err != nil {
		t.Fatalf("adapter: download the database: %v\n%s", err, out)
	}
	a.db.Store(&dir)
	a.SetDBUpdatedAt(updated)
}

// scan runs trivy on the requested image with the registry credential of the request.
func (a *shAdapter) scan(ctx context.Context, r scannertest.Request) (scannertest.Result, error) {
	token, ok := strings.CutPrefix(r.Authorization, "Bearer ")
	if !ok {
		return scannertest.Result{}, fmt.Errorf("want a bearer token for the registry, got %q", r.Authorization)
	}
	host := strings.TrimPrefix(strings.TrimPrefix(r.RegistryURL, "http://"), "https://")
	cmd := exec.CommandContext(ctx, a.trivy, "image", "--quiet", "--format", "json", "--image-src", "remote", "--cache-dir", *a.db.Load(),
		"--cache-backend", "memory", "--skip-db-update", "--skip-java-db-update", "--offline-scan", "--scanners", "vuln",
		host+"/"+r.Repository+"@"+r.Digest)
	cmd.Env = append(os.Environ(), append(a.env, "TRIVY_REGISTRY_TOKEN="+token)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return scannertest.Result{}, fmt.Errorf("trivy: %v: %s", err, stderr.String())
	}
	var rep struct {
		Results []struct {
			Vulnerabilities []struct {
				VulnerabilityID, PkgName, InstalledVersion, FixedVersion, Severity, Title string
			}
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return scannertest.Result{}, err
	}
	var res scannertest.Result
	for _, r := range rep.Results {
		for _, v := range r.Vulnerabilities {
			// Harbor's severities are capitalised words.
			sev := strings.ToUpper(v.Severity[:1]) + strings.ToLower(v.Severity[1:])
			res.Vulnerabilities = append(res.Vulnerabilities, scannertest.Vulnerability{ID: v.VulnerabilityID, Package: v.PkgName,
				Version: v.InstalledVersion, FixVersion: v.FixedVersion, Severity: sev, Description: v.Title})
		}
	}
	return res, nil
}

// shStartAdapter starts the adapter on loopback; cfg is a berth configuration with
// authentication and scanning through it.
func shStartAdapter(t *testing.T, trivy string) (a *shAdapter, cfg string) {
	t.Helper()
	a = &shAdapter{trivy: trivy, env: append(toolEnv(t), "TRIVY_INSECURE=true", "TRIVY_NO_PROGRESS=true", "TRIVY_DISABLE_TELEMETRY=true")}
	srv, err := scannertest.New(a.scan)
	if err != nil {
		t.Fatal(err)
	}
	a.Server = srv
	a.SBOM = false
	a.Auth = "Bearer adapter-secret-e2e"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(a)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	a.url = hs.URL
	return a, "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword +
		"\nscan:\n  enabled: true\n  engine: harbor\n  dbCheckInterval: 1s\n  harbor:\n    url: " + hs.URL +
		"\n    authorization: Bearer adapter-secret-e2e\n"
}

// TestScanHarborAdapter: with scan.engine harbor, a push is scanned by the adapter with a
// pull-only token that grants nothing else; the report is stored with the adapter's
// engine name; enforce refuses the vulnerable image to crane and containerd and serves
// the fixed one; when the adapter's database moves, berth scans again and the new
// finding appears; nothing berth sent departed from the API specification.
func TestScanHarborAdapter(t *testing.T) {
	requireTool(t, "crane")
	requireTool(t, "oras")
	trivy := requireTool(t, "trivy")
	env := toolEnv(t)
	work := t.TempDir()

	a, cfg := shStartAdapter(t, trivy)
	b := startBerth(t, BerthOptions{Config: cfg})
	admOK(t, b, "", "project", "create", "aquasecurity")
	admOK(t, b, "", "project", "create", "team")
	admOK(t, b, "", "project", "create", "other")
	admOK(t, b, "reader-password-e2e\n", "user", "add", "reader", "--new-password-stdin")
	admOK(t, b, "", "member", "add", "team", "reader", "guest")
	if out := admOK(t, b, "", "scan", "db"); !strings.Contains(out, "scanner adapter "+a.url) {
		t.Errorf("scan db does not name the adapter:\n%s", out)
	}

	v1 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	advisories := []scAdvisory{{ID: "CVE-2099-0001", Severity: "HIGH", Title: "musl overflow", AlpinePkg: "musl", Fixed: "1.2.4-r3"}}
	scPushDB(t, env, b, scBuildTrivyDB(t, filepath.Join(work, "db1"), v1, advisories))
	a.loadDB(t, b, filepath.Join(work, "cache1"), v1)
	run(t, env, "crane", "auth", "login", b.Addr, "-u", "admin", "-p", admPassword)
	readerEnv := toolEnv(t)
	run(t, readerEnv, "crane", "auth", "login", b.Addr, "-u", "reader", "-p", "reader-password-e2e")
	run(t, env, "crane", "copy", "--insecure", b.Addr+"/aquasecurity/trivy-db:2", b.Addr+"/other/secret:1")

	admOK(t, b, "", "scan", "policy", "set", "team", "--scan-on-push", "--mode", "enforce", "--severity", "HIGH")
	vuln := scPushImage(t, env, b, "team/app:vuln", map[string]string{"musl": "1.2.4-r2", "busybox": "1.36.1-r15"}, "")
	fixed := scPushImage(t, env, b, "team/app:fixed", map[string]string{"musl": "1.2.4-r3", "busybox": "1.36.1-r15"}, "")

	start := time.Now()
	rv := scWaitReport(t, b, "team/app@"+vuln, time.Time{})
	t.Logf("push to scan result through the adapter: %v", time.Since(start).Round(time.Millisecond))
	if got, want := rv.ids(), []string{"HIGH CVE-2099-0001 musl 1.2.4-r2->1.2.4-r3"}; !slices.Equal(got, want) {
		t.Fatalf("vulnerable image: findings %v, want %v", got, want)
	}
	if rf := scWaitReport(t, b, "team/app@"+fixed, time.Time{}); len(rf.Findings) != 0 {
		t.Fatalf("fixed image: findings %v, want none", rf.ids())
	}
	var full struct{ Engine string }
	admJSON(t, b, &full, "scan", "report", "team/app@"+vuln)
	if full.Engine != "Berth test adapter 1.2.0 (Berth)" {
		t.Errorf("report engine %q", full.Engine)
	}

	// The project's listing puts the vulnerable image first; the report exports as SARIF.
	var listed struct {
		Artifacts []struct {
			Digest  string
			Summary struct{ High int }
		}
	}
	admJSON(t, b, &listed, "scan", "list", "team")
	if len(listed.Artifacts) != 2 || listed.Artifacts[0].Digest != vuln || listed.Artifacts[0].Summary.High != 1 || listed.Artifacts[1].Digest != fixed {
		t.Errorf("scan list team: %+v", listed.Artifacts)
	}
	var sarif struct {
		Version string
		Runs    []struct {
			Results []struct{ RuleID, Level string }
		}
	}
	if err := json.Unmarshal([]byte(admOK(t, b, "", "scan", "report", "team/app@"+vuln, "--sarif")), &sarif); err != nil ||
		sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) != 1 || sarif.Runs[0].Results[0].RuleID != "CVE-2099-0001" || sarif.Runs[0].Results[0].Level != "error" {
		t.Errorf("scan report --sarif: %v %+v", err, sarif)
	}

	// The adapter's registry credential pulls the scanned image and nothing else.
	reqs := a.Requests()
	if len(reqs) < 2 {
		t.Fatalf("adapter saw %d scan requests", len(reqs))
	}
	tokenDo := func(method, path string) int {
		req, _ := http.NewRequest(method, reqs[0].RegistryURL+path, nil)
		req.Header.Set("Authorization", reqs[0].Authorization)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := tokenDo(http.MethodGet, "/v2/"+reqs[0].Repository+"/manifests/"+reqs[0].Digest); s != http.StatusOK {
		t.Errorf("adapter token: pull of the scanned image = %d", s)
	}
	if s := tokenDo(http.MethodPost, "/v2/team/app/blobs/uploads/"); s != http.StatusUnauthorized && s != http.StatusForbidden {
		t.Errorf("adapter token: push = %d, want refused", s)
	}
	if s := tokenDo(http.MethodGet, "/v2/other/secret/manifests/1"); s != http.StatusUnauthorized && s != http.StatusForbidden {
		t.Errorf("adapter token: pull of another project = %d, want refused", s)
	}

	// enforce: crane and containerd are refused the vulnerable image, get the fixed one.
	if out, err := runErr(readerEnv, "crane", "manifest", "--insecure", b.Addr+"/team/app:vuln"); err == nil || !strings.Contains(out, "DENIED") || !strings.Contains(out, "CVE-2099-0001") {
		t.Fatalf("crane pull under enforce: %v\n%s", err, out)
	}
	cd := miStartContainerd(t)
	if out, err := cd.ctr("image", "pull", "--plain-http", "-u", "reader:reader-password-e2e", b.Addr+"/team/app:vuln"); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("containerd pull under enforce: %v\n%s", err, out)
	}
	cd.mustCtr(t, "image", "pull", "--plain-http", "-u", "reader:reader-password-e2e", b.Addr+"/team/app:fixed")

	// The adapter's database moves: berth sees the newer build time in the metadata and
	// scans both images again.
	v2 := v1.Add(30 * time.Minute)
	scPushDB(t, env, b, scBuildTrivyDB(t, filepath.Join(work, "db2"), v2, append(advisories,
		scAdvisory{ID: "CVE-2099-0002", Severity: "MEDIUM", Title: "busybox bug", AlpinePkg: "busybox", Fixed: "1.36.1-r16"})))
	a.loadDB(t, b, filepath.Join(work, "cache2"), v2)
	rf := scWaitReport(t, b, "team/app@"+fixed, v1)
	if got := rf.ids(); !slices.Equal(got, []string{"MEDIUM CVE-2099-0002 busybox 1.36.1-r15->1.36.1-r16"}) {
		t.Fatalf("fixed image after the adapter's database update: %v", got)
	}
	if rv := scWaitReport(t, b, "team/app@"+vuln, v1); len(rv.Findings) != 2 {
		t.Fatalf("vulnerable image after the adapter's database update: %v", rv.ids())
	}
	for _, v := range a.Violations() {
		t.Errorf("scanner API specification: %s", v)
	}
}
