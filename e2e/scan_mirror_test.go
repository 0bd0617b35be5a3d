package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScanMirror: a mirror upstream's scan policy covers what is mirrored from it: the
// first pull through the mirror caches the image and queues its scan (as a push does),
// and then enforce refuses the vulnerable image and serves the fixed one. Upstream
// policies are the system administrators' and name configured upstreams only.
func TestScanMirror(t *testing.T) {
	requireTool(t, "crane")
	requireTool(t, "oras")
	trivy := requireTool(t, "trivy")
	env := toolEnv(t)
	work := t.TempDir()

	up := startBerth(t, BerthOptions{})
	vuln := scPushImage(t, env, up, "team/app:vuln", map[string]string{"musl": "1.2.4-r2"}, "")
	scPushImage(t, env, up, "team/app:fixed", map[string]string{"musl": "1.2.4-r3"}, "")

	b := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword +
		"\nscan:\n  enabled: true\n  dbCheckInterval: 1s\n  trivy:\n    path: " + trivy +
		fmt.Sprintf("\nmirror:\n  upstreams:\n    - name: upstream.example\n      url: %s\n      timeout: 10s\n", up.URL(""))})
	admOK(t, b, "", "project", "create", "aquasecurity")
	scPushDB(t, env, b, scBuildTrivyDB(t, filepath.Join(work, "db"), time.Now().Add(-time.Hour).UTC().Truncate(time.Second),
		[]scAdvisory{{ID: "CVE-2099-0001", Severity: "HIGH", Title: "musl overflow", AlpinePkg: "musl", Fixed: "1.2.4-r3"}}))
	if msg := admFails(t, b, nil, "scan", "policy", "set", "nowhere.example", "--upstream", "--mode", "off"); !strings.Contains(msg, "not configured") {
		t.Fatalf("policy for an unknown upstream: %s", msg)
	}
	admOK(t, b, "", "scan", "policy", "set", "upstream.example", "--upstream", "--scan-on-push", "--mode", "enforce", "--severity", "HIGH")
	if out := admOK(t, b, "", "scan", "policy", "show", "upstream.example", "--upstream"); !strings.Contains(out, "upstream upstream.example") || !strings.Contains(out, "blocks HIGH") {
		t.Errorf("policy show --upstream: %s", out)
	}
	admOK(t, b, "reader-password-e2e\n", "user", "add", "reader", "--new-password-stdin")
	readerEnv := toolEnv(t)
	run(t, readerEnv, "crane", "auth", "login", b.Addr, "-u", "reader", "-p", "reader-password-e2e")

	// The first pull caches the manifest: that queues the scan.
	ref := b.Addr + "/upstream.example/team/app:vuln"
	if out, err := runErr(readerEnv, "crane", "manifest", "--insecure", ref); err != nil {
		t.Fatalf("first pull through the mirror: %v\n%s", err, out)
	}
	r := scWaitReport(t, b, "upstream.example/team/app@"+vuln, time.Time{})
	if got := r.ids(); len(got) != 1 || !strings.Contains(got[0], "CVE-2099-0001") {
		t.Fatalf("mirrored image: findings %v", got)
	}
	if out, err := runErr(readerEnv, "crane", "manifest", "--insecure", ref); err == nil || !strings.Contains(out, "DENIED") || !strings.Contains(out, "CVE-2099-0001") {
		t.Fatalf("pull of the scanned vulnerable mirrored image: %v\n%s", err, out)
	}
	// The fixed image: cached, scanned clean, served.
	fixedRef := b.Addr + "/upstream.example/team/app:fixed"
	run(t, readerEnv, "crane", "manifest", "--insecure", fixedRef)
	fixed := strings.TrimSpace(run(t, readerEnv, "crane", "digest", "--insecure", fixedRef))
	if rf := scWaitReport(t, b, "upstream.example/team/app@"+fixed, time.Time{}); len(rf.Findings) != 0 {
		t.Fatalf("fixed mirrored image: %v", rf.ids())
	}
	run(t, readerEnv, "crane", "manifest", "--insecure", fixedRef)
}
