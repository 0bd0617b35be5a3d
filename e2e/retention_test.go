package e2e

// Retention policies and immutable tags (issue 9): a real berth with auth and GC at
// review_after 0; crane and regctl push, move and delete tags; rules set with berth
// admin. Helpers are prefixed "rt".

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// rtTags lists a repository's tags with crane.
func rtTags(t *testing.T, env []string, b *Berth, repo string) []string {
	t.Helper()
	tags := strings.Fields(run(t, env, "crane", "ls", "--insecure", b.Addr+"/"+repo))
	slices.Sort(tags)
	return tags
}

// rtRefused runs a client command that must fail with DENIED naming the immutable rule.
func rtRefused(t *testing.T, env []string, what string, name string, args ...string) {
	t.Helper()
	out, err := runErr(env, name, args...)
	if err == nil {
		t.Fatalf("%s succeeded on an immutable tag:\n%s", what, out)
	}
	if !strings.Contains(out, "immutable") || !strings.Contains(out, "tags v*") {
		t.Fatalf("%s: the refusal does not name the immutable rule:\n%s", what, out)
	}
}

// TestRetentionImmutable: an immutable rule lets a tag be created and pushed again
// unchanged but refuses moving or deleting it (by tag, by manifest, with its
// repository) with DENIED naming the rule, for crane and regctl alike; a retention
// policy's dry run lists what would go and deletes nothing, its real run deletes exactly
// the tags no rule keeps and never an immutable one, and GC then frees what only those
// tags used. Only project administrators change rules.
func TestRetentionImmutable(t *testing.T) {
	requireTool(t, "crane")
	requireTool(t, "regctl")
	env := toolEnv(t)
	b := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword +
		"\ngc:\n  reviewAfter: 0s\n"})
	admOK(t, b, "", "project", "create", "team")
	admOK(t, b, "alice-password-e2e\n", "user", "add", "alice", "--new-password-stdin")
	admOK(t, b, "", "member", "add", "team", "alice", "developer")
	run(t, env, "crane", "auth", "login", b.Addr, "-u", "admin", "-p", admPassword)
	run(t, env, "regctl", "registry", "set", "--tls", "disabled", "--skip-check", b.Addr)
	run(t, env, "regctl", "registry", "login", b.Addr, "-u", "admin", "-p", admPassword)
	alice := []string{"BERTH_ADMIN_USERNAME=alice", "BERTH_ADMIN_PASSWORD=alice-password-e2e"}

	// The blobs of every image but dev-1's: what must stay stored at the end.
	var kept, pushed []rpBlob
	img := func(ref string, seed uint64) string {
		config, layer := rpNewBlob(seed, 500+int(seed)), rpNewBlob(seed+100, 40<<10)
		pushed = append(pushed, config, layer)
		if !strings.HasSuffix(ref, ":dev-1") {
			kept = append(kept, config, layer)
		}
		return gcImage(t, env, b, ref, config, layer)
	}
	imgA := img("team/app:v1.0", 1)
	img("team/app:v1.1", 2)
	imgDev1 := img("team/app:dev-1", 3)
	img("team/app:dev-2", 4)
	run(t, env, "crane", "tag", "--insecure", b.Addr+"/team/app:dev-2", "latest")
	img("team/tools/cli:old", 5)

	// Rules are the project administrators'.
	if out := admFails(t, b, alice, "immutable", "add", "team", "v*"); !strings.Contains(out, "DENIED") {
		t.Fatalf("a developer added an immutable rule: %s", out)
	}
	admOK(t, b, "", "immutable", "add", "team", "v*")
	if out := admFails(t, b, nil, "immutable", "add", "team", "v["); !strings.Contains(out, "unclosed [") {
		t.Fatalf("an invalid pattern: %s", out)
	}
	if out := admOK(t, b, "", "immutable", "list", "team"); !strings.Contains(out, "v*") || !strings.Contains(out, "**") {
		t.Fatalf("immutable list:\n%s", out)
	}

	// Moving, deleting: refused for every client and path. Pushing the same manifest
	// again and creating a new protected tag are fine.
	rtRefused(t, env, "crane tag moving v1.0", "crane", "tag", "--insecure", b.Addr+"/team/app:dev-1", "v1.0")
	rtRefused(t, env, "regctl image copy onto v1.1", "regctl", "image", "copy", b.Addr+"/team/app:dev-1", b.Addr+"/team/app:v1.1")
	rtRefused(t, env, "regctl tag delete v1.0", "regctl", "tag", "delete", b.Addr+"/team/app:v1.0")
	rtRefused(t, env, "crane delete of v1.0's manifest", "crane", "delete", "--insecure", b.Addr+"/team/app@"+imgA)
	if out := admFails(t, b, nil, "repo", "delete", "team/app"); !strings.Contains(out, "immutable") {
		t.Fatalf("deleting a repository holding immutable tags: %s", out)
	}
	run(t, env, "crane", "tag", "--insecure", b.Addr+"/team/app@"+imgA, "v1.0") // same manifest again
	run(t, env, "crane", "tag", "--insecure", b.Addr+"/team/app:v1.1", "v2.0")  // a new protected tag
	rtRefused(t, env, "crane tag moving the new v2.0", "crane", "tag", "--insecure", b.Addr+"/team/app:dev-2", "v2.0")
	if got := rtTags(t, env, b, "team/app"); !slices.Equal(got, []string{"dev-1", "dev-2", "latest", "v1.0", "v1.1", "v2.0"}) {
		t.Fatalf("tags after the refusals: %v", got)
	}
	if d := strings.TrimSpace(run(t, env, "crane", "digest", "--insecure", b.Addr+"/team/app:v1.0")); d != imgA {
		t.Fatalf("v1.0 names %s after the refused moves, want %s", d, imgA)
	}

	// Retention: in team/app keep the latest pushed tag; team/tools is out of scope.
	if out := admFails(t, b, alice, "retention", "set", "team", "--keep", "latestPushed", "--count", "1"); !strings.Contains(out, "DENIED") {
		t.Fatalf("a developer set a retention policy: %s", out)
	}
	if out := admFails(t, b, nil, "retention", "set", "team", "--keep", "latestPushed"); !strings.Contains(out, "count >= 1") {
		t.Fatalf("an invalid policy: %s", out)
	}
	// The rule ranks the tags it picks, protected or not: leave the v* tags out of it
	// (they stay, being immutable) so it keeps the latest other tag.
	admOK(t, b, "", "retention", "set", "team", "--keep", "latestPushed", "--count", "1", "--repositories", "app", "--exclude-tags", "v*")
	dry := admOK(t, b, "", "retention", "run", "team", "--dry-run")
	for _, want := range []string{"would delete  team/app    dev-1", "would delete  team/app    dev-2", "kept          team/app    latest", "immutable rule"} {
		if !strings.Contains(dry, want) {
			t.Fatalf("dry run lacks %q:\n%s", want, dry)
		}
	}
	if strings.Contains(dry, "tools/cli") {
		t.Fatalf("the dry run touches team/tools/cli, which no rule selects:\n%s", dry)
	}
	if out, errOut, err := admCLI(b, alice, "", "retention", "run", "team", "--dry-run"); err != nil || !strings.Contains(out, "would delete 2 of 6 tags") {
		t.Fatalf("a developer's dry run: %v\n%s%s", err, out, errOut)
	}
	if out := admFails(t, b, alice, "retention", "run", "team"); !strings.Contains(out, "DENIED") {
		t.Fatalf("a developer ran retention: %s", out)
	}
	if got := rtTags(t, env, b, "team/app"); len(got) != 6 {
		t.Fatalf("a dry run deleted tags: %v", got)
	}

	root := filepath.Join(b.Data, "storage")
	// Every pushed blob is stored before retention runs. (regctl's refused tag delete
	// above uploaded two blobs of its own for a stand-in manifest: GC collects them on its
	// own schedule, so they are not counted here.)
	stored := gcStored(t, root)
	for _, l := range pushed {
		if _, ok := stored[l.digest]; !ok {
			t.Fatalf("blob %s is not stored before retention ran", l.digest)
		}
	}
	if out := admOK(t, b, "", "retention", "run", "team"); !strings.Contains(out, "deleted 2 of 6 tags in scope") {
		t.Fatalf("retention run:\n%s", out)
	}
	if got := rtTags(t, env, b, "team/app"); !slices.Equal(got, []string{"latest", "v1.0", "v1.1", "v2.0"}) {
		t.Fatalf("tags after retention: %v, want latest and the immutable v*", got)
	}
	if got := rtTags(t, env, b, "team/tools/cli"); !slices.Equal(got, []string{"old"}) {
		t.Fatalf("team/tools/cli after retention: %v, want untouched", got)
	}
	if out := admOK(t, b, "", "retention", "show", "team"); !strings.Contains(out, "deleted 2 of 6 tags in scope") || !strings.Contains(out, "latestPushed 1") {
		t.Fatalf("retention show:\n%s", out)
	}
	var audit admAudit
	admJSON(t, b, &audit, "audit", "--action", "retention.delete")
	if len(audit.Entries) != 2 {
		t.Fatalf("audit has %d retention.delete entries, want 2: %+v", len(audit.Entries), audit.Entries)
	}

	// GC then frees what only the deleted tags used: dev-1's manifest, config and layer.
	// dev-2's manifest stays, named by latest.
	want := map[string]int64{}
	for _, l := range kept {
		want[l.digest] = int64(len(l.data))
	}
	gcWait(t, root, want, 30*time.Second)
	if out, err := runErr(env, "crane", "manifest", "--insecure", b.Addr+"/team/app@"+imgDev1); err == nil || !strings.Contains(out, "MANIFEST_UNKNOWN") {
		t.Fatalf("dev-1's untagged manifest after GC: %v\n%s", err, out)
	}
	gcValidate(t, env, b, "team/app", "latest")
	gcValidate(t, env, b, "team/app", "v1.0")

	// Without the rule the tag moves and deletes again.
	admOK(t, b, "", "immutable", "delete", "team", "1")
	run(t, env, "regctl", "tag", "delete", b.Addr+"/team/app:v1.0")
	admOK(t, b, "", "retention", "delete", "team")
	if out := admFails(t, b, nil, "retention", "show", "team"); !strings.Contains(out, "not found") {
		t.Fatalf("retention show after delete: %s", out)
	}
}
