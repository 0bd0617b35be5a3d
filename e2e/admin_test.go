package e2e

// The admin CLI (berth admin …) against a running berth with auth enabled: projects,
// users, members and robots made through the admin API, a robot's secret used by crane
// to push, and the push found in the audit trail.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const admPassword = "admin-password-e2e-cli"

// admCLI runs `berth admin args…` with the administrator's credentials in the
// environment (plus env) and stdin; it returns stdout, stderr and the error.
func admCLI(b *Berth, env []string, stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthBin, append([]string{"admin"}, args...)...)
	cmd.Env = append(os.Environ(), "BERTH_URL="+b.URL(""), "BERTH_ADMIN_USERNAME=admin", "BERTH_ADMIN_PASSWORD="+admPassword)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func admOK(t *testing.T, b *Berth, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := admCLI(b, nil, stdin, args...)
	if err != nil {
		t.Fatalf("berth admin %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// admFails runs a command that must fail and returns its stderr.
func admFails(t *testing.T, b *Berth, env []string, args ...string) string {
	t.Helper()
	out, errOut, err := admCLI(b, env, "", args...)
	if err == nil {
		t.Fatalf("berth admin %s succeeded, want a failure:\n%s", strings.Join(args, " "), out)
	}
	return errOut
}

func admJSON(t *testing.T, b *Berth, v any, args ...string) {
	t.Helper()
	out := admOK(t, b, "", append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("berth admin %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// admLayer writes a one-file layer tarball.
func admLayer(t *testing.T, dir, content string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "layer-"+content+".tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type admAuditRow struct {
	ID                                                 int64
	Actor, ActorType, Action, Resource, Result, Detail string
}

type admAudit struct{ Entries []admAuditRow }

func TestAdminCLI(t *testing.T) {
	requireTool(t, "crane")
	b := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword + "\n"})
	dir := t.TempDir()

	// Project, user, member.
	admOK(t, b, "", "project", "create", "team")
	admOK(t, b, "alice-password-e2e\n", "user", "add", "alice", "--email", "alice@example.com", "--new-password-stdin")
	admOK(t, b, "", "member", "add", "team", "alice", "developer")
	var members struct {
		Members []struct{ Principal, Role string }
	}
	admJSON(t, b, &members, "member", "list", "team")
	if len(members.Members) != 1 || members.Members[0].Principal != "user:alice" || members.Members[0].Role != "developer" {
		t.Fatalf("members of team: %+v", members)
	}
	if out := admOK(t, b, "", "user", "list"); !strings.Contains(out, "alice@example.com") || !strings.Contains(out, "admin") {
		t.Fatalf("user list:\n%s", out)
	}
	if out := admOK(t, b, "", "project", "list"); !strings.Contains(out, "team") || !strings.HasPrefix(out, "NAME") {
		t.Fatalf("project list:\n%s", out)
	}
	// The admin password from stdin instead of the environment, then the new password.
	if _, errOut, err := admCLI(b, []string{"BERTH_ADMIN_PASSWORD="}, admPassword+"\nbob-password-e2e\n",
		"--password-stdin", "user", "add", "bob", "--new-password-stdin"); err != nil {
		t.Fatalf("user add with --password-stdin: %v\n%s", err, errOut)
	}

	// A project robot: the secret is printed once, with a warning.
	out, errOut, err := admCLI(b, nil, "", "robot", "create", "ci", "--project", "team", "--actions", "pull,push", "--expires-in", "30d", "--json")
	if err != nil {
		t.Fatalf("robot create: %v\n%s", err, errOut)
	}
	var robot struct{ Name, Secret string }
	if err := json.Unmarshal([]byte(out), &robot); err != nil || robot.Name != "robot$team+ci" || robot.Secret == "" {
		t.Fatalf("robot create: %v %+v\n%s", err, robot, out)
	}
	if !strings.Contains(errOut, "WARNING") {
		t.Fatalf("robot create printed no warning: %q", errOut)
	}
	if out := admOK(t, b, "", "robot", "list", "--project", "team"); !strings.Contains(out, "robot$team+ci") || strings.Contains(out, robot.Secret) {
		t.Fatalf("robot list:\n%s", out)
	}

	// crane logs in as the robot (a config write) and pushes through the token flow.
	env := toolEnv(t)
	run(t, env, "crane", "auth", "login", b.Addr, "-u", robot.Name, "-p", robot.Secret)
	layer := admLayer(t, dir, "one")
	run(t, env, "crane", "append", "-f", layer, "-t", b.Addr+"/team/app:v1")
	if out, err := runErr(env, "crane", "append", "-f", layer, "-t", b.Addr+"/other/app:v1"); err == nil {
		t.Fatalf("the team robot pushed to another project:\n%s", out)
	}
	// alice (developer) pulls it with her own credentials.
	aliceEnv := toolEnv(t)
	run(t, aliceEnv, "crane", "auth", "login", b.Addr, "-u", "alice", "-p", "alice-password-e2e")
	digest := strings.TrimSpace(run(t, aliceEnv, "crane", "digest", b.Addr+"/team/app:v1"))
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("crane digest as alice: %q", digest)
	}

	// The push is in the audit trail, by the robot.
	var audit admAudit
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		admJSON(t, b, &audit, "audit", "--action", "push", "--actor", robot.Name)
		if slices.ContainsFunc(audit.Entries, func(e admAuditRow) bool {
			return e.Resource == "team/app:v1" && e.Result == "ok" && e.ActorType == "robot"
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit entry for the robot's push: %+v", audit)
		}
	}
	if out := admOK(t, b, "", "audit", "--since", "1h", "--actor", robot.Name); !strings.Contains(out, "push") || !strings.Contains(out, "team/app:v1") {
		t.Fatalf("audit table:\n%s", out)
	}
	admJSON(t, b, &audit, "audit", "--action", "robot.create")
	if len(audit.Entries) != 1 || audit.Entries[0].Resource != "robot$team+ci" || strings.Contains(audit.Entries[0].Detail, robot.Secret) {
		t.Fatalf("robot.create audit: %+v", audit)
	}

	// Disable: the secret stops working; enable: it works again.
	admOK(t, b, "", "robot", "disable", "robot$team+ci")
	if out, err := runErr(env, "crane", "append", "-f", admLayer(t, dir, "two"), "-t", b.Addr+"/team/app:v2"); err == nil {
		t.Fatalf("a disabled robot pushed:\n%s", out)
	}
	admOK(t, b, "", "robot", "enable", "ci", "--project", "team")
	run(t, env, "crane", "append", "-f", admLayer(t, dir, "three"), "-t", b.Addr+"/team/app:v3")

	// Rotate: the old secret stops, the new one works.
	out, _, err = admCLI(b, nil, "", "robot", "rotate", "robot$team+ci", "--json")
	var rotated struct{ Secret string }
	if err != nil || json.Unmarshal([]byte(out), &rotated) != nil || rotated.Secret == "" || rotated.Secret == robot.Secret {
		t.Fatalf("rotate: %v %s", err, out)
	}
	if out, err := runErr(env, "crane", "append", "-f", admLayer(t, dir, "four"), "-t", b.Addr+"/team/app:v4"); err == nil {
		t.Fatalf("the old secret still pushes after rotate:\n%s", out)
	}
	run(t, env, "crane", "auth", "login", b.Addr, "-u", robot.Name, "-p", rotated.Secret)
	run(t, env, "crane", "append", "-f", admLayer(t, dir, "five"), "-t", b.Addr+"/team/app:v5")

	// Refusals come back as the API's errors.
	aliceAdm := []string{"BERTH_ADMIN_USERNAME=alice", "BERTH_ADMIN_PASSWORD=alice-password-e2e"}
	if e := admFails(t, b, aliceAdm, "user", "list"); !strings.Contains(e, "DENIED") {
		t.Fatalf("alice listing users: %s", e)
	}
	if e := admFails(t, b, []string{"BERTH_ADMIN_PASSWORD=wrong-password"}, "project", "list"); !strings.Contains(e, "UNAUTHORIZED") {
		t.Fatalf("wrong password: %s", e)
	}
	if e := admFails(t, b, nil, "project", "delete", "team"); !strings.Contains(e, "CONFLICT") {
		t.Fatalf("deleting a project with repositories: %s", e)
	}

	// Password change and deletion.
	admOK(t, b, "alice-password-new\n", "user", "passwd", "alice", "--new-password-stdin")
	if e := admFails(t, b, aliceAdm, "project", "list"); !strings.Contains(e, "UNAUTHORIZED") {
		t.Fatalf("old password after passwd: %s", e)
	}
	admOK(t, b, "", "member", "remove", "team", "user:alice")
	admOK(t, b, "", "user", "delete", "alice")
	admOK(t, b, "", "robot", "delete", "ci", "--project", "team")
	if out := admOK(t, b, "", "robot", "list", "--project", "team"); strings.Contains(out, "robot$team+ci") {
		t.Fatalf("robot still listed after delete:\n%s", out)
	}
}
