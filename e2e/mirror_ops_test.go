package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMirrorUnavailable: an uncached tag whose upstream fails answers 503 UNAVAILABLE
// naming the upstream, on HEAD and GET alike, and for unavailableTTL the mirror answers
// that from memory instead of asking the upstream again; once the TTL is over and the
// upstream is back, the tag is fetched.
func TestMirrorUnavailable(t *testing.T) {
	e := newMirrorEnvTTL(t, "3s")
	url := e.m.URL("/v2/docker.io/library/nginx/manifests/latest")
	up := "/v2/library/nginx/manifests/latest"
	e.fu.setFault(up, mi500)
	start := time.Now()
	for i, method := range []string{http.MethodHead, http.MethodGet, http.MethodHead, http.MethodGet} {
		resp, body := miMust(t, method, url, miAccept)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("request %d: %s with the upstream failing: %s, want 503", i, method, resp.Status)
		}
		if method == http.MethodGet && (miCode(body) != "UNAVAILABLE" || !strings.Contains(string(body), "docker.io")) {
			t.Errorf("request %d: GET body %q, want UNAVAILABLE naming upstream docker.io", i, miTrunc(body))
		}
	}
	if time.Since(start) < 3*time.Second {
		if n := e.fu.faultHits(up); n != 1 {
			t.Errorf("4 requests within unavailableTTL reached the failing upstream %d times, want 1", n)
		}
	}
	e.fu.setFault(up, miNoFault)
	time.Sleep(time.Until(start.Add(3200 * time.Millisecond)))
	miExpectManifest(t, url, e.p.Index)
}

// TestMirrorMetricsFromStart: every documented mirror metric is exported for every
// configured upstream before any request, so alerts can be written ahead.
func TestMirrorMetricsFromStart(t *testing.T) {
	e := newMirrorEnv(t)
	resp, body := miMust(t, http.MethodGet, e.m.URL("/metrics"), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	for _, up := range []string{"registry.k8s.io", "docker.io"} {
		for _, series := range []string{
			`berth_mirror_hits_total{kind="manifest",upstream="%s"} 0`,
			`berth_mirror_misses_total{kind="blob",upstream="%s"} 0`,
			`berth_mirror_stale_serves_total{upstream="%s"} 0`,
			`berth_mirror_upstream_bytes_total{upstream="%s"} 0`,
			`berth_mirror_upstream_errors_total{reason="network",upstream="%s"} 0`,
			`berth_mirror_coalesced_total{upstream="%s"} 0`,
			`berth_mirror_evicted_bytes_total{upstream="%s"} 0`,
			`berth_mirror_ratelimit_remaining{upstream="%s"} NaN`,
			`berth_mirror_cache_bytes{upstream="%s"} 0`,
		} {
			if want := strings.Replace(series, "%s", up, 1); !strings.Contains(string(body), want+"\n") {
				t.Errorf("/metrics at start lacks %s", want)
			}
		}
	}
}

// TestMirrorAccessLogCache: the access log says how the mirror served each request
// (cache=miss, hit, stale) and gives the duration in milliseconds.
func TestMirrorAccessLogCache(t *testing.T) {
	e := newMirrorEnv(t)
	tag := "/v2/registry.k8s.io/pause/manifests/3.10"
	layer := e.p.Layers["linux/amd64"]
	blob := "/v2/registry.k8s.io/pause/blobs/" + layer
	miExpectManifest(t, e.m.URL(tag), e.p.Index) // miss
	miExpectManifest(t, e.m.URL(tag), e.p.Index) // hit (tagTTL 1s)
	miExpectBlob(t, e.m.URL(blob), e.p.Blobs[layer])
	miExpectBlob(t, e.m.URL(blob), e.p.Blobs[layer])
	time.Sleep(1200 * time.Millisecond) // the tag goes stale
	e.fu.setFault("/v2/pause/manifests/3.10", mi500)
	miExpectManifest(t, e.m.URL(tag), e.p.Index) // stale
	e.fu.setFault("/v2/pause/manifests/3.10", miNoFault)

	var got []string
	for _, line := range strings.Split(miLog(t, e.m), "\n") {
		if !strings.Contains(line, "msg=request") || !strings.Contains(line, "path="+tag) && !strings.Contains(line, "path="+blob) {
			continue
		}
		if !strings.Contains(line, "duration_ms=") {
			t.Errorf("access log line without duration_ms: %s", line)
		}
		i := strings.Index(line, " cache=")
		if i < 0 {
			t.Errorf("access log line without cache: %s", line)
			continue
		}
		got = append(got, strings.Fields(line[i+len(" cache="):])[0])
	}
	want := []string{"miss", "hit", "miss", "hit", "stale"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("cache fields of the mirror's access log: %v, want %v", got, want)
	}
}
