package e2e

// Online garbage collection (issue 9): real berth processes, clients pushing with crane
// and oras, GC running in the servers with review_after 0. Helpers are prefixed "gc".

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// gcStored is what the blob store holds: digest → bytes, for the filesystem driver
// (blobs/<alg>/<xx>/<hex>-<upload handle>).
func gcStored(t *testing.T, root string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	filepath.WalkDir(filepath.Join(root, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		alg := filepath.Base(filepath.Dir(filepath.Dir(p)))
		hexPart, _, _ := strings.Cut(d.Name(), "-")
		out[alg+":"+hexPart] += info.Size()
		return nil
	})
	return out
}

// gcImage pushes an image of config + layers to ref with crane and returns its manifest digest.
func gcImage(t *testing.T, env []string, b *Berth, ref string, config rpBlob, layers ...rpBlob) string {
	t.Helper()
	dir := t.TempDir()
	manifest := rpWriteLayout(t, dir, "x", config, layers...)
	run(t, env, "crane", "push", "--insecure", dir, b.Addr+"/"+ref)
	return biSHA(manifest)
}

// gcReferenced lists the blobs the registry's tagged manifests (and their referrers)
// reference, by asking its API: what must survive.
func gcReferenced(t *testing.T, b *Berth, repos ...string) map[string]int64 {
	t.Helper()
	want := map[string]int64{}
	var walk func(repo, ref string)
	walk = func(repo, ref string) {
		raw, err := clFetch(b.URL("/v2/"+repo+"/manifests/"+ref), clMTManifest+","+clMTIndex)
		if err != nil {
			t.Fatalf("manifest %s:%s: %v", repo, ref, err)
		}
		var m struct {
			Config    clDescriptor   `json:"config"`
			Layers    []clDescriptor `json:"layers"`
			Manifests []clDescriptor `json:"manifests"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		for _, d := range append(m.Layers, m.Config) {
			if d.Digest != "" {
				want[d.Digest] = d.Size
			}
		}
		for _, c := range m.Manifests {
			walk(repo, c.Digest)
		}
		raw, err = clFetch(b.URL("/v2/"+repo+"/referrers/"+biSHA(raw)), clMTIndex)
		if err == nil {
			var idx struct{ Manifests []clDescriptor }
			_ = json.Unmarshal(raw, &idx)
			for _, r := range idx.Manifests {
				walk(repo, r.Digest)
			}
		}
	}
	for _, repo := range repos {
		raw, err := clFetch(b.URL("/v2/"+repo+"/tags/list"), "")
		if err != nil {
			continue // repository gone
		}
		var tl struct{ Tags []string }
		_ = json.Unmarshal(raw, &tl)
		for _, tag := range tl.Tags {
			walk(repo, tag)
		}
	}
	return want
}

// gcWait polls until the stored blobs are exactly want (GC done) or fails after timeout.
func gcWait(t *testing.T, root string, want map[string]int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := gcStored(t, root)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			var extra, missing []string
			for d, n := range got {
				if _, ok := want[d]; !ok {
					extra = append(extra, fmt.Sprintf("%s (%d B)", d, n))
				}
			}
			for d := range want {
				if _, ok := got[d]; !ok {
					missing = append(missing, d)
				}
			}
			t.Fatalf("after %v the store holds %d blobs, want %d: not collected %v, missing %v", timeout, len(got), len(want), extra, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// gcValidate pulls repo:ref with crane into an OCI layout and checks that every blob the
// manifest names is there with its digest and size (the test blobs are not gzip, so
// crane validate does not apply).
func gcValidate(t *testing.T, env []string, b *Berth, repo, ref string) {
	t.Helper()
	dir := t.TempDir()
	run(t, env, "crane", "pull", "--insecure", "--format", "oci", b.Addr+"/"+repo+":"+ref, dir)
	raw := []byte(run(t, env, "crane", "manifest", "--insecure", b.Addr+"/"+repo+":"+ref))
	var m struct {
		Config clDescriptor   `json:"config"`
		Layers []clDescriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(m.Layers, m.Config) {
		data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d.Digest, "sha256:")))
		if err != nil || biSHA(data) != d.Digest || int64(len(data)) != d.Size {
			t.Fatalf("%s:%s blob %s pulled damaged or missing: %v", repo, ref, d.Digest, err)
		}
	}
}

func gcSum(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

func gcBerth(t *testing.T, cmdArgs ...string) string {
	t.Helper()
	out, err := runErr(nil, berthBin, cmdArgs...)
	if err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(cmdArgs, " "), err, out)
	}
	return out
}

// TestGCFilesystem: images sharing a layer in several repositories, a referrer on a kept
// and on a deleted image, a blob uploaded and never used; then a tag deleted, a manifest
// deleted and a repository deleted. GC (review_after 0, in the server) deletes exactly the
// bytes nothing references any more; everything kept still pulls and validates.
func TestGCFilesystem(t *testing.T) {
	requireTool(t, "crane")
	oras := requireTool(t, "oras")
	env := toolEnv(t)
	b := startBerth(t, BerthOptions{Config: "gc:\n  reviewAfter: 0s\n"})
	root := filepath.Join(b.Data, "storage")
	shared := rpNewBlob(1, 300<<10)
	blob := func(seed uint64) rpBlob { return rpNewBlob(seed, 20<<10+int(seed)*100) }
	gcImage(t, env, b, "p/app:v1", blob(10), shared, blob(11))
	v2 := gcImage(t, env, b, "p/app:v2", blob(20), shared, blob(21))
	gcImage(t, env, b, "p/other:v1", blob(30), shared, blob(31))
	gcImage(t, env, b, "p/tmp:v1", blob(40), shared, blob(41))
	stray := biPushBlob(t, b.Addr, "p/app", rpNewBlob(99, 5000).data)
	// Signatures as referrers: one on an image that stays, one on an image that goes.
	sig := filepath.Join(t.TempDir(), "sig.txt")
	os.WriteFile(sig, []byte("signed by the test"), 0o600)
	for _, ref := range []string{"p/other:v1", "p/app:v1"} {
		out, err := runErrIn(filepath.Dir(sig), env, oras, "attach", "--plain-http", "--artifact-type", "application/vnd.test.signature",
			b.Addr+"/"+ref, "sig.txt")
		if err != nil {
			t.Fatalf("oras attach %s: %v\n%s", ref, err, out)
		}
	}
	repos := []string{"p/app", "p/other", "p/tmp"}
	gcWait(t, root, gcReferenced(t, b, repos...), 30*time.Second) // the stray blob goes at once
	if _, ok := gcStored(t, root)[stray]; ok {
		t.Fatal("the blob uploaded and never referenced is still stored")
	}

	if r, _ := clHTTP(t, "DELETE", b.URL("/v2/p/app/manifests/v1"), nil, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("delete tag: %d", r.StatusCode)
	}
	if r, _ := clHTTP(t, "DELETE", b.URL("/v2/p/app/manifests/"+v2), nil, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("delete manifest: %d", r.StatusCode)
	}
	gcBerth(t, "repo", "delete", "p/tmp", "--config", b.Config, "--data", b.Data)
	before := gcStored(t, root)
	want := gcReferenced(t, b, repos...)
	gcWait(t, root, want, 30*time.Second)
	t.Logf("GC freed %d blobs, %d bytes; %d blobs, %d bytes remain (all referenced)",
		len(before)-len(want), gcSum(before)-gcSum(want), len(want), gcSum(want))
	if _, ok := want[shared.digest]; !ok {
		t.Fatal("the shared layer is no longer referenced?")
	}
	for _, gone := range []rpBlob{blob(11), blob(21), blob(41)} {
		if _, ok := want[gone.digest]; ok {
			t.Fatalf("blob %s should be unreferenced now", gone.digest)
		}
	}
	gcValidate(t, env, b, "p/other", "v1")
	out := run(t, env, oras, "discover", "--plain-http", "--format", "json", b.Addr+"/p/other:v1")
	if !strings.Contains(out, "application/vnd.test.signature") {
		t.Fatalf("the kept image lost its signature: %s", out)
	}
	status := gcBerth(t, "gc", "status", "--config", b.Config, "--data", b.Data)
	if !regexp.MustCompile(`deleted so far: 2 manifests, \d+ blob links, \d+ blobs`).MatchString(status) {
		t.Fatalf("gc status:\n%s", status)
	}
	t.Logf("berth gc status:\n%s", status)
	metrics, _ := clFetch(b.URL("/metrics"), "")
	for _, m := range []string{`berth_gc_deleted_total{what="manifest"} 2`, "berth_gc_bytes_freed_total", `berth_jobs_queue_depth{kind="gc.blob",state="done"}`} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

// TestGCNothingBeforeReviewAfter: with the default delay nothing is deleted by the
// server; `berth gc run --dry-run` shows what an operator's run would delete once
// review_after has passed, and changes nothing.
func TestGCNothingBeforeReviewAfter(t *testing.T) {
	requireTool(t, "crane")
	env := toolEnv(t)
	b := startBerth(t, BerthOptions{Config: "gc:\n  reviewAfter: 1h\n"})
	root := filepath.Join(b.Data, "storage")
	gcImage(t, env, b, "p/app:v1", rpNewBlob(1, 4000), rpNewBlob(2, 50000))
	gcImage(t, env, b, "p/app:v2", rpNewBlob(3, 4000), rpNewBlob(2, 50000))
	if r, _ := clHTTP(t, "DELETE", b.URL("/v2/p/app/manifests/v1"), nil, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("delete tag: %d", r.StatusCode)
	}
	stored := gcStored(t, root)
	time.Sleep(3 * time.Second) // workers poll every second
	if got := gcStored(t, root); len(got) != len(stored) || len(got) != 3 {
		t.Fatalf("blobs deleted before review_after: %d of %d left", len(got), len(stored))
	}
	out := gcBerth(t, "gc", "run", "--dry-run", "--config", b.Config, "--data", b.Data)
	if !strings.Contains(out, "would delete 0 manifests") {
		t.Fatalf("dry run within review_after: %s", out)
	}
	// Once review_after has passed (here: set to 0 for the command), the same dry run
	// names the untagged manifest and its config, and still deletes nothing.
	cmd := []string{"gc", "run", "--dry-run", "--list", "--config", b.Config, "--data", b.Data}
	out, err := runErr([]string{"BERTH_GC_REVIEW_AFTER=0s"}, berthBin, cmd...)
	if err != nil || !strings.Contains(out, "would delete 1 manifests, 1 blob links, 1 blobs (4000 bytes") {
		t.Fatalf("dry run after review_after: %v\n%s", err, out)
	}
	if got := gcStored(t, root); len(got) != 3 {
		t.Fatal("a dry run deleted something")
	}
	out, err = runErr([]string{"BERTH_GC_REVIEW_AFTER=0s"}, berthBin, "gc", "run", "--config", b.Config, "--data", b.Data)
	if err != nil || !strings.Contains(out, "deleted 1 manifests, 1 blob links, 1 blobs (4000 bytes") {
		t.Fatalf("gc run: %v\n%s", err, out)
	}
	gcValidate(t, env, b, "p/app", "v2")
	got := gcStored(t, root)
	if _, ok := got[rpNewBlob(2, 50000).digest]; len(got) != 2 || !ok {
		t.Fatalf("after gc run: %v, want v2's config and the shared layer", got)
	}
}
