package e2e

// Replication (issue 15): rules on a berth with auth on push to a second berth and to
// CNCF Distribution 3.1.2 (htpasswd), and pull from Distribution back, checked with
// crane, oras and cosign on the destinations. Helpers are prefixed "rpl".

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

type rplRule struct {
	ID int64 `json:"id"`
}

type rplExecution struct {
	ID     int64  `json:"id"`
	Cause  string `json:"cause"`
	State  string `json:"state"`
	Copied int    `json:"copied"`
	Failed int    `json:"failed"`
	Error  string `json:"error"`
	Items  []struct {
		Source      string `json:"source"`
		Destination string `json:"destination"`
		Digest      string `json:"digest"`
		State       string `json:"state"`
		Referrers   int    `json:"referrers"`
		Error       string `json:"error"`
	} `json:"items"`
}

// rplMultiArch builds an index of linux/amd64 and linux/arm64 images on b (auth on,
// crane logged in) and returns its digest and the platform manifests' digests.
func rplMultiArch(t *testing.T, w *cricWorld, b *Berth, repo, tag string) (string, map[string]string) {
	t.Helper()
	ref := b.Addr + "/" + repo + ":" + tag
	plats := map[string]string{}
	var ms []string
	for _, arch := range []string{"amd64", "arm64"} {
		layer := w.randomLayer(t, "rpl-"+arch+"-"+tag, 96<<10)
		base := b.Addr + "/" + repo + ":build-" + tag + "-" + arch // outside the rules' v* filters
		tmp := base + "-tmp"
		run(t, w.env, "crane", "append", "--oci-empty-base", "-f", layer, "-t", tmp)
		archRef := base
		run(t, w.env, "crane", "mutate", tmp, "--set-platform", "linux/"+arch, "-t", archRef)
		plats["linux/"+arch] = strings.TrimSpace(run(t, w.env, "crane", "digest", archRef))
		ms = append(ms, "-m", archRef)
	}
	run(t, w.env, "crane", append(append([]string{"index", "append"}, ms...), "-t", ref)...)
	var idx map[string]any
	if err := json.Unmarshal([]byte(run(t, w.env, "crane", "manifest", ref)), &idx); err != nil {
		t.Fatal(err)
	}
	for _, m := range idx["manifests"].([]any) {
		delete(m.(map[string]any), "artifactType") // pitfall 4
	}
	body, _ := json.Marshal(idx)
	req, _ := http.NewRequest(http.MethodPut, b.URL("/v2/"+repo+"/manifests/"+tag), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	req.SetBasicAuth("admin", admPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("re-PUT of the index: %s", resp.Status)
	}
	return cricSHA(body), plats
}

// rplReferrerTypes lists the artifact types oras discovers for ref.
func rplReferrerTypes(t *testing.T, env []string, ref string) []string {
	t.Helper()
	out := run(t, env, "oras", "discover", "--plain-http", "--format", "json", ref)
	var d struct {
		Referrers []struct {
			ArtifactType string `json:"artifactType"`
		} `json:"referrers"`
		Manifests []struct {
			ArtifactType string `json:"artifactType"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("oras discover %s: %v\n%s", ref, err, out)
	}
	var types []string
	for _, r := range append(d.Referrers, d.Manifests...) {
		types = append(types, r.ArtifactType)
	}
	return types
}

func rplWaitExecution(t *testing.T, b *Berth, rule int64, timeout time.Duration, ok func(rplExecution) bool) rplExecution {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var es []rplExecution
		admJSON(t, b, &es, "replication", "executions", strconv.FormatInt(rule, 10))
		for _, e := range es {
			if e.State != "running" && ok(e) {
				var full rplExecution
				admJSON(t, b, &full, "replication", "execution", strconv.FormatInt(e.ID, 10))
				return full
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("rule %d: no matching execution after %v: %+v", rule, timeout, es)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rplRestart kills Distribution and starts it again on the same address and data.
func rplRestart(t *testing.T, d *distribution, stopped func()) {
	t.Helper()
	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
	stopped()
	logf, err := os.OpenFile(d.log, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(d.cmd.Path, d.cmd.Args[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = d.cmd.Env, logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	d.cmd = cmd
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := http.Get("http://" + d.Addr + "/v2/"); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("distribution did not come back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplication: a signed multi-arch image with an SBOM on berth A is replicated
// whole — same digests, every platform, signature and SBOM discoverable — to berth B
// (push rule, by hand and on push within seconds) and to Distribution (push rule through
// the referrers tag schema), and pulled back from Distribution into A under a prefix by
// schedule; filters are honoured; a replication to a destination that is down fails
// visibly and completes once it is back; executions list per-artifact results.
func TestReplication(t *testing.T) {
	for _, tool := range []string{"crane", "oras", "cosign"} {
		requireTool(t, tool)
	}
	w := &cricWorld{dist: startDistribution(t), env: append(toolEnv(t), "COSIGN_PASSWORD=e2e-key-pass"), dir: t.TempDir()}
	w.home = strings.TrimPrefix(w.env[0], "HOME=")
	authCfg := "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword + "\n"
	a := startBerth(t, BerthOptions{Config: authCfg})
	bb := startBerth(t, BerthOptions{Config: authCfg})
	admOK(t, a, "", "project", "create", "team")
	for _, reg := range []string{a.Addr, bb.Addr} {
		run(t, w.env, "crane", "auth", "login", reg, "-u", "admin", "-p", admPassword)
	}
	run(t, w.env, "crane", "auth", "login", w.dist.Addr, "-u", cricUser, "-p", cricPass)

	// The image: an index of two platforms, signed with cosign (a referrer of the
	// index), with an SBOM attached by oras.
	digest, plats := rplMultiArch(t, w, a, "team/app", "v1")
	if out, err := runErrIn(w.dir, w.env, "cosign", "generate-key-pair", "--output-key-prefix", "rpl"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	key, pub := filepath.Join(w.dir, "rpl.key"), filepath.Join(w.dir, "rpl.pub")
	run(t, w.env, "cosign", "sign", "--key", key, "--tlog-upload=false", "--use-signing-config=false", "--allow-http-registry", "-y", a.Addr+"/team/app@"+digest)
	if err := os.WriteFile(filepath.Join(w.dir, "sbom.spdx.json"), []byte(`{"spdxVersion":"SPDX-2.3","name":"app"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runErrIn(w.dir, w.env, "oras", "attach", "--plain-http", "--artifact-type", "application/spdx+json", a.Addr+"/team/app:v1", "sbom.spdx.json:application/spdx+json"); err != nil {
		t.Fatalf("oras attach: %v\n%s", err, out)
	}
	srcTypes := rplReferrerTypes(t, w.env, a.Addr+"/team/app:v1")
	if len(srcTypes) != 2 {
		t.Fatalf("source referrers %v, want a signature and an SBOM", srcTypes)
	}
	// Another repository and a tag the filters leave out.
	run(t, w.env, "crane", "append", "--oci-empty-base", "-f", w.randomLayer(t, "other", 1000), "-t", a.Addr+"/team/other:v1")
	run(t, w.env, "crane", "append", "--oci-empty-base", "-f", w.randomLayer(t, "dev", 1000), "-t", a.Addr+"/team/app:dev")

	pw := filepath.Join(w.dir, "pw")
	if err := os.WriteFile(pw, []byte(admPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	distPw := filepath.Join(w.dir, "distpw")
	if err := os.WriteFile(distPw, []byte(cricPass), 0o600); err != nil {
		t.Fatal(err)
	}

	// Berth A → berth B, by hand and on push.
	var toB rplRule
	admJSON(t, a, &toB, "replication", "create", "to-b", "--push", "--remote", "http://"+bb.Addr, "--username", "admin", "--password-file", pw,
		"--repos", "team/app", "--tags", "v*", "--on-push", "--propagate-deletes")
	if out := admOK(t, a, "", "replication", "list", "--json"); strings.Contains(out, admPassword) {
		t.Fatal("the remote password is shown")
	}
	start := time.Now()
	admOK(t, a, "", "replication", "run", strconv.FormatInt(toB.ID, 10))
	ex := rplWaitExecution(t, a, toB.ID, 60*time.Second, func(e rplExecution) bool { return e.Cause == "manual" })
	if ex.State != "succeeded" || ex.Copied != 1 || len(ex.Items) != 1 || ex.Items[0].Digest != digest || ex.Items[0].Referrers != 2 {
		t.Fatalf("manual execution %+v: want team/app:v1 (%s) with 2 referrers, team/app:dev and team/other filtered out", ex, digest)
	}
	t.Logf("berth → berth, manual: index + 2 platforms + signature + SBOM in %v", time.Since(start).Round(time.Millisecond))
	if got := strings.TrimSpace(run(t, w.env, "crane", "digest", bb.Addr+"/team/app:v1")); got != digest {
		t.Fatalf("digest on B %s, want %s", got, digest)
	}
	for p, d := range plats {
		if got := strings.TrimSpace(run(t, w.env, "crane", "digest", "--platform", p, bb.Addr+"/team/app:v1")); got != d {
			t.Fatalf("%s on B: %s, want %s", p, got, d)
		}
	}
	if types := rplReferrerTypes(t, w.env, bb.Addr+"/team/app:v1"); len(types) != 2 {
		t.Fatalf("referrers on B %v, want %v", types, srcTypes)
	}
	run(t, w.env, "cosign", "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", bb.Addr+"/team/app@"+digest)
	if _, err := runErr(w.env, "crane", "digest", bb.Addr+"/team/app:dev"); err == nil {
		t.Fatal("team/app:dev was replicated against the tag filter")
	}
	if _, err := runErr(w.env, "crane", "digest", bb.Addr+"/team/other:v1"); err == nil {
		t.Fatal("team/other was replicated against the repository filter")
	}
	// On push: a new tag arrives within seconds.
	pushed := time.Now()
	run(t, w.env, "crane", "append", "--oci-empty-base", "-f", w.randomLayer(t, "v2", 5000), "-t", a.Addr+"/team/app:v2")
	v2 := strings.TrimSpace(run(t, w.env, "crane", "digest", a.Addr+"/team/app:v2"))
	whWait(t, 30*time.Second, "the push replicated to B", func() bool {
		out, err := runErr(w.env, "crane", "digest", bb.Addr+"/team/app:v2")
		return err == nil && strings.TrimSpace(out) == v2
	})
	t.Logf("on push: team/app:v2 on B %v after the push", time.Since(pushed).Round(time.Millisecond))
	rplWaitExecution(t, a, toB.ID, 10*time.Second, func(e rplExecution) bool { return e.Cause == "event" && e.State == "succeeded" })
	// A tag deleted here is deleted there; the other tags stay.
	run(t, w.env, "crane", "tag", a.Addr+"/team/app:v2", "v2-old")
	whWait(t, 30*time.Second, "v2-old replicated", func() bool { _, err := runErr(w.env, "crane", "digest", bb.Addr+"/team/app:v2-old"); return err == nil })
	run(t, w.env, "crane", "delete", a.Addr+"/team/app:v2-old")
	whWait(t, 30*time.Second, "the tag delete propagated to B", func() bool {
		_, err := runErr(w.env, "crane", "digest", bb.Addr+"/team/app:v2-old")
		return err != nil
	})
	if got := strings.TrimSpace(run(t, w.env, "crane", "digest", bb.Addr+"/team/app:v2")); got != v2 {
		t.Fatalf("v2 on B after deleting v2-old: %s", got)
	}

	// Berth A → Distribution (tag schema for the referrers).
	var toD rplRule
	admJSON(t, a, &toD, "replication", "create", "to-dist", "--push", "--remote", "http://"+w.dist.Addr, "--username", cricUser, "--password-file", distPw,
		"--repos", "team/app", "--tags", "v1")
	admOK(t, a, "", "replication", "run", strconv.FormatInt(toD.ID, 10))
	ex = rplWaitExecution(t, a, toD.ID, 60*time.Second, func(e rplExecution) bool { return true })
	if ex.State != "succeeded" || len(ex.Items) != 1 || ex.Items[0].Digest != digest || ex.Items[0].Referrers != 2 {
		t.Fatalf("execution to Distribution %+v", ex)
	}
	if got := strings.TrimSpace(run(t, w.env, "crane", "digest", w.dist.Addr+"/team/app:v1")); got != digest {
		t.Fatalf("digest on Distribution %s", got)
	}
	if types := rplReferrerTypes(t, w.env, w.dist.Addr+"/team/app:v1"); len(types) != 2 {
		t.Fatalf("referrers on Distribution %v", types)
	}

	// Distribution → berth A, by schedule, under a prefix.
	var fromD rplRule
	admJSON(t, a, &fromD, "replication", "create", "from-dist", "--pull", "--remote", "http://"+w.dist.Addr, "--username", cricUser, "--password-file", distPw,
		"--repos", "team/app", "--prefix", "dist/", "--schedule", "2s")
	ex = rplWaitExecution(t, a, fromD.ID, 60*time.Second, func(e rplExecution) bool { return e.Cause == "schedule" && e.State == "succeeded" })
	if len(ex.Items) != 1 || ex.Items[0].Digest != digest || !strings.HasSuffix(ex.Items[0].Destination, "/dist/team/app:v1") {
		t.Fatalf("scheduled pull %+v", ex)
	}
	if got := strings.TrimSpace(run(t, w.env, "crane", "digest", a.Addr+"/dist/team/app:v1")); got != digest {
		t.Fatalf("pulled digest %s", got)
	}
	if types := rplReferrerTypes(t, w.env, a.Addr+"/dist/team/app:v1"); len(types) != 2 {
		t.Fatalf("referrers after the pull %v", types)
	}
	admOK(t, a, "", "replication", "disable", strconv.FormatInt(fromD.ID, 10))

	// The destination down: the run fails visibly, its retry completes once it is back.
	admOK(t, a, "", "replication", "delete", strconv.FormatInt(toD.ID, 10))
	var toD2 rplRule
	admJSON(t, a, &toD2, "replication", "create", "to-dist-2", "--push", "--remote", "http://"+w.dist.Addr, "--username", cricUser, "--password-file", distPw,
		"--repos", "team/app", "--tags", "v2")
	rplRestart(t, w.dist, func() {
		admOK(t, a, "", "replication", "run", strconv.FormatInt(toD2.ID, 10))
		failed := rplWaitExecution(t, a, toD2.ID, 60*time.Second, func(e rplExecution) bool { return e.State == "failed" })
		if failed.Failed != 1 || len(failed.Items) != 1 || failed.Items[0].State != "failed" || failed.Items[0].Error == "" {
			t.Fatalf("execution with the destination down %+v", failed)
		}
		t.Logf("destination down: %s", failed.Items[0].Error)
	})
	ex = rplWaitExecution(t, a, toD2.ID, 90*time.Second, func(e rplExecution) bool { return e.State == "succeeded" })
	if got := strings.TrimSpace(run(t, w.env, "crane", "digest", w.dist.Addr+"/team/app:v2")); got != v2 || ex.Items[0].Digest != v2 {
		t.Fatalf("after the retry: %s on Distribution, execution %+v", got, ex)
	}
	table := admOK(t, a, "", "replication", "executions", strconv.FormatInt(toD2.ID, 10))
	if !strings.Contains(table, "failed") || !strings.Contains(table, "succeeded") {
		t.Fatalf("executions table:\n%s", table)
	}
	m := qtMetrics(t, a)
	if !strings.Contains(m, `berth_replication_artifacts_total{result="copied"}`) {
		t.Error("metrics lack berth_replication_artifacts_total")
	}
}

// rplBytesIn sums the request bytes b received for blob uploads (access log).
func rplBytesIn(t *testing.T, b *Berth) (int64, int) {
	t.Helper()
	re := regexp.MustCompile(`msg=request method=(PATCH|PUT|POST) path=/v2/\S+/blobs/uploads/\S* status=\d+ bytes_out=\d+ bytes_in=(\d+)`)
	logs, _ := filepath.Glob(filepath.Join(b.Data, "berth-*.log"))
	var sum int64
	n := 0
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			v, _ := strconv.ParseInt(m[2], 10, 64)
			sum += v
			n++
		}
	}
	return sum, n
}

// TestReplicationBytes: 20 images sharing two base layers, replicated berth → berth by
// one rule, send each distinct blob once: the destination receives the unique bytes
// (1.0×), not the sum of the images.
func TestReplicationBytes(t *testing.T) {
	requireTool(t, "crane")
	w := &cricWorld{env: toolEnv(t), dir: t.TempDir()}
	authCfg := "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword + "\n"
	a := startBerth(t, BerthOptions{Config: authCfg})
	bb := startBerth(t, BerthOptions{Config: authCfg})
	admOK(t, a, "", "project", "create", "fleet")
	run(t, w.env, "crane", "auth", "login", a.Addr, "-u", "admin", "-p", admPassword)
	base1, base2 := w.randomLayer(t, "base1", 2<<20), w.randomLayer(t, "base2", 1<<20)
	const images = 20
	var unique, total int64
	for _, f := range []string{base1, base2} {
		st, _ := os.Stat(f)
		unique += st.Size()
	}
	for i := 0; i < images; i++ {
		own := w.randomLayer(t, "own"+strconv.Itoa(i), 64<<10)
		st, _ := os.Stat(own)
		unique += st.Size()
		run(t, w.env, "crane", "append", "--oci-empty-base", "-f", base1, "-f", base2, "-f", own, "-t", a.Addr+"/fleet/svc"+strconv.Itoa(i%5)+":v"+strconv.Itoa(i))
	}
	for i := 0; i < images; i++ {
		total += 3<<20 + 64<<10
	}
	pw := filepath.Join(w.dir, "pw")
	if err := os.WriteFile(pw, []byte(admPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	var rule rplRule
	admJSON(t, a, &rule, "replication", "create", "fleet", "--push", "--remote", "http://"+bb.Addr, "--username", "admin", "--password-file", pw, "--repos", "fleet/*")
	before, _ := rplBytesIn(t, bb)
	start := time.Now()
	admOK(t, a, "", "replication", "run", strconv.FormatInt(rule.ID, 10))
	ex := rplWaitExecution(t, a, rule.ID, 120*time.Second, func(e rplExecution) bool { return true })
	took := time.Since(start)
	if ex.State != "succeeded" || ex.Copied != images {
		t.Fatalf("execution %+v", ex)
	}
	after, reqs := rplBytesIn(t, bb)
	sent := after - before
	// Configs are a few hundred bytes each; layers dominate.
	ratio := float64(sent) / float64(unique)
	t.Logf("%d images (%d MiB if each were sent whole, %d KiB unique layer bytes) replicated in %v: %d KiB received in %d upload requests, %.3f× the unique bytes",
		images, total>>20, unique>>10, took.Round(time.Millisecond), sent>>10, reqs, ratio)
	if ratio > 1.02 {
		t.Fatalf("sent %.3f× the unique bytes, want 1.0× (each distinct blob once)", ratio)
	}

	// A bandwidth limit paces a run: a new 4 MiB layer at 1 MiB/s (1 s of burst).
	run(t, w.env, "crane", "append", "--oci-empty-base", "-f", w.randomLayer(t, "slow", 4<<20), "-t", a.Addr+"/fleet/slow:v1")
	var slow rplRule
	admJSON(t, a, &slow, "replication", "create", "slow", "--push", "--remote", "http://"+bb.Addr, "--username", "admin", "--password-file", pw,
		"--repos", "fleet/slow", "--bandwidth", "1MiB")
	start = time.Now()
	admOK(t, a, "", "replication", "run", strconv.FormatInt(slow.ID, 10))
	ex = rplWaitExecution(t, a, slow.ID, 60*time.Second, func(e rplExecution) bool { return true })
	took = time.Since(start)
	if ex.State != "succeeded" || took < 2500*time.Millisecond {
		t.Fatalf("4 MiB at 1 MiB/s: %s in %v, want succeeded after at least 2.5 s", ex.State, took)
	}
	t.Logf("4 MiB layer at --bandwidth 1MiB: %v", took.Round(time.Millisecond))
}

// TestReplicationInterrupted: Distribution killed while a large layer is being sent;
// the execution fails, the job's retry (after Distribution is back) completes it, and
// the image arrives whole with its digest.
func TestReplicationInterrupted(t *testing.T) {
	requireTool(t, "crane")
	w := &cricWorld{dist: startDistribution(t), env: toolEnv(t), dir: t.TempDir()}
	a := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword + "\n"})
	admOK(t, a, "", "project", "create", "big")
	run(t, w.env, "crane", "auth", "login", a.Addr, "-u", "admin", "-p", admPassword)
	run(t, w.env, "crane", "auth", "login", w.dist.Addr, "-u", cricUser, "-p", cricPass)
	run(t, w.env, "crane", "append", "--oci-empty-base", "-f", w.randomLayer(t, "big", 160<<20), "-t", a.Addr+"/big/app:v1")
	digest := strings.TrimSpace(run(t, w.env, "crane", "digest", a.Addr+"/big/app:v1"))
	distPw := filepath.Join(w.dir, "distpw")
	if err := os.WriteFile(distPw, []byte(cricPass), 0o600); err != nil {
		t.Fatal(err)
	}
	var rule rplRule
	admJSON(t, a, &rule, "replication", "create", "big", "--push", "--remote", "http://"+w.dist.Addr, "--username", cricUser, "--password-file", distPw, "--repos", "big/*")
	uploads := filepath.Join(filepath.Dir(w.dist.log), "data", "docker", "registry", "v2", "repositories", "big", "app", "_uploads")
	admOK(t, a, "", "replication", "run", strconv.FormatInt(rule.ID, 10))
	// Kill Distribution once the big layer is partly written.
	var partial int64
	whWait(t, 60*time.Second, "the big layer partly uploaded to Distribution", func() bool {
		files, _ := filepath.Glob(filepath.Join(uploads, "*", "data"))
		for _, f := range files {
			if st, err := os.Stat(f); err == nil && st.Size() > 0 && st.Size() < 150<<20 {
				partial = st.Size()
				return true
			}
		}
		return false
	})
	rplRestart(t, w.dist, func() {
		t.Logf("Distribution killed with %d MiB of the 160 MiB layer written", partial>>20)
		failed := rplWaitExecution(t, a, rule.ID, 60*time.Second, func(e rplExecution) bool { return e.State == "failed" })
		t.Logf("execution %d failed: %s", failed.ID, failed.Error)
	})
	ex := rplWaitExecution(t, a, rule.ID, 120*time.Second, func(e rplExecution) bool { return e.State == "succeeded" })
	if len(ex.Items) != 1 || ex.Items[0].Digest != digest {
		t.Fatalf("completed execution %+v", ex)
	}
	if got := strings.TrimSpace(run(t, w.env, "crane", "digest", w.dist.Addr+"/big/app:v1")); got != digest {
		t.Fatalf("digest on Distribution %s, want %s", got, digest)
	}
	run(t, w.env, "crane", "validate", "--remote", w.dist.Addr+"/big/app:v1") // every byte hashes to its digest
}
