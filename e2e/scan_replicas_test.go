package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestScanReplicas: two replicas on PostgreSQL and S3, both scanning through the Harbor
// adapter, images pushed to one of them: every image is scanned exactly once (the jobs
// mechanism hands each scan to one replica), and either replica serves the reports and
// enforces the policy.
func TestScanReplicas(t *testing.T) {
	requireTool(t, "crane")
	requireTool(t, "oras")
	trivy := requireTool(t, "trivy")
	env := toolEnv(t)
	work := t.TempDir()
	a, scanCfg := shStartAdapter(t, trivy)
	s3 := rpStartS3(t)
	cfg := "database:\n  driver: postgres\n  dsn: " + postgresDSN(t) + "\n" + s3.Config(rpBucket) + scanCfg
	replicaEnv := []string{"BERTH_STORAGE_S3_PART_SIZE=" + strconv.Itoa(rpPartSize)}
	ra := startBerth(t, BerthOptions{Config: cfg, Env: replicaEnv})
	rb := startBerth(t, BerthOptions{Config: cfg, Env: replicaEnv})

	admOK(t, ra, "", "project", "create", "aquasecurity")
	admOK(t, ra, "", "project", "create", "team")
	v1 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	scPushDB(t, env, ra, scBuildTrivyDB(t, filepath.Join(work, "db"), v1,
		[]scAdvisory{{ID: "CVE-2099-0001", Severity: "HIGH", Title: "musl overflow", AlpinePkg: "musl", Fixed: "1.2.4-r3"}}))
	a.loadDB(t, ra, filepath.Join(work, "cache"), v1)
	admOK(t, rb, "", "scan", "policy", "set", "team", "--scan-on-push", "--mode", "enforce", "--severity", "HIGH")
	run(t, env, "crane", "auth", "login", ra.Addr, "-u", "admin", "-p", admPassword)

	const images = 6
	var digests []string
	for i := range images {
		musl := "1.2.4-r3"
		if i%2 == 0 {
			musl = "1.2.4-r2"
		}
		digests = append(digests, scPushImage(t, env, ra, fmt.Sprintf("team/app:%d", i), map[string]string{"musl": musl, "busybox": fmt.Sprintf("1.36.%d", i)}, ""))
	}
	for i, d := range digests {
		r := scWaitReport(t, rb, "team/app@"+d, time.Time{})
		if want := 1 - i%2; len(r.Findings) != want {
			t.Errorf("image %d: %d findings, want %d", i, len(r.Findings), want)
		}
	}

	// Each digest was scanned once, whichever replica ran it.
	reqs := a.Requests()
	var scanned []string
	by := map[string]int{}
	for _, r := range reqs {
		scanned = append(scanned, r.Digest)
		by[strings.TrimPrefix(r.RegistryURL, "http://")]++
	}
	slices.Sort(scanned)
	want := slices.Clone(digests)
	slices.Sort(want)
	if !slices.Equal(scanned, want) {
		t.Fatalf("adapter scanned %v, want each of %v once", scanned, want)
	}
	t.Logf("scans run by replica: %s %d, %s %d", ra.Addr, by[ra.Addr], rb.Addr, by[rb.Addr])

	// Both replicas enforce the policy from the shared reports.
	admOK(t, ra, "reader-password-e2e\n", "user", "add", "reader", "--new-password-stdin")
	admOK(t, ra, "", "member", "add", "team", "reader", "guest")
	for _, b := range []*Berth{ra, rb} {
		readerEnv := toolEnv(t)
		run(t, readerEnv, "crane", "auth", "login", b.Addr, "-u", "reader", "-p", "reader-password-e2e")
		if out, err := runErr(readerEnv, "crane", "manifest", "--insecure", b.Addr+"/team/app:0"); err == nil || !strings.Contains(out, "CVE-2099-0001") {
			t.Errorf("pull of the vulnerable image from %s: %v\n%s", b.Addr, err, out)
		}
		run(t, readerEnv, "crane", "manifest", "--insecure", b.Addr+"/team/app:1")
	}
	for _, v := range a.Violations() {
		t.Errorf("scanner API specification: %s", v)
	}
}
