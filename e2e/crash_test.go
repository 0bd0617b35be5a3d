package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// This file holds the crash-safety tests of issue 2: SIGKILL during concurrent pushes
// (TestCrashDuringConcurrentPushes) and SIGTERM during a slow upload (TestGracefulShutdown*).
// Helpers are prefixed "cr".

const (
	crImages    = 20      // concurrent pushes per round
	crLayers    = 2       // layers per image (plus a config blob)
	crChunk     = 1 << 20 // PATCH size
	crMinBlob   = 64 << 10
	crMaxBlob   = 8 << 20
	crRounds    = 3
	crPushLimit = 30 * time.Second // a round's pushes must have been killed by then
)

// crData returns size deterministic pseudo-random bytes for seed: blobs are regenerated
// when needed instead of being kept in memory.
func crData(seed uint64, size int64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// crBlob is one blob of a push and what the registry acknowledged about it.
type crBlob struct {
	repo   string
	seed   uint64
	size   int64
	digest string

	// Guarded by crLedger.mu.
	loc       string // upload session, once the POST was answered 202
	acked     int64  // bytes of the session acknowledged by a 202
	inflight  int64  // length of a PATCH sent but not answered
	putSent   bool   // the closing PUT was sent
	committed bool   // the closing PUT was answered 201
}

// crImage is one pushed image: a config and layers in its own repository, tagged.
type crImage struct {
	repo, tag string
	blobs     []*crBlob
	manifest  []byte
	digest    string

	// Guarded by crLedger.mu.
	putSent, acked bool
}

// crLedger records, across rounds, everything the registry acknowledged.
type crLedger struct {
	mu     sync.Mutex
	images []*crImage
	blobs  atomic.Int64 // committed blobs in the current round
	mans   atomic.Int64 // acknowledged manifests in the current round
}

func crNewImage(rng *rand.Rand, round, i int) *crImage {
	img := &crImage{repo: fmt.Sprintf("crash/r%d/img%02d", round, i), tag: fmt.Sprintf("v%d", i)}
	for j := 0; j <= crLayers; j++ {
		var size int64
		if j == 0 {
			size = crMinBlob + rng.Int64N(3*crMinBlob) // config: 64–256 KiB
		} else {
			// Layers: log-uniform between 64 KiB and 8 MiB, so most are small and a few big.
			size = int64(float64(crMinBlob) * math.Pow(float64(crMaxBlob)/crMinBlob, rng.Float64()))
		}
		seed := rng.Uint64()
		s := sha256.Sum256(crData(seed, size))
		img.blobs = append(img.blobs, &crBlob{repo: img.repo, seed: seed, size: size, digest: "sha256:" + hex.EncodeToString(s[:])})
	}
	layers := map[string]int{}
	for _, bl := range img.blobs[1:] {
		layers[bl.digest] = int(bl.size)
	}
	img.manifest = biManifest(img.blobs[0].digest, int(img.blobs[0].size), layers,
		map[string]any{"annotations": map[string]string{"org.example.image": img.repo}})
	img.digest = biSHA(img.manifest)
	return img
}

// crClient is an HTTP client with its own connection pool, so a round's connections die
// with the process they were made to.
func crClient() *http.Client {
	return &http.Client{
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// crPush pushes img with POST + PATCH chunks + PUT per blob, then the manifest by tag,
// recording every acknowledgement in the ledger as it arrives. It stops at the first
// failure: after the kill every request fails. A non-2xx answer is reported through
// unexpected (the server answered, so it was not killed yet).
func crPush(c *http.Client, addr string, led *crLedger, img *crImage, onAck func(), unexpected func(string)) {
	for _, bl := range img.blobs {
		data := crData(bl.seed, bl.size)
		r, err := biTry(c, addr, "POST", "/v2/"+bl.repo+"/blobs/uploads/", nil, []byte{}, false)
		if err != nil {
			return
		}
		if r.Status != http.StatusAccepted || r.Header.Get("Location") == "" {
			unexpected(fmt.Sprintf("POST upload in %s: %d %s", bl.repo, r.Status, r.Body))
			return
		}
		loc := r.Header.Get("Location")
		led.mu.Lock()
		bl.loc = loc
		led.mu.Unlock()
		for off := int64(0); off < bl.size; {
			n := min(int64(crChunk), bl.size-off)
			led.mu.Lock()
			bl.inflight = n
			led.mu.Unlock()
			r, err := biTry(c, addr, "PATCH", loc, map[string]string{
				"Content-Type":  "application/octet-stream",
				"Content-Range": fmt.Sprintf("%d-%d", off, off+n-1),
			}, data[off:off+n], false)
			if err != nil {
				return
			}
			if r.Status != http.StatusAccepted {
				unexpected(fmt.Sprintf("PATCH %s at %d: %d %s", loc, off, r.Status, r.Body))
				return
			}
			if got, want := r.Header.Get("Range"), fmt.Sprintf("0-%d", off+n-1); got != want {
				unexpected(fmt.Sprintf("PATCH %s: Range %q, want %q", loc, got, want))
			}
			off += n
			if l := r.Header.Get("Location"); l != "" {
				loc = l
			}
			led.mu.Lock()
			bl.loc, bl.acked, bl.inflight = loc, off, 0
			led.mu.Unlock()
		}
		led.mu.Lock()
		bl.putSent = true
		led.mu.Unlock()
		r, err = biTry(c, addr, "PUT", biWithQuery(loc, "digest="+bl.digest), nil, nil, false)
		if err != nil {
			return
		}
		if r.Status != http.StatusCreated {
			unexpected(fmt.Sprintf("PUT %s: %d %s", loc, r.Status, r.Body))
			return
		}
		led.mu.Lock()
		bl.committed = true
		led.mu.Unlock()
		led.blobs.Add(1)
		onAck()
	}
	led.mu.Lock()
	img.putSent = true
	led.mu.Unlock()
	r, err := biTry(c, addr, "PUT", "/v2/"+img.repo+"/manifests/"+img.tag, map[string]string{"Content-Type": biMTManifest}, img.manifest, false)
	if err != nil {
		return
	}
	if r.Status != http.StatusCreated || r.Header.Get("Docker-Content-Digest") != img.digest {
		unexpected(fmt.Sprintf("PUT manifest %s:%s: %d %q %s", img.repo, img.tag, r.Status, r.Header.Get("Docker-Content-Digest"), r.Body))
		return
	}
	led.mu.Lock()
	img.acked = true
	led.mu.Unlock()
	led.mans.Add(1)
	onAck()
}

// crGetBlob reads a blob and checks that whatever is served is exactly the content: it
// returns the status, and reports any 200 whose bytes do not hash to the digest.
func crGetBlob(t *testing.T, c *http.Client, addr string, bl *crBlob) int {
	t.Helper()
	r, err := biTry(c, addr, "GET", "/v2/"+bl.repo+"/blobs/"+bl.digest, nil, nil, false)
	if err != nil {
		t.Errorf("GET blob %s in %s: %v", bl.digest, bl.repo, err)
		return 0
	}
	switch r.Status {
	case http.StatusOK:
		if int64(len(r.Body)) != bl.size || biSHA(r.Body) != bl.digest {
			t.Errorf("GET blob %s in %s served %d bytes hashing to %s: corrupt or partial blob visible",
				bl.digest, bl.repo, len(r.Body), biSHA(r.Body))
		}
	case http.StatusNotFound:
	default:
		t.Errorf("GET blob %s in %s: %d %s", bl.digest, bl.repo, r.Status, r.Body)
	}
	return r.Status
}

// crGetManifest resolves the image's tag and digest; it reports any 200 that is not the
// pushed manifest byte for byte and returns the tag's status.
func crGetManifest(t *testing.T, c *http.Client, addr string, img *crImage) int {
	t.Helper()
	status := 0
	for _, ref := range []string{img.tag, img.digest} {
		r, err := biTry(c, addr, "GET", "/v2/"+img.repo+"/manifests/"+ref, map[string]string{"Accept": biMTManifest}, nil, false)
		if err != nil {
			t.Errorf("GET manifest %s:%s: %v", img.repo, ref, err)
			return 0
		}
		switch r.Status {
		case http.StatusOK:
			if got := r.Header.Get("Docker-Content-Digest"); got != img.digest || !bytes.Equal(r.Body, img.manifest) {
				t.Errorf("GET manifest %s:%s: digest %s (%d bytes), want %s", img.repo, ref, got, len(r.Body), img.digest)
			}
		case http.StatusNotFound:
		default:
			t.Errorf("GET manifest %s:%s: %d %s", img.repo, ref, r.Status, r.Body)
		}
		if status == 0 {
			status = r.Status
		}
	}
	return status
}

// crVerify checks the whole ledger against the restarted registry and resumes what the
// crash interrupted. It returns how many sessions resumed and how many were gone.
func crVerify(t *testing.T, c *http.Client, addr string, led *crLedger) (resumed, gone int) {
	t.Helper()
	led.mu.Lock()
	defer led.mu.Unlock()
	for _, img := range led.images {
		for _, bl := range img.blobs {
			status := crGetBlob(t, c, addr, bl)
			switch {
			case bl.committed:
				if status != http.StatusOK {
					t.Errorf("acknowledged blob %s in %s lost after the crash: %d", bl.digest, bl.repo, status)
				}
			case bl.loc == "":
				if status != http.StatusNotFound {
					t.Errorf("blob %s in %s was never uploaded but GET answers %d", bl.digest, bl.repo, status)
				}
			default:
				r, ok, g := crResume(t, c, addr, bl)
				if r {
					resumed++
				}
				if g {
					gone++
				}
				if ok {
					bl.committed = true
				}
			}
		}
		status := crGetManifest(t, c, addr, img)
		switch {
		case img.acked && status != http.StatusOK:
			t.Errorf("acknowledged manifest %s:%s lost after the crash: %d", img.repo, img.tag, status)
		case !img.putSent && status != http.StatusNotFound:
			t.Errorf("manifest %s:%s was never pushed but GET answers %d", img.repo, img.tag, status)
		}
	}
	return resumed, gone
}

// crResume handles a blob whose upload was interrupted: the session either reports an
// offset the client can have caused (the acknowledged one, or that plus the unanswered
// chunk) and completes, or is gone (404 BLOB_UPLOAD_UNKNOWN). A closing PUT that was
// sent may also have committed the blob.
func crResume(t *testing.T, c *http.Client, addr string, bl *crBlob) (resumed, committed, gone bool) {
	t.Helper()
	r, err := biTry(c, addr, "GET", bl.loc, nil, nil, false)
	if err != nil {
		t.Errorf("upload status %s: %v", bl.loc, err)
		return false, false, false
	}
	switch r.Status {
	case http.StatusNotFound:
		if code := biErrCode(r.Body); code != "BLOB_UPLOAD_UNKNOWN" {
			t.Errorf("interrupted upload %s: 404 with code %q, want BLOB_UPLOAD_UNKNOWN", bl.loc, code)
		}
		// Cleaned up (or committed by a closing PUT that was not answered: then the blob
		// was checked intact above).
		return false, false, true
	case http.StatusNoContent:
	default:
		t.Errorf("upload status %s after the crash: %d %s", bl.loc, r.Status, r.Body)
		return false, false, false
	}
	off, err := biUploadOffset(r.Header.Get("Range"))
	if err != nil {
		t.Errorf("upload status %s: %v", bl.loc, err)
		return false, false, false
	}
	if off != bl.acked && off != bl.acked+bl.inflight {
		t.Errorf("interrupted upload %s holds %d bytes; the client was acknowledged %d and had %d more in flight",
			bl.loc, off, bl.acked, bl.inflight)
		return false, false, false
	}
	loc := bl.loc
	if l := r.Header.Get("Location"); l != "" {
		loc = l
	}
	data := crData(bl.seed, bl.size)
	if off < bl.size {
		r, err = biTry(c, addr, "PATCH", loc, map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, bl.size-1),
		}, data[off:], false)
		if err == nil && crGone(r) {
			return false, false, true
		}
		if err != nil || r.Status != http.StatusAccepted {
			t.Errorf("resuming %s at %d: %d %v %s", loc, off, r.Status, err, r.Body)
			return false, false, false
		}
		if l := r.Header.Get("Location"); l != "" {
			loc = l
		}
	}
	r, err = biTry(c, addr, "PUT", biWithQuery(loc, "digest="+bl.digest), nil, nil, false)
	if err == nil && crGone(r) {
		// The status said the session was there but its data is not (e.g. the crash hit
		// between committing the bytes and recording it): ending it with 404 is a clean-up.
		return false, false, true
	}
	if err != nil || r.Status != http.StatusCreated {
		t.Errorf("closing resumed upload %s (offset %d of %d, closing PUT sent before the kill: %v): %d %v %s",
			loc, off, bl.size, bl.putSent, r.Status, err, r.Body)
		return true, false, false
	}
	if crGetBlob(t, c, addr, bl) != http.StatusOK {
		t.Errorf("resumed blob %s not readable", bl.digest)
		return true, false, false
	}
	return true, true, false
}

// crGone tells a 404 BLOB_UPLOAD_UNKNOWN: the session was cleaned up.
func crGone(r biResp) bool {
	return r.Status == http.StatusNotFound && biErrCode(r.Body) == "BLOB_UPLOAD_UNKNOWN"
}

// crFreshPush pushes img again from scratch and checks it is fully readable.
func crFreshPush(t *testing.T, c *http.Client, addr string, img *crImage) {
	t.Helper()
	for _, bl := range img.blobs {
		data := crData(bl.seed, bl.size)
		loc := biStartUpload(t, addr, bl.repo)
		for off := int64(0); off < bl.size; off += crChunk {
			loc = biPatch(t, addr, loc, off, data[off:min(off+crChunk, bl.size)])
		}
		r := biDo(t, c, addr, "PUT", biWithQuery(loc, "digest="+bl.digest), nil, nil, false)
		if r.Status != http.StatusCreated {
			t.Errorf("fresh push of blob %s to %s: %d %s", bl.digest, bl.repo, r.Status, r.Body)
		}
		if crGetBlob(t, c, addr, bl) != http.StatusOK {
			t.Errorf("freshly pushed blob %s in %s not readable", bl.digest, bl.repo)
		}
	}
	r := biDo(t, c, addr, "PUT", "/v2/"+img.repo+"/manifests/"+img.tag, map[string]string{"Content-Type": biMTManifest}, img.manifest, false)
	if r.Status != http.StatusCreated || r.Header.Get("Docker-Content-Digest") != img.digest {
		t.Errorf("fresh push of manifest %s:%s: %d %q %s", img.repo, img.tag, r.Status, r.Header.Get("Docker-Content-Digest"), r.Body)
	}
	if crGetManifest(t, c, addr, img) != http.StatusOK {
		t.Errorf("freshly pushed manifest %s:%s not readable", img.repo, img.tag)
	}
}

// TestCrashDuringConcurrentPushes SIGKILLs berth while 20 images are being pushed, in
// several rounds with different kill moments, and checks after each restart that every
// acknowledged push is intact, nothing partial is visible, interrupted sessions resume
// or are gone, and the same content pushes again.
func TestCrashDuringConcurrentPushes(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(strings.TrimSpace(os.Getenv("BERTH_CRASH_SEED")), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (set BERTH_CRASH_SEED to replay the same images and kill points)", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	b := startBerth(t, BerthOptions{})
	led := &crLedger{}
	// Kill points: early (a few blobs in), mid-flight (many blobs), late (manifests landing).
	kb1, kb2, km := 2+rng.Int64N(4), 15+rng.Int64N(16), 2+rng.Int64N(5)
	kills := []struct {
		what string
		when func() bool
	}{
		{fmt.Sprintf("after %d blobs", kb1), func() bool { return led.blobs.Load() >= kb1 }},
		{fmt.Sprintf("after %d blobs", kb2), func() bool { return led.blobs.Load() >= kb2 }},
		{fmt.Sprintf("after %d manifests", km), func() bool { return led.mans.Load() >= km }},
	}

	for round := 0; round < crRounds; round++ {
		kill := kills[round%len(kills)]
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			start := time.Now()
			var imgs []*crImage
			for i := 0; i < crImages; i++ {
				imgs = append(imgs, crNewImage(rng, round, i))
			}
			led.mu.Lock()
			led.images = append(led.images, imgs...)
			led.mu.Unlock()
			led.blobs.Store(0)
			led.mans.Store(0)

			addr := b.Addr
			c := crClient()
			var killOnce sync.Once
			var triggered atomic.Bool
			killed := make(chan struct{})
			jitter := time.Duration(rng.Int64N(int64(20 * time.Millisecond)))
			doKill := func() {
				killOnce.Do(func() {
					triggered.Store(true)
					go func() {
						time.Sleep(jitter)
						b.Kill()
						close(killed)
					}()
				})
			}
			onAck := func() {
				if kill.when() {
					doKill()
				}
			}
			var unexpectedMu sync.Mutex
			var unexpected []string
			report := func(s string) { // an answer, so given before the kill
				unexpectedMu.Lock()
				unexpected = append(unexpected, s)
				unexpectedMu.Unlock()
			}
			var wg sync.WaitGroup
			for _, img := range imgs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					crPush(c, addr, led, img, onAck, report)
				}()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
				if !triggered.Load() {
					t.Logf("every push finished before the kill point (%s); killing now", kill.what)
					doKill()
				}
			case <-killed:
			case <-time.After(crPushLimit):
				t.Errorf("kill point (%s) not reached within %s", kill.what, crPushLimit)
				doKill()
			}
			<-killed
			<-done
			c.CloseIdleConnections()
			for _, s := range unexpected {
				t.Errorf("error answer before the kill: %s", s)
			}

			led.mu.Lock()
			var nBlobs, nMans, nOpen int
			for _, img := range imgs {
				for _, bl := range img.blobs {
					if bl.committed {
						nBlobs++
					} else if bl.loc != "" {
						nOpen++
					}
				}
				if img.acked {
					nMans++
				}
			}
			led.mu.Unlock()
			t.Logf("killed %s after %s: %d blobs and %d manifests acknowledged, %d uploads interrupted",
				kill.what, time.Since(start).Round(time.Millisecond), nBlobs, nMans, nOpen)

			b.Restart()
			c = crClient()
			resumed, gone := crVerify(t, c, b.Addr, led)
			t.Logf("after restart: %d interrupted uploads resumed, %d gone", resumed, gone)
			crLogErrors(t, b)
			biAlive(t, b.Addr)

			for _, img := range imgs {
				crFreshPush(t, c, b.Addr, img)
			}
			led.mu.Lock()
			for _, img := range imgs {
				img.putSent, img.acked = true, true
				for _, bl := range img.blobs {
					bl.committed = true
				}
			}
			led.mu.Unlock()
			t.Logf("round done in %s", time.Since(start).Round(time.Millisecond))
		})
	}
	// After the last round, one more clean restart: everything ever acknowledged is intact.
	b.Restart()
	crVerify(t, crClient(), b.Addr, led)
}

// crSlowBody streams data in pieces with a pause between them and calls mid once, after
// about a third has been sent.
type crSlowBody struct {
	data  []byte
	off   int
	piece int
	pause time.Duration
	mid   func()
	fired bool
}

func (s *crSlowBody) Read(p []byte) (int, error) {
	if s.off >= len(s.data) {
		return 0, io.EOF
	}
	if s.off > 0 {
		time.Sleep(s.pause)
	}
	if !s.fired && s.off >= len(s.data)/3 {
		s.fired = true
		s.mid()
	}
	n := copy(p[:min(len(p), s.piece)], s.data[s.off:])
	s.off += n
	return n, nil
}

// TestGracefulShutdown sends SIGTERM while a slow upload is streaming: berth must stop
// accepting connections, let the upload finish (201, or 202 for a chunk), exit cleanly,
// and serve the blob after a restart.
func TestGracefulShutdown(t *testing.T) {
	data := crData(42, 3<<20)
	dgst := biSHA(data)
	for _, mode := range []string{"monolithic POST", "closing PUT", "PATCH chunk"} {
		t.Run(mode, func(t *testing.T) {
			b := startBerth(t, BerthOptions{})
			repo := "graceful/" + strings.ReplaceAll(strings.ToLower(mode), " ", "-")
			var loc, method, path string
			want := http.StatusCreated
			switch mode {
			case "monolithic POST":
				method, path = "POST", "/v2/"+repo+"/blobs/uploads/?digest="+dgst
			case "closing PUT":
				loc = biStartUpload(t, b.Addr, repo)
				method, path = "PUT", biWithQuery(loc, "digest="+dgst)
			case "PATCH chunk":
				loc = biStartUpload(t, b.Addr, repo)
				method, path, want = "PATCH", loc, http.StatusAccepted
			}
			var signalled atomic.Bool
			refused := make(chan bool, 1)
			body := &crSlowBody{data: data, piece: 64 << 10, pause: 25 * time.Millisecond, mid: func() {
				if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Errorf("SIGTERM: %v", err)
				}
				signalled.Store(true)
				// While the upload is still streaming, new connections must be refused.
				go func() {
					deadline := time.Now().Add(2 * time.Second)
					for time.Now().Before(deadline) {
						conn, err := net.DialTimeout("tcp", b.Addr, 200*time.Millisecond)
						if err != nil {
							refused <- true
							return
						}
						conn.Close()
						time.Sleep(20 * time.Millisecond)
					}
					refused <- false
				}()
			}}
			req, err := http.NewRequest(method, b.URL(path), body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = int64(len(data))
			req.Header.Set("Content-Type", "application/octet-stream")
			if mode == "PATCH chunk" {
				req.Header.Set("Content-Range", fmt.Sprintf("0-%d", len(data)-1))
			}
			start := time.Now()
			resp, err := crClient().Do(req)
			if err != nil {
				t.Fatalf("slow %s during shutdown: %v", mode, err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !signalled.Load() {
				t.Fatalf("SIGTERM was never sent")
			}
			if resp.StatusCode != want {
				t.Fatalf("slow %s during shutdown: %d %s, want %d", mode, resp.StatusCode, msg, want)
			}
			t.Logf("%s of %d bytes finished %d in %s across SIGTERM", mode, len(data), resp.StatusCode, time.Since(start).Round(time.Millisecond))
			if !<-refused {
				t.Errorf("berth kept accepting connections after SIGTERM")
			}
			b.Stop() // already exiting: waits for it
			if code := b.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("berth exited with %d after SIGTERM, want 0", code)
			}
			b.start()
			if mode == "PATCH chunk" {
				// The chunk was acknowledged before the shutdown: the session resumes.
				r := biDo(t, nil, b.Addr, "GET", loc, nil, nil, false)
				if r.Status != http.StatusNoContent || r.Header.Get("Range") != fmt.Sprintf("0-%d", len(data)-1) {
					t.Fatalf("upload status after restart: %d Range %q, want 204 0-%d", r.Status, r.Header.Get("Range"), len(data)-1)
				}
				r = biDo(t, nil, b.Addr, "PUT", biWithQuery(loc, "digest="+dgst), nil, nil, false)
				if r.Status != http.StatusCreated {
					t.Fatalf("closing the session after restart: %d %s", r.Status, r.Body)
				}
			}
			r := biDo(t, nil, b.Addr, "GET", "/v2/"+repo+"/blobs/"+dgst, nil, nil, false)
			if r.Status != http.StatusOK || !bytes.Equal(r.Body, data) {
				t.Fatalf("blob after restart: %d, %d bytes, intact=%v", r.Status, len(r.Body), bytes.Equal(r.Body, data))
			}
		})
	}
}

// crLogErrors copies berth's error log lines into the test log when the test failed, so
// the cause of a 500 is visible without the data directory.
func crLogErrors(t *testing.T, b *Berth) {
	t.Helper()
	if !t.Failed() {
		return
	}
	out, err := os.ReadFile(b.logPath)
	if err != nil {
		return
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			if n++; n <= 10 {
				t.Logf("berth: %s", line)
			}
		}
	}
}
