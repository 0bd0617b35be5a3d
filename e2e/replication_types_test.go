package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReplicationArtifactTypes: a rule limited to Helm charts copies the chart helm
// pushed and leaves the container image in the same project; a rule for one platform
// copies that platform's manifest of a two-platform index, digest unchanged, under the
// index's tag.
func TestReplicationArtifactTypes(t *testing.T) {
	for _, tool := range []string{"crane", "helm"} {
		requireTool(t, tool)
	}
	env := toolEnv(t)
	dir := t.TempDir()
	authCfg := "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword + "\n"
	a := startBerth(t, BerthOptions{Config: authCfg})
	bb := startBerth(t, BerthOptions{Config: authCfg})
	admOK(t, a, "", "project", "create", "team")
	for _, reg := range []string{a.Addr, bb.Addr} {
		run(t, env, "crane", "auth", "login", reg, "-u", "admin", "-p", admPassword)
	}
	run(t, env, "helm", "registry", "login", a.Addr, "-u", "admin", "-p", admPassword, "--insecure")
	run(t, env, "helm", "create", filepath.Join(dir, "demo"))
	run(t, env, "helm", "package", filepath.Join(dir, "demo"), "-d", dir)
	run(t, env, "helm", "push", filepath.Join(dir, "demo-0.1.0.tgz"), "oci://"+a.Addr+"/team", "--plain-http")
	layer := filepath.Join(dir, "layer.tar.gz")
	scTarGz(t, layer, nil, map[string]string{"etc/app": "v1\n"})
	run(t, env, "crane", "append", "--insecure", "-f", layer, "-t", a.Addr+"/team/web:v1")

	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(admPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var rule rplRule
	admJSON(t, a, &rule, "replication", "create", "charts", "--push", "--remote", "http://"+bb.Addr, "--username", "admin", "--password-file", pw,
		"--repos", "team/**", "--artifact-types", "application/vnd.cncf.helm.config.v1+json")
	admOK(t, a, "", "replication", "run", strconv.FormatInt(rule.ID, 10))
	ex := rplWaitExecution(t, a, rule.ID, time.Minute, func(e rplExecution) bool { return e.Cause == "manual" })
	if ex.State != "succeeded" || ex.Copied != 1 {
		t.Fatalf("execution %+v: want the chart alone copied", ex)
	}
	src := strings.TrimSpace(run(t, env, "crane", "digest", "--insecure", a.Addr+"/team/demo:0.1.0"))
	if got := strings.TrimSpace(run(t, env, "crane", "digest", "--insecure", bb.Addr+"/team/demo:0.1.0")); got != src {
		t.Fatalf("chart on B %s, want %s", got, src)
	}
	if _, err := runErr(env, "crane", "digest", "--insecure", bb.Addr+"/team/web:v1"); err == nil {
		t.Fatal("the container image was replicated by a rule for Helm charts")
	}
	// One platform of a two-platform index.
	_, plats := rplMultiArch(t, &cricWorld{env: env, dir: dir}, a, "team/multi", "v1")
	var arm rplRule
	admJSON(t, a, &arm, "replication", "create", "arm", "--push", "--remote", "http://"+bb.Addr, "--username", "admin", "--password-file", pw,
		"--repos", "team/multi", "--tags", "v1", "--platform", "linux/arm64")
	admOK(t, a, "", "replication", "run", strconv.FormatInt(arm.ID, 10))
	if ex := rplWaitExecution(t, a, arm.ID, time.Minute, func(e rplExecution) bool { return e.Cause == "manual" }); ex.State != "succeeded" || ex.Copied != 1 {
		t.Fatalf("platform rule execution %+v", ex)
	}
	if got := strings.TrimSpace(run(t, env, "crane", "digest", "--insecure", bb.Addr+"/team/multi:v1")); got != plats["linux/arm64"] {
		t.Fatalf("team/multi:v1 on B is %s, want the linux/arm64 manifest %s", got, plats["linux/arm64"])
	}
	if msg := admFails(t, a, nil, "replication", "create", "bad-platform", "--push", "--remote", "http://"+bb.Addr, "--username", "admin", "--password-file", pw,
		"--repos", "team/**", "--platform", "arm64"); !strings.Contains(msg, "os/arch") {
		t.Fatalf("a bad platform: %s", msg)
	}
	if msg := admFails(t, a, nil, "replication", "create", "bad", "--push", "--remote", "http://"+bb.Addr, "--username", "admin", "--password-file", pw,
		"--repos", "team/**", "--artifact-types", "[oops"); !strings.Contains(msg, "[oops") {
		t.Fatalf("a bad artifact-type glob: %s", msg)
	}
}
