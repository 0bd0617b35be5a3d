package e2e

// berth mirror warm --url: the running server warms its cache through the admin API
// (issue 13), here on PostgreSQL, so nothing but admin credentials leaves the server.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestMirrorWarmRemote(t *testing.T) {
	dsn := postgresDSN(t)
	upstream := startBerth(t, BerthOptions{})
	seedPause(t, upstream, "pause", "3.10")
	cfg := fmt.Sprintf(`database:
  driver: postgres
  dsn: %s
auth:
  enabled: true
  admin:
    username: admin
    password: %s
mirror:
  upstreams:
    - name: registry.k8s.io
      url: http://%s
`, dsn, auAdminPass, upstream.Addr)
	mirror := startBerth(t, BerthOptions{Config: cfg})
	env := []string{"BERTH_ADMIN_PASSWORD=" + auAdminPass}
	// From "a laptop": no --config, no database; only the URL and credentials.
	warm := func(args ...string) (string, error) {
		return runErr(env, berthBin, append([]string{"mirror", "warm", "--url", "http://" + mirror.Addr, "--username", "admin", "--platform", "linux/amd64"}, args...)...)
	}
	out, err := warm("registry.k8s.io/pause:3.10")
	if err != nil {
		t.Fatalf("mirror warm --url: %v\n%s", err, out)
	}
	if !strings.Contains(out, "warm-up: 1 images") || strings.Count(out, "fetched ") != 2 || strings.Count(out, "manifest ") != 2 {
		t.Fatalf("warm output: want the index, the amd64 manifest and its 2 blobs fetched:\n%s", out)
	}
	if out, err := warm("registry.k8s.io/pause:3.10"); err != nil || strings.Contains(out, "fetched ") || strings.Count(out, "cached ") != 2 {
		t.Fatalf("second warm should only find cached blobs: %v\n%s", err, out)
	}
	if out, err := warm("quay.io/x/y:1"); err == nil || !strings.Contains(out, "not a configured upstream") {
		t.Fatalf("warm of an unconfigured registry: %v\n%s", err, out)
	}
	// Only administrators may ask.
	if out, err := runErr([]string{"BERTH_ADMIN_PASSWORD=wrong"}, berthBin, "mirror", "warm", "--url", "http://"+mirror.Addr, "--username", "admin", "registry.k8s.io/pause:3.10"); err == nil || !strings.Contains(out, "UNAUTHORIZED") {
		t.Fatalf("warm with a wrong password: %v\n%s", err, out)
	}

	get := func(path string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+mirror.Addr+path, nil)
		req.SetBasicAuth("admin", auAdminPass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	metrics := get("/metrics")
	for _, want := range []string{`berth_mirror_warm_images_total{result="ok"} 2`, `berth_mirror_warm_images_total{result="failed"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var audit struct {
		Entries []struct{ Action, Actor, Result, Detail string } `json:"entries"`
	}
	waitFor(t, 5e9, "the warm-up audit entries", func() error {
		if err := json.Unmarshal([]byte(get("/api/v1/audit?action=mirror.warm")), &audit); err != nil {
			return err
		}
		if len(audit.Entries) < 3 {
			return fmt.Errorf("%d entries", len(audit.Entries))
		}
		return nil
	})
	results := map[string]int{}
	for _, e := range audit.Entries {
		results[e.Result]++
		if e.Actor != "admin" || !strings.Contains(e.Detail, "images") {
			t.Errorf("audit entry %+v", e)
		}
	}
	if results["ok"] != 2 || results["failed"] != 1 {
		t.Errorf("audit results %v, want 2 ok and 1 failed", results)
	}

	// The cache is the server's: with the upstream gone, the mirror still serves.
	upstream.Stop()
	req, _ := http.NewRequest(http.MethodGet, "http://"+mirror.Addr+"/v2/registry.k8s.io/pause/manifests/3.10", nil)
	req.SetBasicAuth("admin", auAdminPass)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cached manifest with the upstream down: %s", resp.Status)
	}
}
