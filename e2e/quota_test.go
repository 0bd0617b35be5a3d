package e2e

// Byte quotas per project (issue 9): a real berth with auth on and GC at review_after 0,
// crane pushing, quotas set with berth admin. Helpers are prefixed "qt".

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// qtUsage is what `berth admin project quota show --json` reports.
type qtUsage struct {
	QuotaBytes *int64 `json:"quotaBytes"`
	UsageBytes int64  `json:"usageBytes"`
	UsageBlobs int64  `json:"usageBlobs"`
}

func qtShow(t *testing.T, b *Berth, project string) qtUsage {
	t.Helper()
	var u qtUsage
	admJSON(t, b, &u, "project", "quota", "show", project)
	return u
}

// qtMetrics returns the /metrics page, read as the administrator.
func qtMetrics(t *testing.T, b *Berth) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.URL("/metrics"), nil)
	req.SetBasicAuth("admin", admPassword)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", res.StatusCode, body)
	}
	return string(body)
}

// qtImage writes an OCI layout of config + layers and returns its directory and the
// bytes of its distinct blobs.
func qtImage(t *testing.T, config rpBlob, layers ...rpBlob) (string, int64) {
	t.Helper()
	dir := t.TempDir()
	rpWriteLayout(t, dir, "x", config, layers...)
	n := int64(len(config.data))
	for _, l := range layers {
		n += int64(len(l.data))
	}
	return dir, n
}

// qtWaitUsage polls the project's usage until it is want or fails after timeout.
func qtWaitUsage(t *testing.T, b *Berth, project string, want int64, timeout time.Duration) qtUsage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		u := qtShow(t, b, project)
		if u.UsageBytes == want {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: usage %d bytes after %v, want %d", project, u.UsageBytes, timeout, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestQuota: usage counts each blob once per project; a push past the quota is refused
// with 403 DENIED naming quota and usage before its bytes are committed; concurrent
// pushes never take committed usage past the quota and leave no refused bytes stored;
// after deletes and GC the usage is exactly the bytes still stored.
func TestQuota(t *testing.T) {
	requireTool(t, "crane")
	env := toolEnv(t)
	b := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword +
		"\ngc:\n  reviewAfter: 0s\n"})
	root := filepath.Join(b.Data, "storage")
	admOK(t, b, "", "project", "create", "team")
	run(t, env, "crane", "auth", "login", b.Addr, "-u", "admin", "-p", admPassword)

	// The series exist before anything is pushed: unlimited, nothing used.
	m := qtMetrics(t, b)
	for _, s := range []string{`berth_project_quota_bytes{project="team"} +Inf`, `berth_project_usage_bytes{project="team"} 0`, "berth_quota_denied_total 0"} {
		if !strings.Contains(m, s) {
			t.Fatalf("metrics lack %q before the first push", s)
		}
	}

	// Shared blobs count once: two images share a 300 KiB layer.
	shared := rpNewBlob(1, 300<<10)
	dirA, sizeA := qtImage(t, rpNewBlob(2, 1000), shared, rpNewBlob(3, 50<<10))
	dirB, _ := qtImage(t, rpNewBlob(4, 1100), shared, rpNewBlob(5, 60<<10))
	newB := int64(1100 + 60<<10)
	run(t, env, "crane", "push", "--insecure", dirA, b.Addr+"/team/app:v1")
	run(t, env, "crane", "push", "--insecure", dirB, b.Addr+"/team/other:v1")
	run(t, env, "crane", "push", "--insecure", dirA, b.Addr+"/team/copy:v1") // the same image again
	u := qtShow(t, b, "team")
	if u.UsageBytes != sizeA+newB || u.UsageBlobs != 5 {
		t.Fatalf("usage %d bytes in %d blobs, want %d in 5 (each blob once)", u.UsageBytes, u.UsageBlobs, sizeA+newB)
	}
	t.Logf("3 images in 3 repositories, 5 distinct blobs: usage %d bytes", u.UsageBytes)

	// Over the quota: refused with DENIED, the message naming quota and usage; nothing
	// of the refused layer is stored.
	quota := u.UsageBytes + 100<<10
	admOK(t, b, "", "project", "quota", "set", "team", fmt.Sprint(quota))
	dirBig, _ := qtImage(t, rpNewBlob(6, 900), rpNewBlob(7, 200<<10))
	out, err := runErr(env, "crane", "push", "--insecure", dirBig, b.Addr+"/team/big:v1")
	want := fmt.Sprintf("project team is over its quota: quota %s", regexp.QuoteMeta(qtHuman(quota)))
	if err == nil || !strings.Contains(out, "DENIED") || !regexp.MustCompile(want).MatchString(out) ||
		!strings.Contains(out, fmt.Sprintf("quota %d bytes, usage ", quota)) {
		t.Fatalf("push over the quota: err=%v\n%s", err, out)
	}
	t.Logf("refused: %s", regexp.MustCompile(`project team is over its quota[^"]*`).FindString(out))
	if _, ok := gcStored(t, root)[rpNewBlob(7, 200<<10).digest]; ok {
		t.Fatal("the refused layer's bytes are stored")
	}
	if got := qtShow(t, b, "team"); got.UsageBytes > quota {
		t.Fatalf("usage %d past the quota %d", got.UsageBytes, quota)
	}
	// Pushing what the project already holds adds nothing and passes even at the quota.
	admOK(t, b, "", "project", "quota", "set", "team", "1KiB")
	run(t, env, "crane", "push", "--insecure", dirA, b.Addr+"/team/again:v1")

	// Concurrent pushes: room for 4 images of 40 KiB, 10 pushed at once.
	base := qtShow(t, b, "team").UsageBytes
	const each, room, pushes = 40<<10 + 500, 4, 10
	quota = base + room*each + each/2
	admOK(t, b, "", "project", "quota", "set", "team", fmt.Sprint(quota))
	storedBefore := gcSum(gcStored(t, root))
	var wg sync.WaitGroup
	results := make([]error, pushes)
	outs := make([]string, pushes)
	for i := range pushes {
		dir, n := qtImage(t, rpNewBlob(uint64(100+i), 500), rpNewBlob(uint64(200+i), 40<<10))
		if n != each {
			t.Fatalf("image size %d, want %d", n, each)
		}
		wg.Go(func() {
			outs[i], results[i] = runErr(env, "crane", "push", "--insecure", dir, fmt.Sprintf("%s/team/c%d:v1", b.Addr, i))
		})
	}
	wg.Wait()
	ok := 0
	for i, err := range results {
		if err == nil {
			ok++
		} else if !strings.Contains(outs[i], "over its quota") {
			t.Fatalf("concurrent push %d failed otherwise: %v\n%s", i, err, outs[i])
		}
	}
	after := qtShow(t, b, "team")
	stored := gcSum(gcStored(t, root))
	t.Logf("%d concurrent pushes of %d bytes with room for %d: %d acknowledged; usage %d of quota %d; stored bytes grew by %d",
		pushes, each, room, ok, after.UsageBytes, quota, stored-storedBefore)
	if ok < 1 || ok > room || after.UsageBytes > quota || stored-storedBefore > quota-base {
		t.Fatalf("concurrent pushes went past the quota: %d acknowledged, usage %d, quota %d, stored +%d", ok, after.UsageBytes, quota, stored-storedBefore)
	}
	if m := qtMetrics(t, b); !regexp.MustCompile(`berth_quota_denied_total [1-9]`).MatchString(m) ||
		!strings.Contains(m, fmt.Sprintf(`berth_project_quota_bytes{project="team"} %d`, quota)) {
		t.Fatalf("metrics after denials:\n%s", regexp.MustCompile(`(?m)^berth_(project|quota)_.*$`).FindAllString(m, -1))
	}
	// GC (reviewAfter 0) is meanwhile dropping the links of refused pushes' configs, so
	// usage may only have fallen since, never risen.
	if out := admOK(t, b, "", "project", "list"); !strings.Contains(out, "USAGE") || !regexp.MustCompile(`team .* \d+ bytes`).MatchString(out) {
		t.Fatalf("project list:\n%s", out)
	} else if now := qtShow(t, b, "team"); now.UsageBytes > after.UsageBytes {
		t.Fatalf("usage rose from %d to %d with no push", after.UsageBytes, now.UsageBytes)
	}

	// Deletes and GC: usage drops to exactly the bytes still stored (only team stores).
	digest := strings.TrimSpace(run(t, env, "crane", "digest", "--insecure", b.Addr+"/team/app:v1"))
	for _, repo := range []string{"app", "copy", "again"} {
		run(t, env, "crane", "delete", "--insecure", b.Addr+"/team/"+repo+"@"+digest)
	}
	gcBerth(t, "repo", "delete", "team/other", "--config", b.Config, "--data", b.Data)
	deadline := time.Now().Add(60 * time.Second)
	for {
		u, s := qtShow(t, b, "team"), gcStored(t, root)
		// Usage is exactly the acknowledged images' blobs (nothing else is referenced);
		// the stored bytes may lag by GC's byte deletions of refused pushes' pieces.
		if u.UsageBytes == int64(ok)*each && u.UsageBlobs == int64(2*ok) {
			t.Logf("after deletes and GC: usage %d bytes in %d blobs = %d acknowledged images of %d bytes; stored %d bytes in %d blobs",
				u.UsageBytes, u.UsageBlobs, ok, each, gcSum(s), len(s))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after deletes and GC: usage %d bytes in %d blobs, stored %d bytes in %d blobs, want %d", u.UsageBytes, u.UsageBlobs, gcSum(s), len(s), int64(ok)*each)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i, err := range results {
		if err == nil {
			gcValidate(t, env, b, fmt.Sprintf("team/c%d", i), "v1")
		}
	}
	// Unlimited again: the push refused before now fits.
	admOK(t, b, "", "project", "quota", "set", "team", "unlimited")
	run(t, env, "crane", "push", "--insecure", dirBig, b.Addr+"/team/big:v1")
	if u := qtShow(t, b, "team"); u.QuotaBytes != nil {
		t.Fatalf("quota after unlimited: %d", *u.QuotaBytes)
	}
}

// qtHuman is quota.HumanBytes, as the server writes sizes in messages.
func qtHuman(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, units := float64(n)/1024, "KMGTPE"
	i := 0
	for ; v >= 1024 && i < len(units)-1; i++ {
		v /= 1024
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
