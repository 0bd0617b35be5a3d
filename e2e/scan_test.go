package e2e

// Vulnerability scanning with Trivy (issue 11): a real berth with auth, a real trivy
// reading a small real vulnerability database that lives in berth itself (pushed with
// oras, as trivy-db is published), images pushed with crane.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// scReport is what `berth admin scan report --json` prints.
type scReport struct {
	Status      string
	Error       string
	DBUpdatedAt time.Time
	Findings    []struct {
		ID, Severity, Package, InstalledVersion, FixedVersion, Target, Layer string
	}
}

func (r scReport) ids() []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.Severity+" "+f.ID+" "+f.Package+" "+f.InstalledVersion+"->"+f.FixedVersion)
	}
	slices.Sort(out)
	return out
}

// scWaitReport polls until ref's report is ok (and, when after is set, made with a
// database built after it).
func scWaitReport(t *testing.T, b *Berth, ref string, after time.Time) scReport {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _, err := admCLI(b, nil, "", "scan", "report", ref, "--json")
		var r scReport
		if err == nil && json.Unmarshal([]byte(out), &r) == nil {
			if r.Status == "failed" {
				t.Fatalf("scan of %s failed: %s", ref, r.Error)
			}
			if r.Status == "ok" && r.DBUpdatedAt.After(after) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scan report for %s after 2 minutes (last: %s)", ref, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scPushDB pushes a database archive into berth as trivy-db is published.
func scPushDB(t *testing.T, env []string, b *Berth, dbPath string) {
	t.Helper()
	if out, err := runErrIn(filepath.Dir(dbPath), env, "oras", "push", "--plain-http", "-u", "admin", "-p", admPassword,
		"--artifact-type", "application/vnd.aquasec.trivy.config.v1+json", b.Addr+"/aquasecurity/trivy-db:2",
		filepath.Base(dbPath)+":application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"); err != nil {
		t.Fatalf("oras push of the database: %v\n%s", err, out)
	}
}

// scPushImage pushes an image of one layer (an Alpine package database, and the Go
// program when app is set) with crane and returns its digest.
func scPushImage(t *testing.T, env []string, b *Berth, ref string, pkgs map[string]string, app string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	if app != "" {
		files["usr/bin/app"] = app
	}
	layer := filepath.Join(dir, "layer.tar.gz")
	scTarGz(t, layer, files, map[string]string{"etc/alpine-release": "3.19.1\n", "lib/apk/db/installed": scApkInstalled(pkgs)})
	// crane append prints the pushed reference by digest (asking for it again could be
	// refused: the image may be blocked until scanned).
	out := strings.TrimSpace(run(t, env, "crane", "append", "--insecure", "-f", layer, "-t", b.Addr+"/"+ref))
	_, digest, ok := strings.Cut(out[strings.LastIndexByte(out, '\n')+1:], "@")
	if !ok {
		t.Fatalf("crane append printed no digest: %s", out)
	}
	return digest
}

// scBlobGets counts the blob reads of repository repo in berth's access log.
func scBlobGets(t *testing.T, b *Berth, repo string) int {
	t.Helper()
	log, err := os.ReadFile(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(log), "method=GET path=/v2/"+repo+"/blobs/")
}

// TestScanTrivy: scan on push reports exactly the database's advisories for a
// vulnerable image and none for a fixed one; enforce refuses the vulnerable image at
// pull with DENIED naming the findings, an allowance lets it through until it expires,
// warn serves it with an audit entry, unscanned images can be blocked; a newer database
// pushed into berth re-evaluates the stored SBOMs without reading a layer again, and
// the registry answers which images hold a vulnerability.
func TestScanTrivy(t *testing.T) {
	requireTool(t, "crane")
	requireTool(t, "oras")
	trivy := requireTool(t, "trivy")
	env := toolEnv(t)
	work := t.TempDir()
	v1 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	advisories := []scAdvisory{
		{ID: "CVE-2099-0001", Severity: "HIGH", Title: "musl overflow", AlpinePkg: "musl", Fixed: "1.2.4-r3"},
		{ID: "GHSA-berth-0001", Severity: "CRITICAL", Title: "x/sync race", GoModule: "golang.org/x/sync", Patched: []string{"0.99.0"}},
	}
	db1 := scBuildTrivyDB(t, filepath.Join(work, "db1"), v1, advisories)

	b := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword +
		"\nscan:\n  enabled: true\n  dbCheckInterval: 1s\n  trivy:\n    path: " + trivy + "\n"})
	admOK(t, b, "", "project", "create", "aquasecurity")
	admOK(t, b, "", "project", "create", "team")
	admOK(t, b, "reader-password-e2e\n", "user", "add", "reader", "--new-password-stdin")
	admOK(t, b, "", "member", "add", "team", "reader", "guest")
	scPushDB(t, env, b, db1)
	run(t, env, "crane", "auth", "login", b.Addr, "-u", "admin", "-p", admPassword)
	readerEnv := toolEnv(t)
	run(t, readerEnv, "crane", "auth", "login", b.Addr, "-u", "reader", "-p", "reader-password-e2e")

	admOK(t, b, "", "scan", "policy", "set", "team", "--scan-on-push", "--mode", "enforce", "--severity", "HIGH")
	app, syncVersion := scGoBinary(t)
	vuln := scPushImage(t, env, b, "team/app:vuln", map[string]string{"musl": "1.2.4-r2", "busybox": "1.36.1-r15"}, app)
	fixed := scPushImage(t, env, b, "team/app:fixed", map[string]string{"musl": "1.2.4-r3", "busybox": "1.36.1-r15"}, "")

	start := time.Now()
	rv := scWaitReport(t, b, "team/app@"+vuln, time.Time{})
	t.Logf("push to scan result: %v", time.Since(start).Round(time.Millisecond))
	want := []string{"CRITICAL GHSA-berth-0001 golang.org/x/sync " + syncVersion + "->0.99.0", "HIGH CVE-2099-0001 musl 1.2.4-r2->1.2.4-r3"}
	if got := rv.ids(); !slices.Equal(got, want) {
		t.Fatalf("vulnerable image: findings %v, want %v", got, want)
	}
	if !rv.DBUpdatedAt.Equal(v1) {
		t.Errorf("report made with the database of %v, want %v", rv.DBUpdatedAt, v1)
	}
	for _, f := range rv.Findings {
		if !strings.HasPrefix(f.Layer, "sha256:") {
			t.Errorf("finding %s names no layer: %+v", f.ID, f)
		}
	}
	if rf := scWaitReport(t, b, "team/app@"+fixed, time.Time{}); len(rf.Findings) != 0 {
		t.Fatalf("fixed image: findings %v, want none", rf.ids())
	}
	// The web UI's manifest page shows the findings.
	web, _ := uiLogin(t, b.URL(""), "admin", admPassword)
	page := uiGet(t, web, b.URL("/r/team/app@"+vuln))
	for _, want := range []string{`id="findings"`, "GHSA-berth-0001", "CVE-2099-0001", "1 critical", "1 high"} {
		if !strings.Contains(page, want) {
			t.Errorf("the UI's page of the vulnerable image lacks %q", want)
		}
	}

	// enforce: the reader cannot pull the vulnerable image, by tag or digest; the fixed
	// one pulls.
	for _, ref := range []string{"team/app:vuln", "team/app@" + vuln} {
		out, err := runErr(readerEnv, "crane", "manifest", "--insecure", b.Addr+"/"+ref)
		if err == nil || !strings.Contains(out, "DENIED") || !strings.Contains(out, "GHSA-berth-0001") || !strings.Contains(out, "scan policy of project team") {
			t.Fatalf("pull of %s under enforce: %v\n%s", ref, err, out)
		}
	}
	run(t, readerEnv, "crane", "pull", "--insecure", "--format", "oci", b.Addr+"/team/app:fixed", filepath.Join(work, "fixed"))

	// Allowed: both findings allow-listed; an expired allowance blocks again.
	admOK(t, b, "", "scan", "policy", "set", "team", "--scan-on-push", "--mode", "enforce", "--severity", "HIGH",
		"--allow", "GHSA-berth-0001=no fix released yet", "--allow", "CVE-2099-0001=not reachable@2099-01-01")
	run(t, readerEnv, "crane", "pull", "--insecure", "--format", "oci", b.Addr+"/team/app:vuln", filepath.Join(work, "allowed"))
	admOK(t, b, "", "scan", "policy", "set", "team", "--scan-on-push", "--mode", "enforce", "--severity", "HIGH",
		"--allow", "GHSA-berth-0001=no fix released yet", "--allow", "CVE-2099-0001=not reachable@2020-01-01")
	if out, err := runErr(readerEnv, "crane", "manifest", "--insecure", b.Addr+"/team/app:vuln"); err == nil || !strings.Contains(out, "CVE-2099-0001") || strings.Contains(out, "GHSA-berth-0001") {
		t.Fatalf("pull with an expired allowance: %v\n%s", err, out)
	}
	// CRITICAL only: the HIGH finding no longer blocks, the CRITICAL one does.
	admOK(t, b, "", "scan", "policy", "set", "team", "--mode", "enforce", "--severity", "CRITICAL")
	if out, err := runErr(readerEnv, "crane", "manifest", "--insecure", b.Addr+"/team/app:vuln"); err == nil || !strings.Contains(out, "1 vulnerabilities at CRITICAL") {
		t.Fatalf("pull under severity CRITICAL: %v\n%s", err, out)
	}

	// warn: served, audited once.
	admOK(t, b, "", "scan", "policy", "set", "team", "--mode", "warn", "--severity", "HIGH")
	run(t, readerEnv, "crane", "manifest", "--insecure", b.Addr+"/team/app:vuln")
	run(t, readerEnv, "crane", "manifest", "--insecure", b.Addr+"/team/app:vuln")
	var audit admAudit
	admJSON(t, b, &audit, "audit", "--action", "scan.warn")
	if len(audit.Entries) != 1 || audit.Entries[0].Resource != "team/app@"+vuln || !strings.Contains(audit.Entries[0].Detail, "GHSA-berth-0001") {
		t.Fatalf("warn mode audit: %+v, want one scan.warn entry for team/app@%s", audit.Entries, vuln)
	}

	// Unscanned images blocked: pushed without scan on push, the pull is refused and
	// queues the scan; once scanned (no findings) it pulls.
	admOK(t, b, "", "scan", "policy", "set", "team", "--mode", "enforce", "--severity", "HIGH", "--block-unscanned")
	late := scPushImage(t, env, b, "team/app:late", map[string]string{"musl": "1.2.4-r3"}, "")
	if out, err := runErr(readerEnv, "crane", "manifest", "--insecure", b.Addr+"/team/app:late"); err == nil || !strings.Contains(out, "not been scanned yet") {
		t.Fatalf("pull of an unscanned image: %v\n%s", err, out)
	}
	scWaitReport(t, b, "team/app@"+late, time.Time{})
	time.Sleep(5 * time.Second) // the replica's verdict cache (scan.CacheTTL)
	run(t, readerEnv, "crane", "manifest", "--insecure", b.Addr+"/team/app:late")

	// A newer database with a busybox advisory: the stored SBOMs are evaluated again,
	// without reading any layer of team/app.
	blobReads := scBlobGets(t, b, "team/app")
	v2 := v1.Add(30 * time.Minute)
	db2 := scBuildTrivyDB(t, filepath.Join(work, "db2"), v2, append(advisories,
		scAdvisory{ID: "CVE-2099-0002", Severity: "MEDIUM", Title: "busybox bug", AlpinePkg: "busybox", Fixed: "1.36.1-r16"}))
	scPushDB(t, env, b, db2)
	rf := scWaitReport(t, b, "team/app@"+fixed, v1)
	if got := rf.ids(); !slices.Equal(got, []string{"MEDIUM CVE-2099-0002 busybox 1.36.1-r15->1.36.1-r16"}) {
		t.Fatalf("fixed image after the database update: %v", got)
	}
	if rv := scWaitReport(t, b, "team/app@"+vuln, v1); len(rv.Findings) != 3 {
		t.Fatalf("vulnerable image after the database update: %v", rv.ids())
	}
	if n := scBlobGets(t, b, "team/app"); n != blobReads {
		t.Fatalf("re-evaluation read %d blobs of team/app, want none", n-blobReads)
	}
	if out := admOK(t, b, "", "scan", "db"); !strings.Contains(out, "aquasecurity/trivy-db:2") || strings.Contains(out, "STALE") {
		t.Errorf("scan db: %s", out)
	}

	// Which images hold CVE-2099-0002: all three (late has busybox too).
	out := admOK(t, b, "", "scan", "cve", "CVE-2099-0002")
	for _, d := range []string{vuln, fixed} {
		if !strings.Contains(out, d) {
			t.Errorf("scan cve CVE-2099-0002 lacks %s:\n%s", d, out)
		}
	}
	if strings.Contains(out, late) {
		t.Errorf("scan cve lists %s, which has no busybox:\n%s", late, out)
	}
}
