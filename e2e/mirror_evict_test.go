package e2e

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMirrorEviction: a mirror cache with a size limit evicts the least recently pulled
// image, and never content pulled within cacheMinAge.
func TestMirrorEviction(t *testing.T) {
	crane := requireTool(t, "crane")
	for _, tc := range []struct {
		name      string
		minAge    string
		wantEvict bool
	}{{"evicts-least-recently-pulled", "1ms", true}, {"keeps-recent-pulls", "1h", false}} {
		t.Run(tc.name, func(t *testing.T) {
			upstream := startBerth(t, BerthOptions{})
			env := toolEnv(t)
			work := t.TempDir()
			for _, name := range []string{"a", "b", "c"} {
				layer := filepath.Join(work, name+".bin")
				buf := make([]byte, 1<<20)
				rand.Read(buf)
				os.WriteFile(layer, buf, 0o644)
				tarball := filepath.Join(work, name+".tar")
				run(t, nil, "tar", "-C", work, "-cf", tarball, name+".bin")
				run(t, env, crane, "append", "--oci-empty-base", "-f", tarball, "-t", upstream.Addr+"/"+name+":v1")
			}
			mirror := startBerth(t, BerthOptions{Config: fmt.Sprintf(`mirror:
  upstreams:
    - name: registry.k8s.io
      url: http://%s
      cacheSize: 2600KiB
      cacheMinAge: %s
`, upstream.Addr, tc.minAge)})
			for _, name := range []string{"a", "b", "c"} {
				run(t, env, crane, "pull", mirror.Addr+"/registry.k8s.io/"+name+":v1", filepath.Join(work, name+"-pulled.tar"))
				time.Sleep(20 * time.Millisecond) // distinct pull times
			}
			evicted := 0.0
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				evicted = metricValue(t, mirror, `berth_mirror_evicted_bytes_total{upstream="registry.k8s.io"}`)
				if evicted > 0 || !tc.wantEvict {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if !tc.wantEvict {
				time.Sleep(300 * time.Millisecond) // give a wrong eviction the chance to happen
				evicted = metricValue(t, mirror, `berth_mirror_evicted_bytes_total{upstream="registry.k8s.io"}`)
			}
			if tc.wantEvict && evicted < 1<<20 {
				t.Fatalf("evicted %v bytes, want at least the 1 MiB layer of the least recently pulled image", evicted)
			}
			if !tc.wantEvict && evicted != 0 {
				t.Fatalf("evicted %v bytes of content pulled within cacheMinAge", evicted)
			}
			// With the upstream gone, only what is cached can be pulled.
			upstream.Stop()
			for _, name := range []string{"b", "c"} {
				run(t, env, crane, "pull", mirror.Addr+"/registry.k8s.io/"+name+":v1", filepath.Join(work, name+"-again.tar"))
			}
			_, errA := runErr(env, crane, "pull", mirror.Addr+"/registry.k8s.io/a:v1", filepath.Join(work, "a-again.tar"))
			if tc.wantEvict && errA == nil {
				t.Fatal("the evicted image was still served with the upstream down")
			}
			if !tc.wantEvict && errA != nil {
				t.Fatalf("a recently pulled image was evicted: %v", errA)
			}
		})
	}
}

// metricValue reads one sample from /metrics (0 when absent).
func metricValue(t *testing.T, b *Berth, series string) float64 {
	t.Helper()
	resp, err := http.Get(b.URL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(string(body))
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.TrimSpace(m[1]), 64)
	return v
}
