package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
)

// TestMirrorCoalescingAcrossReplicas: two Berth processes sharing one metadata database
// and blob store fetch a cold blob for many clients on both: the upstream serves it once
// (the replica holding the blob's fetch lease downloads, the other waits for its commit).
func TestMirrorCoalescingAcrossReplicas(t *testing.T) {
	up := startBerth(t, BerthOptions{})
	fu := newMiUpstream(t, up)
	const size = 32 << 20
	big := miRandom(7, size)
	sum := sha256.Sum256(big)
	dgst := "sha256:" + hex.EncodeToString(sum[:])
	pushImage(t, up, "big/image", "v1", big)
	upPath := "/v2/big/image/blobs/" + dgst
	fu.throttle(upPath, 32<<20) // about a second, so both replicas ask while it runs

	cfg := fmt.Sprintf("mirror:\n  upstreams:\n    - name: registry.k8s.io\n      url: %s\n      timeout: 5s\n", fu.URL())
	a := startBerth(t, BerthOptions{Config: cfg})
	// Replica B runs on A's data directory: the same SQLite database and blob store,
	// as replicas share PostgreSQL and S3.
	b := startBerth(t, BerthOptions{Config: cfg, Data: a.Data})

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		replica := a
		if i%2 == 1 {
			replica = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(replica.URL("/v2/registry.k8s.io/big/image/blobs/" + dgst))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil || resp.StatusCode != 200 || n != size || "sha256:"+hex.EncodeToString(h.Sum(nil)) != dgst {
				errs <- fmt.Errorf("status %d, %d bytes, err %v", resp.StatusCode, n, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := fu.count(http.MethodGet, upPath); n != 1 {
		t.Fatalf("upstream served the blob %d times to two replicas, want 1", n)
	}
}

// TestMirrorManifestCoalescing: concurrent pulls of an uncached tag make one upstream
// manifest GET (Docker Hub counts each against its pull limit).
func TestMirrorManifestCoalescing(t *testing.T) {
	up := startBerth(t, BerthOptions{})
	seedPause(t, up, "pause", "3.10")
	fu := newMiUpstream(t, up)
	fu.throttle("/v2/pause/manifests/3.10", 2000) // slow enough that all requests overlap
	m := startBerth(t, BerthOptions{Config: fmt.Sprintf("mirror:\n  upstreams:\n    - name: registry.k8s.io\n      url: %s\n      timeout: 10s\n", fu.URL())})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(m.URL("/v2/registry.k8s.io/pause/manifests/3.10"))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("manifest GET: %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	if n := fu.count(http.MethodGet, "/v2/pause/manifests/3.10"); n != 1 {
		t.Fatalf("20 concurrent pulls of an uncached tag made %d upstream manifest GETs, want 1", n)
	}
}
