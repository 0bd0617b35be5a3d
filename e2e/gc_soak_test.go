package e2e

// GC under load and crashes (issue 9): a race soak on two replicas over PostgreSQL and
// S3, kill -9 during a collection, and the orphan sweep.

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gcPushed is an image a soak client pushed, with the answer it got.
type gcPushed struct {
	repo, tag string
	manifest  []byte
	blobs     []rpBlob
}

// gcPush pushes config + layers to repo:tag through addr, skipping blobs the repository
// already has (as clients do): the window in which GC may take a blob away from a push.
// It returns the manifest PUT's answer.
func gcPush(c *http.Client, addr string, img *gcPushed) (biResp, error) {
	for _, b := range img.blobs {
		r, err := biTry(c, addr, "HEAD", "/v2/"+img.repo+"/blobs/"+b.digest, nil, nil, false)
		if err != nil {
			return r, err
		}
		if r.Status == http.StatusOK {
			continue
		}
		r, err = biTry(c, addr, "POST", "/v2/"+img.repo+"/blobs/uploads/?digest="+b.digest,
			map[string]string{"Content-Type": "application/octet-stream"}, b.data, false)
		if err != nil || r.Status != http.StatusCreated {
			return r, fmt.Errorf("push blob %s: %d %s %v", b.digest, r.Status, miTrunc(r.Body), err)
		}
	}
	return biTry(c, addr, "PUT", "/v2/"+img.repo+"/manifests/"+img.tag, map[string]string{"Content-Type": biMTManifest}, img.manifest, false)
}

// gcCheckPulls fetches the image by tag from addr and checks manifest and blobs byte for byte.
func gcCheckPulls(c *http.Client, addr string, img *gcPushed) error {
	r, err := biTry(c, addr, "GET", "/v2/"+img.repo+"/manifests/"+img.tag, map[string]string{"Accept": biMTManifest}, nil, false)
	if err != nil || r.Status != http.StatusOK || string(r.Body) != string(img.manifest) {
		return fmt.Errorf("manifest %s:%s: %d %v", img.repo, img.tag, r.Status, err)
	}
	for _, b := range img.blobs {
		r, err := biTry(c, addr, "GET", "/v2/"+img.repo+"/blobs/"+b.digest, nil, nil, false)
		if err != nil || r.Status != http.StatusOK || biSHA(r.Body) != b.digest {
			return fmt.Errorf("blob %s of %s:%s: %d %v", b.digest, img.repo, img.tag, r.Status, err)
		}
	}
	return nil
}

// gcS3Objects counts the blob objects versitygw holds under prefix berth/blobs and their bytes.
func gcS3Objects(t *testing.T, s *S3, bucket string) (n int, bytes int64) {
	t.Helper()
	for _, o := range s.objects(t, bucket, "berth/blobs") {
		info, err := os.Stat(filepath.Join(s.Data, bucket, o))
		if err == nil {
			n++
			bytes += info.Size()
		}
	}
	return n, bytes
}

// TestGCRaceSoak: for a bounded time (GC_SOAK_DURATION, default 30s) clients push images
// reusing a pool of blobs to two replicas sharing PostgreSQL and S3, while another client
// deletes tags and GC runs continuously on both replicas with review_after 0. Every
// acknowledged manifest whose tag was not deleted must pull and validate afterwards; a
// push may be refused only with MANIFEST_BLOB_UNKNOWN. When the load stops, GC converges
// on exactly the referenced bytes in the bucket.
func TestGCRaceSoak(t *testing.T) {
	soak := 30 * time.Second
	if v := os.Getenv("GC_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		soak = d
	}
	s3 := startS3(t)
	// Every client of the storm and of the check is one loopback address, far past a
	// client's rate budget: rates are off here (TestExhaustionLimits covers them).
	cfg := "database:\n  driver: postgres\n  dsn: " + postgresDSN(t) + "\n" + s3.Config("soak") + "gc:\n  reviewAfter: 0s\n  workers: 2\n" +
		"throttle:\n  read:\n    rate: 0\n  write:\n    rate: 0\n"
	a := startBerth(t, BerthOptions{Config: cfg})
	b := startBerth(t, BerthOptions{Config: cfg})
	addrs := []string{a.Addr, b.Addr}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

	var pool []rpBlob
	for i := range 24 {
		pool = append(pool, rpNewBlob(uint64(1000+i), 1<<10+i*3<<10))
	}
	var (
		mu                   sync.Mutex
		acked                []*gcPushed
		deleted              = map[*gcPushed]bool{}
		pushes, refused      atomic.Int64
		unexpected           []string
		deletes, deleteFails atomic.Int64
	)
	stop := time.Now().Add(soak)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for n := 0; time.Now().Before(stop); n++ {
				img := &gcPushed{repo: fmt.Sprintf("soak/r%d", rng.IntN(6)), tag: fmt.Sprintf("w%d-%d", w, n)}
				config := rpNewBlob(uint64(w)<<32|uint64(n), 300)
				img.blobs = []rpBlob{config}
				layers := map[string]int{}
				for _, i := range rng.Perm(len(pool))[:1+rng.IntN(2)] {
					img.blobs = append(img.blobs, pool[i])
					layers[pool[i].digest] = len(pool[i].data)
				}
				img.manifest = biManifest(config.digest, len(config.data), layers, nil)
				r, err := gcPush(client, addrs[n%2], img)
				pushes.Add(1)
				mu.Lock()
				switch {
				case err == nil && r.Status == http.StatusCreated:
					acked = append(acked, img)
				case err == nil && r.Status == http.StatusBadRequest && biErrCode(r.Body) == "MANIFEST_BLOB_UNKNOWN":
					refused.Add(1)
				default:
					unexpected = append(unexpected, fmt.Sprintf("%s:%s: %d %s %v", img.repo, img.tag, r.Status, miTrunc(r.Body), err))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() {
		// Untags four in five images soon after their push, so the pool's blobs keep
		// dropping to no reference in a repository — and get reviewed — while other
		// pushes that found them present (HEAD 200, upload skipped) reference them again.
		defer wg.Done()
		for next := 0; time.Now().Before(stop); {
			time.Sleep(2 * time.Millisecond)
			mu.Lock()
			if next >= len(acked) {
				mu.Unlock()
				continue
			}
			img := acked[next]
			next++
			if next%5 == 0 {
				mu.Unlock()
				continue // kept
			}
			deleted[img] = true // before the request: a concurrent check must not count it
			mu.Unlock()
			r, err := biTry(client, addrs[next%2], "DELETE", "/v2/"+img.repo+"/manifests/"+img.tag, nil, nil, false)
			if err != nil || r.Status != http.StatusAccepted {
				deleteFails.Add(1)
				continue
			}
			deletes.Add(1)
		}
	}()
	wg.Wait()
	if len(unexpected) > 0 {
		t.Errorf("%d pushes failed with something other than MANIFEST_BLOB_UNKNOWN, first: %s", len(unexpected), unexpected[0])
	}
	kept, lost := 0, 0
	want := map[string]int64{}
	for _, img := range acked {
		if deleted[img] {
			continue
		}
		kept++
		for _, bl := range img.blobs {
			want[bl.digest] = int64(len(bl.data))
		}
		for _, addr := range addrs {
			if err := gcCheckPulls(client, addr, img); err != nil {
				lost++
				t.Errorf("acknowledged image lost: %v", err)
				break
			}
		}
	}
	t.Logf("soak %v: %d pushes, %d acknowledged, %d refused (MANIFEST_BLOB_UNKNOWN), %d other failures; %d tags deleted (%d delete failures); %d kept images all pull from both replicas (%d lost)",
		soak, pushes.Load(), len(acked), refused.Load(), len(unexpected), deletes.Load(), deleteFails.Load(), kept, lost)

	// Load stopped: GC converges on exactly the referenced bytes.
	wantBytes := gcSum(want)
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, bytes := gcS3Objects(t, s3, "soak")
		if n == len(want) && bytes == wantBytes {
			t.Logf("bucket holds exactly the %d referenced blobs (%d bytes)", n, bytes)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bucket holds %d objects (%d bytes), want the %d referenced blobs (%d bytes); berth gc status:\n%s",
				n, bytes, len(want), wantBytes, gcBerth(t, "gc", "status", "--config", a.Config, "--data", a.Data))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("berth gc status:\n%s", gcBerth(t, "gc", "status", "--config", a.Config, "--data", a.Data))
}

// TestGCKillDuringCollection: many images are untagged at once and berth is killed with
// SIGKILL while GC works through them. After a restart GC resumes (tasks the dead process
// held are retaken after their lease): nothing referenced is lost, nothing unreferenced
// is left.
func TestGCKillDuringCollection(t *testing.T) {
	b := startBerth(t, BerthOptions{Config: "gc:\n  reviewAfter: 0s\n"})
	root := filepath.Join(b.Data, "storage")
	shared := rpNewBlob(5, 40<<10)
	var imgs []*gcPushed
	for i := range 40 {
		img := &gcPushed{repo: fmt.Sprintf("kill/r%d", i%4), tag: fmt.Sprintf("v%d", i)}
		config := rpNewBlob(uint64(100+i), 200)
		img.blobs = []rpBlob{config, shared, rpNewBlob(uint64(200+i), 8<<10), rpNewBlob(uint64(300+i), 16<<10)}
		layers := map[string]int{}
		for _, bl := range img.blobs[1:] {
			layers[bl.digest] = len(bl.data)
		}
		img.manifest = biManifest(config.digest, len(config.data), layers, nil)
		if r, err := gcPush(nil, b.Addr, img); err != nil || r.Status != http.StatusCreated {
			t.Fatalf("push %s: %d %v", img.tag, r.Status, err)
		}
		imgs = append(imgs, img)
	}
	want := map[string]int64{}
	for i, img := range imgs {
		if i%4 == 0 { // every fourth stays
			for _, bl := range img.blobs {
				want[bl.digest] = int64(len(bl.data))
			}
			continue
		}
		if r, err := biTry(nil, b.Addr, "DELETE", "/v2/"+img.repo+"/manifests/"+img.tag, nil, nil, false); err != nil || r.Status != http.StatusAccepted {
			t.Fatalf("delete %s: %d %v", img.tag, r.Status, err)
		}
	}
	before := len(gcStored(t, root))
	// Kill as soon as GC has deleted some bytes but not all: mid-collection.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if n := len(gcStored(t, root)); n < before {
			break
		}
	}
	b.Kill()
	mid := len(gcStored(t, root))
	status := gcBerth(t, "gc", "status", "--config", b.Config, "--data", b.Data)
	t.Logf("killed with %d of %d blobs still stored (%d referenced):\n%s", mid, before, len(want), status)
	if mid == len(want) || mid == before {
		t.Fatalf("the kill did not land mid-collection (%d stored, %d before, %d referenced)", mid, before, len(want))
	}
	b.start()
	gcWait(t, root, want, 90*time.Second)
	for i, img := range imgs {
		if i%4 == 0 {
			if err := gcCheckPulls(nil, b.Addr, img); err != nil {
				t.Fatalf("after the crash: %v", err)
			}
		}
	}
}

// TestGCOrphanSweep: bytes a crash left in the blob store without a row are removed by
// the sweep once older than the grace period; young ones, bytes a row names and an upload
// in progress are not touched.
func TestGCOrphanSweep(t *testing.T) {
	b := startBerth(t, BerthOptions{Config: "gc:\n  reviewAfter: 1h\n  orphanGrace: 1h\n"})
	root := filepath.Join(b.Data, "storage")
	img := &gcPushed{repo: "p/app", tag: "v1", blobs: []rpBlob{rpNewBlob(1, 100), rpNewBlob(2, 5000)}}
	img.manifest = biManifest(img.blobs[0].digest, 100, map[string]int{img.blobs[1].digest: 5000}, nil)
	if r, err := gcPush(nil, b.Addr, img); err != nil || r.Status != http.StatusCreated {
		t.Fatalf("push: %d %v", r.Status, err)
	}
	// What a crash between the bytes and the row leaves: committed blob files, no row.
	orphan := func(seed uint64, age time.Duration) string {
		bl := rpNewBlob(seed, 7000)
		hexPart := strings.TrimPrefix(bl.digest, "sha256:")
		p := filepath.Join(root, "blobs", "sha256", hexPart[:2], hexPart+"-"+fmt.Sprintf("%032x", seed))
		os.MkdirAll(filepath.Dir(p), 0o750)
		if err := os.WriteFile(p, bl.data, 0o640); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		os.Chtimes(p, at, at)
		return p
	}
	old, young := orphan(50, 2*time.Hour), orphan(51, time.Minute)
	// An upload in progress: its bytes are acknowledged, its session row exists.
	loc := biStartUpload(t, b.Addr, "p/app")
	part := rpNewBlob(60, 3000)
	loc = biPatch(t, b.Addr, loc, 0, part.data)

	out := gcBerth(t, "gc", "run", "--dry-run", "--config", b.Config, "--data", b.Data)
	if !strings.Contains(out, "1 orphaned files (7000 bytes") {
		t.Fatalf("dry run: %s", out)
	}
	if _, err := os.Stat(old); err != nil {
		t.Fatal("a dry run deleted the orphan")
	}
	out = gcBerth(t, "gc", "run", "--config", b.Config, "--data", b.Data)
	if !strings.Contains(out, "1 orphaned files (7000 bytes") {
		t.Fatalf("gc run: %s", out)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("orphan older than the grace period still there: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("orphan younger than the grace period removed: %v", err)
	}
	if err := gcCheckPulls(nil, b.Addr, img); err != nil {
		t.Fatal(err)
	}
	r := biDo(t, nil, b.Addr, "PUT", biWithQuery(loc, "digest="+part.digest), nil, nil, false)
	if r.Status != http.StatusCreated {
		t.Fatalf("finishing the upload in progress after the sweep: %d %s", r.Status, r.Body)
	}
}
