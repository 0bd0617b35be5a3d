package e2e

// The mirror and pull-through cache (issue 3), end to end. The upstream is a real
// registry on loopback: a second berth holding the multi-arch pause fixture as
// pause:3.10 and library/nginx:latest. Between the mirror and it sits an in-test reverse
// proxy (miUpstream) that counts every request and every body byte per path, and injects
// faults on demand: 429, 500, a hang past the mirror's timeout, a connection closed
// mid-body, a body that stalls half-way, or bytes that do not match the digest. The mirror under test is a third
// berth whose upstreams registry.k8s.io (prefix k8s, the ns= target) and docker.io (the
// default upstream) both point at that proxy.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------- faulty upstream

// miFault is a failure the proxy injects for one upstream path.
type miFault string

const (
	miNoFault miFault = ""
	mi429     miFault = "429"
	mi500     miFault = "500"
	miHang    miFault = "hang past the timeout"
	miCut     miFault = "close mid-body"
	miCorrupt miFault = "bytes not matching the digest"
	miStall   miFault = "stall mid-body past the timeout"
)

// miStallCap is how long a stalled body is held open when the mirror does not give up
// by itself (it should after its 2s timeout).
const miStallCap = 10 * time.Second

// miRequest is one request the proxy received.
type miRequest struct {
	Method, Path, Query string
	Fault               miFault
}

// miUpstream is the counting, fault-injecting reverse proxy in front of the upstream berth.
type miUpstream struct {
	srv       *httptest.Server
	target    string
	client    *http.Client
	stop      chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex
	log    []miRequest
	sent   map[string]int64     // response body bytes sent, per path
	done   map[string]time.Time // when a GET body of the path was last sent completely
	faults map[string]miFault   // per path, for every method
	rates  map[string]int64     // per path, bytes per second
}

func newMiUpstream(t testing.TB, up *Berth) *miUpstream {
	u := &miUpstream{
		target: "http://" + up.Addr,
		client: &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}},
		stop:   make(chan struct{}),
		sent:   map[string]int64{}, done: map[string]time.Time{},
		faults: map[string]miFault{}, rates: map[string]int64{},
	}
	u.srv = httptest.NewServer(u)
	t.Cleanup(u.Close)
	return u
}

// URL is the proxy's base URL, what the mirror is configured with.
func (u *miUpstream) URL() string { return u.srv.URL }

// Close stops the upstream: later connections are refused.
func (u *miUpstream) Close() {
	u.closeOnce.Do(func() {
		close(u.stop)
		u.srv.CloseClientConnections()
		u.srv.Close()
	})
}

func (u *miUpstream) setFault(path string, f miFault) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if f == miNoFault {
		delete(u.faults, path)
	} else {
		u.faults[path] = f
	}
}

func (u *miUpstream) throttle(path string, bytesPerSecond int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.rates[path] = bytesPerSecond
}

// requests returns a copy of the request log.
func (u *miUpstream) requests() []miRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]miRequest(nil), u.log...)
}

// count is how many requests with method ("" for any) reached path.
func (u *miUpstream) count(method, path string) int {
	n := 0
	for _, r := range u.requests() {
		if r.Path == path && (method == "" || r.Method == method) {
			n++
		}
	}
	return n
}

// faultHits is how many requests for path were answered with an injected fault.
func (u *miUpstream) faultHits(path string) int {
	n := 0
	for _, r := range u.requests() {
		if r.Path == path && r.Fault != miNoFault {
			n++
		}
	}
	return n
}

func (u *miUpstream) bytesSent(path string) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sent[path]
}

func (u *miUpstream) doneAt(path string) time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.done[path]
}

func (u *miUpstream) addSent(path string, n int64) {
	u.mu.Lock()
	u.sent[path] += n
	u.mu.Unlock()
}

func (u *miUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	u.mu.Lock()
	fault, rate := u.faults[path], u.rates[path]
	u.log = append(u.log, miRequest{Method: r.Method, Path: path, Query: r.URL.RawQuery, Fault: fault})
	u.mu.Unlock()

	switch fault {
	case mi429, mi500:
		code, status := "TOOMANYREQUESTS", http.StatusTooManyRequests
		if fault == mi500 {
			code, status = "UNKNOWN", http.StatusInternalServerError
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"errors":[{"code":%q,"message":"injected by the test"}]}`, code)
		return
	case miHang:
		select {
		case <-r.Context().Done():
		case <-u.stop:
		case <-time.After(30 * time.Second):
		}
		return
	}

	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.target+r.URL.RequestURI(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, k := range []string{"Accept", "Range", "Authorization", "If-None-Match", "If-Range"} {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[k] = v
		}
	}
	resp, err := u.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	size := resp.ContentLength
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 64<<10)
	var off int64
	start := time.Now()
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if fault == miCorrupt && size > 0 {
				if mid := size / 2; mid >= off && mid < off+int64(n) {
					chunk[mid-off] ^= 0xff // same length, one byte wrong
				}
			}
			if (fault == miCut || fault == miStall) && size > 0 && off+int64(n) >= size/2 {
				k := size/2 - off
				_, _ = w.Write(chunk[:k])
				if flusher != nil {
					flusher.Flush()
				}
				u.addSent(path, k)
				if fault == miStall { // no more bytes, connection open, until the mirror gives up
					select {
					case <-r.Context().Done():
					case <-u.stop:
					case <-time.After(miStallCap):
					}
				}
				panic(http.ErrAbortHandler) // the connection closes with the body half sent
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			off += int64(n)
			u.addSent(path, int64(n))
			if rate > 0 {
				due := time.Duration(float64(off) / float64(rate) * float64(time.Second))
				if d := due - time.Since(start); d > 0 {
					time.Sleep(d)
				}
			}
		}
		if rerr == io.EOF {
			u.mu.Lock()
			u.done[path] = time.Now()
			u.mu.Unlock()
			return
		}
		if rerr != nil {
			return
		}
	}
}

// ---------------------------------------------------------------- environment

// miEnv is an upstream berth, the faulty proxy in front of it, and the mirror under test.
type miEnv struct {
	p  *pauseImage
	up *Berth      // the real upstream registry
	fu *miUpstream // what the mirror talks to
	m  *Berth      // the mirror
}

// newMirrorEnv is the usual environment. Its upstreams forget failures at once
// (unavailableTTL 1ns), so fault tests see every fault reach the upstream.
func newMirrorEnv(t *testing.T) *miEnv { t.Helper(); return newMirrorEnvTTL(t, "1ns") }

func newMirrorEnvTTL(t *testing.T, unavailableTTL string) *miEnv {
	t.Helper()
	p := pauseFixture(t)
	up := startBerth(t, BerthOptions{})
	seedPause(t, up, "pause", "3.10")
	seedPause(t, up, "library/nginx", "latest")
	fu := newMiUpstream(t, up)
	cfg := fmt.Sprintf(`mirror:
  defaultUpstream: docker.io
  localProjects: [team]
  upstreams:
    - name: registry.k8s.io
      url: %[1]s
      prefixes: [k8s]
      tagTTL: 1s
      negativeTTL: 30s
      unavailableTTL: %[2]s
      timeout: 2s
    - name: docker.io
      url: %[1]s
      tagTTL: 1s
      negativeTTL: 30s
      unavailableTTL: %[2]s
      timeout: 2s
`, fu.URL(), unavailableTTL)
	m := startBerth(t, BerthOptions{Config: cfg})
	return &miEnv{p: p, up: up, fu: fu, m: m}
}

var miClient = &http.Client{
	Timeout:   2 * time.Minute,
	Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
}

// miDo sends one request and reads the whole body. A transport error or a body cut
// short (what a client of a failed stream sees) is returned as err, with the response
// and the bytes read so far.
func miDo(method, url string, headers map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := miClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// miMust is miDo for requests that must not fail at the transport level.
func miMust(t testing.TB, method, url string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := miDo(method, url, headers)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp, body
}

var miAccept = map[string]string{"Accept": clManifestAccept}

// miCode is the first OCI error code of an error body.
func miCode(body []byte) string {
	var e struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// miExpectManifest checks a manifest GET: 200, the bytes and Docker-Content-Digest.
func miExpectManifest(t testing.TB, url string, want []byte) {
	t.Helper()
	resp, body := miMust(t, http.MethodGet, url, miAccept)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("GET %s: %s, body %q\nwant 200 and %s", url, resp.Status, miTrunc(body), miTrunc(want))
	}
	if dcd := resp.Header.Get("Docker-Content-Digest"); dcd != clDigest(want) {
		t.Fatalf("GET %s: Docker-Content-Digest %q, want %s", url, dcd, clDigest(want))
	}
}

// miExpectBlob checks a blob GET returns exactly want.
func miExpectBlob(t testing.TB, url string, want []byte) {
	t.Helper()
	resp, body := miMust(t, http.MethodGet, url, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("GET %s: %s, %d bytes with digest %s; want 200, %d bytes with digest %s (body %q)",
			url, resp.Status, len(body), clDigest(body), len(want), clDigest(want), miTrunc(body))
	}
}

func miTrunc(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// miRandom returns n deterministic pseudo-random bytes.
func miRandom(seed uint64, n int) []byte {
	var s [32]byte
	for i := range s {
		s[i] = byte(seed >> (8 * (i % 8)))
	}
	s[31] = byte(n)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// miLog returns the mirror's log so far (its access log lines included).
func miLog(t testing.TB, b *Berth) string {
	t.Helper()
	out, err := os.ReadFile(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// miAccessed reports whether the access log has a request line for method and path
// with status.
func miAccessed(log, method, path string, status int) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "msg=request") && strings.Contains(line, "method="+method+" ") &&
			strings.Contains(line, "path="+path+" ") && strings.Contains(line, "status="+strconv.Itoa(status)+" ") {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- containerd

// miContainerd is a containerd started by the test with root, state and socket in a
// temp dir (ecosystem.md §5), CRI disabled.
type miContainerd struct {
	dir, sock, log string
	cmd            *exec.Cmd
}

func miStartContainerd(t *testing.T) *miContainerd {
	t.Helper()
	bin := requireTool(t, "containerd")
	requireTool(t, "ctr")
	dir := t.TempDir() // removed after the daemon stops (cleanups run last-in first-out)
	c := &miContainerd{dir: dir, sock: filepath.Join(dir, "containerd.sock"), log: filepath.Join(dir, "containerd.log")}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc")
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(bin, "--config", cfgPath)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(func() { c.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := runErr(nil, "ctr", "--address", c.sock, "version")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			c.dumpLog(t)
			t.Fatalf("containerd did not come up: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

func (c *miContainerd) stop(t *testing.T) {
	if c.cmd.Process == nil || c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	if t.Failed() {
		c.dumpLog(t)
	}
}

func (c *miContainerd) dumpLog(t *testing.T) {
	out, _ := os.ReadFile(c.log)
	if len(out) > 6000 {
		out = out[len(out)-6000:]
	}
	t.Logf("containerd log tail:\n%s", out)
}

// ctr runs ctr against this daemon in the test's namespace; it returns stdout and stderr
// together.
func (c *miContainerd) ctr(args ...string) (string, error) {
	return runErr(nil, "ctr", append([]string{"--address", c.sock, "--namespace", "berth-e2e"}, args...)...)
}

func (c *miContainerd) mustCtr(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.ctr(args...)
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, miTrunc([]byte(out)))
	}
	return out
}

// contentGet returns a blob from containerd's content store (stdout only).
func (c *miContainerd) contentGet(t *testing.T, dgst string) []byte {
	t.Helper()
	cmd := exec.Command("ctr", "--address", c.sock, "--namespace", "berth-e2e", "content", "get", dgst)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ctr content get %s: %v\n%s", dgst, err, stderr.String())
	}
	return stdout.Bytes()
}

// forget removes images and makes sure their content is gone from containerd's content
// store, so that the next pull must fetch it again. ctr image rm --sync collects garbage,
// but the lease of the preceding ctr pull is released asynchronously and may still hold
// the content for a moment; whatever remains after a short wait is removed explicitly.
func (c *miContainerd) forget(t *testing.T, refs, digests []string) {
	t.Helper()
	c.mustCtr(t, append([]string{"image", "rm", "--sync"}, refs...)...)
	left := func() []string {
		ls := c.mustCtr(t, "content", "ls", "-q")
		var out []string
		for _, d := range digests {
			if strings.Contains(ls, d) {
				out = append(out, d)
			}
		}
		return out
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(left()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if l := left(); len(l) > 0 {
		c.mustCtr(t, append([]string{"content", "rm"}, l...)...)
	}
	if l := left(); len(l) > 0 {
		t.Fatalf("containerd still holds %v after image rm and content rm: the next pull would not re-fetch", l)
	}
}

var miURLInDump = regexp.MustCompile(`(?m)(GET|HEAD) (/v2/[^ ]+) HTTP/1\.1`)

// TestMirrorContainerd: real containerd pulls registry.k8s.io/pause:3.10 through berth as a
// hosts.toml mirror (requests carry ?ns=registry.k8s.io and no prefix); only the amd64
// image is fetched upstream; then, with the upstream gone, the same pull by tag and by
// digest is served from the cache.
func TestMirrorContainerd(t *testing.T) {
	cd := miStartContainerd(t)
	e := newMirrorEnv(t)
	p := e.p
	amd, arm := "linux/amd64", "linux/arm64"
	amdLayer := p.Layers[amd]

	hostsDir := filepath.Join(cd.dir, "certs.d")
	if err := os.MkdirAll(filepath.Join(hostsDir, "registry.k8s.io"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeHosts := func() {
		hosts := fmt.Sprintf("server = \"https://registry.k8s.io\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", e.m.Addr)
		if err := os.WriteFile(filepath.Join(hostsDir, "registry.k8s.io", "hosts.toml"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeHosts()
	ref := "registry.k8s.io/pause:3.10"
	byDigest := "registry.k8s.io/pause@" + p.IndexDigest
	pull := func(r string, dump bool) string {
		args := []string{"image", "pull", "--hosts-dir", hostsDir, "--platform", amd}
		if dump {
			args = append(args, "--http-dump")
		}
		return cd.mustCtr(t, append(args, r)...)
	}

	out := pull(ref, true)
	// What containerd sent: every request carries ns=registry.k8s.io and no prefix.
	sent := miURLInDump.FindAllStringSubmatch(out, -1)
	if len(sent) == 0 {
		t.Fatalf("ctr --http-dump shows no registry request:\n%s", miTrunc([]byte(out)))
	}
	t.Logf("containerd sent %d registry requests, e.g. %s %s", len(sent), sent[0][1], sent[0][2])
	for _, s := range sent {
		if !strings.HasSuffix(s[2], "?ns=registry.k8s.io") || !strings.HasPrefix(s[2], "/v2/pause/") {
			t.Errorf("containerd sent %s %s, want /v2/pause/...?ns=registry.k8s.io", s[1], s[2])
		}
	}
	// Berth served those requests (the access log has no query string: the paths have no
	// prefix, so only ns can have routed them to registry.k8s.io; through the default
	// upstream they would have gone to library/pause, which the upstream does not have).
	log := miLog(t, e.m)
	for _, want := range []struct{ method, path string }{
		{"HEAD", "/v2/pause/manifests/3.10"},
		{"GET", "/v2/pause/manifests/" + p.IndexDigest},
		{"GET", "/v2/pause/manifests/" + p.Platforms[amd]},
		{"GET", "/v2/pause/blobs/" + amdLayer},
	} {
		if !miAccessed(log, want.method, want.path, http.StatusOK) {
			t.Errorf("mirror access log lacks %s %s → 200", want.method, want.path)
		}
	}
	// The mirror fetched the amd64 image from upstream pause, once, and nothing of arm64.
	if n := e.fu.count(http.MethodGet, "/v2/pause/blobs/"+amdLayer); n != 1 {
		t.Errorf("upstream GETs of the amd64 layer: %d, want 1", n)
	}
	if n := e.fu.bytesSent("/v2/pause/blobs/" + amdLayer); n != int64(len(p.Blobs[amdLayer])) {
		t.Errorf("upstream sent %d bytes of the amd64 layer, want %d", n, len(p.Blobs[amdLayer]))
	}
	var armM, amdM clManifest
	if err := json.Unmarshal(p.Manifests[p.Platforms[arm]], &armM); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(p.Manifests[p.Platforms[amd]], &amdM); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.fu.requests() {
		for _, d := range []string{p.Platforms[arm], p.Layers[arm], armM.Config.Digest} {
			if strings.HasSuffix(r.Path, d) {
				t.Errorf("the mirror fetched arm64 content from upstream: %s %s", r.Method, r.Path)
			}
		}
		if strings.HasPrefix(r.Path, "/v2/library/") {
			t.Errorf("a containerd ns=registry.k8s.io request reached the default upstream: %s %s", r.Method, r.Path)
		}
	}
	if ls := cd.mustCtr(t, "image", "ls"); !strings.Contains(ls, ref) || !strings.Contains(ls, p.IndexDigest) {
		t.Fatalf("ctr image ls lacks %s with digest %s:\n%s", ref, p.IndexDigest, ls)
	}
	if got := cd.contentGet(t, amdLayer); !bytes.Equal(got, p.Blobs[amdLayer]) {
		t.Fatalf("containerd holds %d bytes for the amd64 layer, want the fixture's %d", len(got), len(p.Blobs[amdLayer]))
	}

	// Upstream gone: the proxy closes (connections refused) and the upstream berth stops.
	e.fu.Close()
	e.up.Stop()
	if _, err := http.Get(e.fu.URL() + "/v2/"); err == nil {
		t.Fatal("the upstream still answers after Close")
	}
	time.Sleep(1200 * time.Millisecond) // past the 1s tagTTL: the tag must be revalidated, and fail
	for _, r := range []string{ref, byDigest} {
		cd.forget(t, []string{ref, byDigest}, []string{p.IndexDigest, p.Platforms[amd], amdM.Config.Digest, amdLayer})
		logBefore := len(miLog(t, e.m))
		pull(r, false)
		newLog := miLog(t, e.m)[logBefore:]
		if !miAccessed(newLog, "GET", "/v2/pause/blobs/"+amdLayer, http.StatusOK) {
			t.Errorf("pull of %s with the upstream down: the layer was not fetched from the mirror:\n%s", r, miTrunc([]byte(newLog)))
		}
		if got := cd.contentGet(t, amdLayer); !bytes.Equal(got, p.Blobs[amdLayer]) {
			t.Fatalf("after pulling %s from the cache containerd holds wrong layer bytes", r)
		}
	}
	if !strings.Contains(miLog(t, e.m), "serving cached tag") {
		t.Errorf("mirror log does not record the stale-if-error serve of the tag")
	}

	// The cache is durable: a mirror restarted while the upstream is down still serves it.
	e.m.Restart()
	writeHosts()
	cd.forget(t, []string{ref, byDigest}, []string{p.IndexDigest, p.Platforms[amd], amdM.Config.Digest, amdLayer})
	pull(ref, false)
	if got := cd.contentGet(t, amdLayer); !bytes.Equal(got, p.Blobs[amdLayer]) {
		t.Fatalf("after a mirror restart with the upstream down containerd holds wrong layer bytes")
	}
	if !miAccessed(miLog(t, e.m), "GET", "/v2/pause/blobs/"+amdLayer, http.StatusOK) {
		t.Errorf("pull after the mirror restart: the layer was not fetched from the mirror")
	}
}

// ---------------------------------------------------------------- skopeo, Docker Hub

// TestMirrorSkopeoAndDockerHub: skopeo through a registries.conf mirror whose location has
// a path prefix (/registry.k8s.io), the configured short prefix (/k8s), and Docker-Hub
// style requests at the root (no ns, no prefix) mapped to upstream library/<name>.
func TestMirrorSkopeoAndDockerHub(t *testing.T) {
	requireTool(t, "skopeo")
	// skopeo as root writes its blob info cache under /var/lib (pitfall 7).
	const skopeoCache = "/var/lib/containers/cache/blob-info-cache-v1.boltdb"
	if _, err := os.Stat(skopeoCache); errors.Is(err, os.ErrNotExist) {
		t.Cleanup(func() { _ = os.Remove(skopeoCache) })
	}
	e := newMirrorEnv(t)
	p := e.p
	amd := "linux/amd64"
	env := toolEnv(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "registries.conf")
	rc := fmt.Sprintf(`unqualified-search-registries = []

[[registry]]
prefix = "registry.k8s.io"
location = "registry.k8s.io"

[[registry.mirror]]
location = "%s/registry.k8s.io"
insecure = true
`, e.m.Addr)
	if err := os.WriteFile(conf, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}

	var info struct {
		Digest       string
		Architecture string
		Os           string
		Layers       []string
	}
	out := clRun(t, env, "", "skopeo", "--registries-conf", conf, "inspect", "--no-tags", "docker://registry.k8s.io/pause:3.10")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	if info.Digest != p.IndexDigest || info.Os+"/"+info.Architecture != amd || len(info.Layers) != 1 || info.Layers[0] != p.Layers[amd] {
		t.Fatalf("skopeo inspect via the mirror = %+v, want digest %s, %s, layers [%s]", info, p.IndexDigest, amd, p.Layers[amd])
	}

	// copy: the host's platform only, then the whole index with digests preserved.
	single := filepath.Join(dir, "single")
	run(t, env, "skopeo", "--registries-conf", conf, "copy", "docker://registry.k8s.io/pause:3.10", "oci:"+single+":3.10")
	var amdM clManifest
	if err := json.Unmarshal(p.Manifests[p.Platforms[amd]], &amdM); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{amdM.Config.Digest, p.Layers[amd]} {
		got, err := os.ReadFile(filepath.Join(single, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
		if err != nil || !bytes.Equal(got, p.Blobs[d]) {
			t.Fatalf("skopeo copy via the mirror: blob %s missing or altered in the layout (%v)", d, err)
		}
	}
	all := filepath.Join(dir, "all")
	run(t, env, "skopeo", "--registries-conf", conf, "copy", "--all", "--preserve-digests",
		"docker://registry.k8s.io/pause:3.10", "oci:"+all+":3.10")
	checkPauseLayout(t, all)

	// skopeo really went through the mirror's path-prefix route, and the mirror asked
	// upstream "pause" (not the prefixed name).
	log := miLog(t, e.m)
	if !miAccessed(log, "GET", "/v2/registry.k8s.io/pause/manifests/3.10", http.StatusOK) {
		t.Errorf("mirror access log lacks GET /v2/registry.k8s.io/pause/manifests/3.10 → 200 from skopeo")
	}
	if n := e.fu.count("", "/v2/pause/manifests/3.10"); n == 0 {
		t.Errorf("the upstream never saw /v2/pause/manifests/3.10")
	}
	for _, r := range e.fu.requests() {
		if strings.Contains(r.Path, "registry.k8s.io") || strings.HasPrefix(r.Path, "/v2/k8s/") {
			t.Errorf("the mirror forwarded its own prefix upstream: %s %s", r.Method, r.Path)
		}
	}

	// The short prefix reaches the same upstream (and cache).
	miExpectManifest(t, e.m.URL("/v2/k8s/pause/manifests/3.10"), p.Index)
	miExpectManifest(t, e.m.URL("/v2/k8s/pause/manifests/"+p.Platforms["linux/arm64"]), p.Manifests[p.Platforms["linux/arm64"]])

	// Docker Hub style: no ns, no prefix, a repository that is not local → docker.io,
	// single-component names under library/.
	if n := e.fu.count("", "/v2/library/nginx/manifests/latest"); n != 0 {
		t.Fatalf("upstream saw library/nginx before the test asked for it")
	}
	miExpectManifest(t, e.m.URL("/v2/nginx/manifests/latest"), p.Index)
	if n := e.fu.count(http.MethodGet, "/v2/library/nginx/manifests/latest"); n != 1 {
		t.Errorf("upstream GETs of /v2/library/nginx/manifests/latest: %d, want 1", n)
	}
	// Fresh (within tagTTL): served without asking the upstream.
	n := len(e.fu.requests())
	miExpectManifest(t, e.m.URL("/v2/nginx/manifests/latest"), p.Index)
	if after := e.fu.requests(); len(after) != n {
		t.Errorf("a fresh cached tag still went upstream: %+v", after[n:])
	}
	cfgBlob := amdM.Config.Digest
	miExpectBlob(t, e.m.URL("/v2/nginx/blobs/"+cfgBlob), p.Blobs[cfgBlob])
	if n := e.fu.count(http.MethodGet, "/v2/library/nginx/blobs/"+cfgBlob); n != 1 {
		t.Errorf("upstream GETs of the config blob under library/nginx: %d, want 1", n)
	}
	for _, r := range e.fu.requests() {
		if strings.HasPrefix(r.Path, "/v2/nginx/") {
			t.Errorf("the default upstream was asked for %s without library/", r.Path)
		}
	}
	// Cached now: a second round does not reach the upstream.
	before := len(e.fu.requests())
	miExpectBlob(t, e.m.URL("/v2/nginx/blobs/"+cfgBlob), p.Blobs[cfgBlob])
	miExpectManifest(t, e.m.URL("/v2/nginx/manifests/"+p.IndexDigest), p.Index)
	if after := e.fu.requests(); len(after) != before {
		t.Errorf("cached blob and manifest-by-digest still went upstream: %+v", after[before:])
	}

	// The tag moves upstream (to the arm64 image manifest); once stale, the mirror
	// revalidates with a HEAD and serves the new manifest.
	armDigest := p.Platforms["linux/arm64"]
	clPutManifest(t, e.up, "library/nginx", "latest", clMTManifest, p.Manifests[armDigest])
	time.Sleep(1200 * time.Millisecond)
	heads := e.fu.count(http.MethodHead, "/v2/library/nginx/manifests/latest")
	miExpectManifest(t, e.m.URL("/v2/nginx/manifests/latest"), p.Manifests[armDigest])
	if e.fu.count(http.MethodHead, "/v2/library/nginx/manifests/latest") == heads {
		t.Errorf("the stale tag was not revalidated with a HEAD")
	}
}

// ---------------------------------------------------------------- coalescing, ranges

// TestMirrorCoalescing: 20 concurrent clients GET the same uncached 200 MiB blob. The
// upstream serves it exactly once, every client gets bytes with the right digest, and the
// first bytes reach the clients while the upstream download is still running. Range
// requests on an uncached blob are answered from the stream with exactly those bytes.
func TestMirrorCoalescing(t *testing.T) {
	e := newMirrorEnv(t)
	const size = 200 << 20
	const clients = 20
	big := miRandom(200, size)
	sum := sha256.Sum256(big)
	dgst := "sha256:" + hex.EncodeToString(sum[:])
	pushImage(t, e.up, "big/image", "v1", big)
	upPath := "/v2/big/image/blobs/" + dgst
	e.fu.throttle(upPath, 50<<20) // about 4 s for the whole blob
	url := e.m.URL("/v2/registry.k8s.io/big/image/blobs/" + dgst)

	type result struct {
		status int
		n      int64
		digest string
		first  time.Time
		err    error
	}
	results := make([]result, clients)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: clients}}
	defer client.Transport.(*http.Transport).CloseIdleConnections()
	startGate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func(r *result) {
			defer wg.Done()
			<-startGate
			resp, err := client.Get(url)
			if err != nil {
				r.err = err
				return
			}
			defer resp.Body.Close()
			r.status = resp.StatusCode
			h := sha256.New()
			buf := make([]byte, 256<<10)
			for {
				n, err := resp.Body.Read(buf)
				if n > 0 {
					if r.first.IsZero() {
						r.first = time.Now()
					}
					h.Write(buf[:n])
					r.n += int64(n)
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					r.err = err
					break
				}
			}
			r.digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
		}(&results[i])
	}
	// A 21st client gives up after 1 MiB, as a cancelled pull does: the shared download
	// must go on for the others.
	abortErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-startGate
		resp, err := client.Get(url)
		if err != nil {
			abortErr <- err
			return
		}
		_, err = io.CopyN(io.Discard, resp.Body, 1<<20)
		resp.Body.Close()
		abortErr <- err
	}()
	t0 := time.Now()
	close(startGate)
	wg.Wait()
	if err := <-abortErr; err != nil {
		t.Errorf("the client that gives up early could not even read 1 MiB: %v", err)
	}
	upDone := e.fu.doneAt(upPath)

	firstByte := time.Time{}
	for i, r := range results {
		if r.err != nil || r.status != http.StatusOK || r.n != size || r.digest != dgst {
			t.Errorf("client %d: status %d, %d bytes, digest %s, err %v; want 200, %d bytes, %s", i, r.status, r.n, r.digest, r.err, size, dgst)
			continue
		}
		if firstByte.IsZero() || r.first.Before(firstByte) {
			firstByte = r.first
		}
		if !upDone.IsZero() && !r.first.Before(upDone) {
			t.Errorf("client %d got its first byte %s after start, after the upstream download finished (%s): it was not streamed",
				i, r.first.Sub(t0), upDone.Sub(t0))
		}
	}
	if n := e.fu.count(http.MethodGet, upPath); n != 1 {
		t.Errorf("the upstream served %d GETs of the blob to %d concurrent clients, want exactly 1", n, clients)
	}
	if n := e.fu.bytesSent(upPath); n != size {
		t.Errorf("the upstream sent %d bytes of the blob, want %d (once)", n, size)
	}
	if upDone.IsZero() {
		t.Fatalf("the upstream never finished sending the blob")
	}
	if firstByte.IsZero() || !firstByte.Before(upDone) {
		t.Errorf("first byte to a client at %s, upstream download finished at %s: want the first byte before", firstByte.Sub(t0), upDone.Sub(t0))
	}
	t.Logf("first client byte after %s; upstream download took %s; all %d clients done after %s",
		firstByte.Sub(t0).Round(time.Millisecond), upDone.Sub(t0).Round(time.Millisecond), clients, time.Since(t0).Round(time.Millisecond))
	// Once committed, the blob is served from the cache.
	resp, body := miMust(t, http.MethodGet, url, nil)
	if resp.StatusCode != http.StatusOK || clDigest(body) != dgst {
		t.Fatalf("GET of the cached blob: %s, digest %s", resp.Status, clDigest(body))
	}
	if n := e.fu.count(http.MethodGet, upPath); n != 1 {
		t.Errorf("the cached blob was fetched from upstream again (%d GETs)", n)
	}

	// Range requests on an uncached blob, while it streams in (throttled to ~2 s): one in
	// the middle, one ending at the last byte (held back until the digest is verified).
	const rsize = 4 << 20
	rblob := miRandom(4, rsize)
	rd := pushBlob(t, e.up, "ranges/blob", rblob)
	rPath := "/v2/ranges/blob/blobs/" + rd
	e.fu.throttle(rPath, 2<<20)
	rURL := e.m.URL("/v2/registry.k8s.io/ranges/blob/blobs/" + rd)
	ranges := [][2]int64{{1000, 1999}, {rsize - 1000, rsize - 1}}
	errs := make([]string, len(ranges))
	for i, rg := range ranges {
		wg.Add(1)
		go func(i int, start, end int64) {
			defer wg.Done()
			hdr := map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", start, end)}
			resp, body, err := miDo(http.MethodGet, rURL, hdr)
			switch {
			case err != nil:
				errs[i] = fmt.Sprintf("Range %s: %v", hdr["Range"], err)
			case resp.StatusCode != http.StatusPartialContent:
				errs[i] = fmt.Sprintf("Range %s: %s %q, want 206", hdr["Range"], resp.Status, miTrunc(body))
			case resp.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", start, end, rsize):
				errs[i] = fmt.Sprintf("Range %s: Content-Range %q", hdr["Range"], resp.Header.Get("Content-Range"))
			case !bytes.Equal(body, rblob[start:end+1]):
				errs[i] = fmt.Sprintf("Range %s: %d bytes, not the blob's bytes %d-%d", hdr["Range"], len(body), start, end)
			}
		}(i, rg[0], rg[1])
	}
	wg.Wait()
	for _, s := range errs {
		if s != "" {
			t.Error(s)
		}
	}
	miExpectBlob(t, rURL, rblob)
	if n := e.fu.count(http.MethodGet, rPath); n != 1 {
		t.Errorf("two Range requests and a GET of one uncached blob made %d upstream GETs, want 1", n)
	}
}

// ---------------------------------------------------------------- failures

// TestMirrorUpstreamFailures: the upstream answers 429, 500, hangs past the timeout, closes
// the connection mid-blob, stalls mid-blob, or sends bytes that do not match the digest.
// Nothing corrupt is ever served or stored, and a failure reaches the clients within the
// upstream timeout; a stale tag keeps serving its cached digest while the upstream
// fails; an upstream 404 is 404 MANIFEST_UNKNOWN (and remembered briefly).
func TestMirrorUpstreamFailures(t *testing.T) {
	e := newMirrorEnv(t)
	p := e.p

	// Stale-if-error. Fill the cache, let the tag go stale (tagTTL 1s), then fail every
	// revalidation.
	tagURL := e.m.URL("/v2/registry.k8s.io/pause/manifests/3.10")
	upTag := "/v2/pause/manifests/3.10"
	miExpectManifest(t, tagURL, p.Index)
	time.Sleep(1200 * time.Millisecond)
	for _, f := range []miFault{mi429, mi500, miHang} {
		e.fu.setFault(upTag, f)
		hits := e.fu.faultHits(upTag)
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp, body := miMust(t, method, tagURL, miAccept)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != p.IndexDigest ||
				(method == http.MethodGet && !bytes.Equal(body, p.Index)) {
				t.Errorf("stale tag, upstream %s: %s %s → %s, digest %q, body %q; want 200 with the cached %s",
					f, method, tagURL, resp.Status, resp.Header.Get("Docker-Content-Digest"), miTrunc(body), p.IndexDigest)
			}
		}
		if e.fu.faultHits(upTag) == hits {
			t.Errorf("upstream %s: the mirror did not try to revalidate the stale tag at all", f)
		}
		e.fu.setFault(upTag, miNoFault)
	}
	if !strings.Contains(miLog(t, e.m), "serving cached tag") {
		t.Errorf("the mirror did not log its stale-if-error serves")
	}

	// An uncached tag has nothing to fall back on: the error must reach the client, must
	// not be remembered, and bytes that do not match the upstream's digest must not be
	// served or stored.
	nginxURL := e.m.URL("/v2/docker.io/library/nginx/manifests/latest")
	upNginx := "/v2/library/nginx/manifests/latest"
	for _, f := range []miFault{mi429, mi500, miHang, miCorrupt} {
		e.fu.setFault(upNginx, f)
		resp, body := miMust(t, http.MethodGet, nginxURL, miAccept)
		if resp.StatusCode == http.StatusOK {
			t.Errorf("uncached tag, upstream %s: 200 (digest %s), want an error", f, clDigest(body))
		} else if want := miWantStatus(f); !want(resp.StatusCode) || miCode(body) == "" {
			t.Errorf("uncached tag, upstream %s: %s %q, want an OCI error with status %s", f, resp.Status, miTrunc(body), miStatusText(f))
		}
		if e.fu.faultHits(upNginx) == 0 {
			t.Errorf("upstream %s: the fault was never exercised", f)
		}
		e.fu.setFault(upNginx, miNoFault)
	}
	miExpectManifest(t, nginxURL, p.Index)

	// A manifest by digest with corrupt bytes.
	armDigest := p.Platforms["linux/arm64"]
	armURL := e.m.URL("/v2/registry.k8s.io/pause/manifests/" + armDigest)
	e.fu.setFault("/v2/pause/manifests/"+armDigest, miCorrupt)
	if resp, body := miMust(t, http.MethodGet, armURL, miAccept); resp.StatusCode == http.StatusOK || resp.StatusCode < 500 {
		t.Errorf("manifest by digest with corrupt upstream bytes: %s (body digest %s), want a 5xx error", resp.Status, clDigest(body))
	}
	e.fu.setFault("/v2/pause/manifests/"+armDigest, miNoFault)
	miExpectManifest(t, armURL, p.Manifests[armDigest])

	// Blobs: one fresh uncached blob per fault, asked for by three clients at once (they
	// share one upstream fetch, throttled to ~0.25 s, and must all see the failure).
	for i, f := range []miFault{mi429, mi500, miHang, miCut, miCorrupt, miStall} {
		data := miRandom(uint64(1000+i), 1<<20)
		d := pushBlob(t, e.up, "faults/blobs", data)
		upPath := "/v2/faults/blobs/blobs/" + d
		url := e.m.URL("/v2/registry.k8s.io/faults/blobs/blobs/" + d)
		e.fu.setFault(upPath, f)
		e.fu.throttle(upPath, 4<<20)
		var wg sync.WaitGroup
		for c := 0; c < 3; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				start := time.Now()
				resp, body, err := miDo(http.MethodGet, url, nil)
				if took := time.Since(start); took > miStallCap-2*time.Second {
					t.Errorf("blob, upstream %s, client %d: the failure took %s to reach the client; the upstream timeout is 2s",
						f, c, took.Round(time.Millisecond))
				}
				switch {
				case resp == nil:
					t.Errorf("blob, upstream %s, client %d: no response: %v", f, c, err)
				case err == nil && resp.StatusCode == http.StatusOK && len(body) == len(data) && clDigest(body) != d:
					t.Errorf("blob, upstream %s, client %d: SERVED CORRUPT: 200 with %d bytes of digest %s, want %s or a failure",
						f, c, len(body), clDigest(body), d)
				case err == nil && resp.StatusCode < 400:
					t.Errorf("blob, upstream %s, client %d: %s, %d of %d bytes, complete read: want an error status or a failed read",
						f, c, resp.Status, len(body), len(data))
				case f == miCut || f == miCorrupt || f == miStall:
					// 200 with a cut body, or an error status: both tell the client.
					t.Logf("blob, upstream %s, client %d: saw %s, %d bytes, err %v", f, c, resp.Status, len(body), err)
				case !miWantStatus(f)(resp.StatusCode) || miCode(body) == "":
					t.Errorf("blob, upstream %s, client %d: %s %q, want an OCI error with status %s", f, c, resp.Status, miTrunc(body), miStatusText(f))
				}
			}(c)
		}
		wg.Wait()
		if e.fu.faultHits(upPath) == 0 {
			t.Errorf("blob, upstream %s: the fault was never exercised", f)
		}
		// Nothing of the failed fetch was kept: with the fault gone, the next GET fetches
		// again and gets the right bytes, and after that the cache serves them.
		e.fu.setFault(upPath, miNoFault)
		n := e.fu.count(http.MethodGet, upPath)
		miExpectBlob(t, url, data)
		if got := e.fu.count(http.MethodGet, upPath); got != n+1 {
			t.Errorf("blob after upstream %s: %d upstream GETs for the good fetch, want 1", f, got-n)
		}
		miExpectBlob(t, url, data)
		if got := e.fu.count(http.MethodGet, upPath); got != n+1 {
			t.Errorf("blob after upstream %s: the committed blob was fetched upstream again", f)
		}
	}

	// Upstream 404s: MANIFEST_UNKNOWN (a missing tag and a missing repository), remembered
	// for negativeTTL; a missing blob is BLOB_UNKNOWN.
	for _, c := range []struct{ path, upPath string }{
		{"/v2/registry.k8s.io/pause/manifests/nope", "/v2/pause/manifests/nope"},
		{"/v2/k8s/nosuch/manifests/1.0", "/v2/nosuch/manifests/1.0"},
	} {
		for i := 0; i < 2; i++ {
			resp, body := miMust(t, http.MethodGet, e.m.URL(c.path), miAccept)
			if resp.StatusCode != http.StatusNotFound || miCode(body) != "MANIFEST_UNKNOWN" {
				t.Errorf("GET %s (upstream 404): %s %q, want 404 MANIFEST_UNKNOWN", c.path, resp.Status, miTrunc(body))
			}
		}
		if n := e.fu.count("", c.upPath); n != 1 {
			t.Errorf("two GETs of %s within negativeTTL reached the upstream %d times, want 1", c.path, n)
		}
	}
	zero := "sha256:" + strings.Repeat("0", 64)
	resp, body := miMust(t, http.MethodGet, e.m.URL("/v2/registry.k8s.io/pause/blobs/"+zero), nil)
	if resp.StatusCode != http.StatusNotFound || miCode(body) != "BLOB_UNKNOWN" {
		t.Errorf("GET of a blob the upstream lacks: %s %q, want 404 BLOB_UNKNOWN", resp.Status, miTrunc(body))
	}
}

func miWantStatus(f miFault) func(int) bool {
	if f == mi429 {
		return func(s int) bool { return s == http.StatusTooManyRequests }
	}
	return func(s int) bool { return s >= 500 && s <= 599 }
}

func miStatusText(f miFault) string {
	if f == mi429 {
		return "429"
	}
	return "5xx"
}

// ---------------------------------------------------------------- SSRF

// TestMirrorNamespaceSSRF: an ns naming no configured upstream — an unconfigured host,
// localhost, an IP literal with a port where a listener waits — is refused with 404
// NAME_UNKNOWN, quickly, and nothing is dialled.
func TestMirrorNamespaceSSRF(t *testing.T) {
	e := newMirrorEnv(t)
	p := e.p
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	// Positive control: a configured ns routes, and is echoed.
	resp, body := miMust(t, http.MethodGet, e.m.URL("/v2/pause/manifests/3.10?ns=registry.k8s.io"), miAccept)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, p.Index) || resp.Header.Get("OCI-Namespace") != "registry.k8s.io" {
		t.Fatalf("GET ?ns=registry.k8s.io: %s, OCI-Namespace %q, body %q", resp.Status, resp.Header.Get("OCI-Namespace"), miTrunc(body))
	}
	upBefore := len(e.fu.requests())

	layer := p.Layers["linux/amd64"]
	for _, ns := range []string{
		"evil.example.com", "ghcr.io", "localhost", "localhost:" + port, "127.0.0.1", "127.0.0.1:" + port,
		"[::1]:" + port, "0.0.0.0:" + port, "2130706433:" + port, "registry.k8s.io:" + port, "http://127.0.0.1:" + port,
	} {
		q := "?ns=" + url.QueryEscape(ns)
		for _, path := range []string{"/v2/pause/manifests/3.10", "/v2/pause/manifests/" + p.IndexDigest, "/v2/pause/blobs/" + layer, "/v2/pause/tags/list"} {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				start := time.Now()
				resp, body := miMust(t, method, e.m.URL(path+q), miAccept)
				took := time.Since(start)
				if resp.StatusCode != http.StatusNotFound || (method == http.MethodGet && miCode(body) != "NAME_UNKNOWN") {
					t.Errorf("%s %s%s: %s %q, want 404 NAME_UNKNOWN", method, path, q, resp.Status, miTrunc(body))
				}
				if took > time.Second {
					t.Errorf("%s %s%s took %s: want a fast refusal", method, path, q, took)
				}
			}
		}
	}
	// Path forms that look like hosts are names, not destinations.
	for _, path := range []string{"/v2/localhost/pause/manifests/3.10", "/v2/127.0.0.1/pause/manifests/3.10"} {
		miMust(t, http.MethodGet, e.m.URL(path), miAccept)
	}
	time.Sleep(200 * time.Millisecond) // let a stray dial land
	if n := conns.Load(); n != 0 {
		t.Fatalf("the listener at %s received %d connections: the mirror dialled a host named by ns (SSRF)", ln.Addr(), n)
	}
	for _, r := range e.fu.requests()[upBefore:] {
		if r.Path != "/v2/" && !strings.HasPrefix(r.Path, "/v2/library/localhost/") && !strings.HasPrefix(r.Path, "/v2/localhost/") &&
			!strings.HasPrefix(r.Path, "/v2/127.0.0.1/") {
			t.Errorf("a refused ns request reached the configured upstream: %s %s", r.Method, r.Path)
		}
	}
}

// ---------------------------------------------------------------- local pushes

// TestMirrorLocalPush: the mirroring instance is still a normal registry for repositories
// that are not mirrored (crane push and pull of team/app), while every write to a
// mirrored repository — by upstream name, prefix or ns — is refused with 403 DENIED and
// never reaches the upstream.
func TestMirrorLocalPush(t *testing.T) {
	requireTool(t, "crane")
	e := newMirrorEnv(t)
	p := e.p
	env := toolEnv(t)
	layout := filepath.Join(t.TempDir(), "layout")
	p.writeLayout(t, layout, "v1")

	ref := e.m.Addr + "/team/app:v1"
	// team is a local project (mirror.localProjects): its names never go upstream, before
	// the push or after it.
	upBefore := len(e.fu.requests())
	run(t, env, "crane", "push", layout, ref)
	upAfterPush := len(e.fu.requests())
	if upAfterPush != upBefore {
		t.Errorf("pushing to the local project team reached the upstream: %v", e.fu.requests()[upBefore:])
	}
	assertPause(t, e.m, "team/app", "v1")
	if got := strings.TrimSpace(clRun(t, env, "", "crane", "digest", ref)); got != p.IndexDigest {
		t.Fatalf("crane digest %s = %s, want %s", ref, got, p.IndexDigest)
	}
	pulled := filepath.Join(t.TempDir(), "pulled")
	run(t, env, "crane", "pull", "--format", "oci", "--platform", "linux/arm64", ref, pulled)
	if got, err := os.ReadFile(filepath.Join(pulled, "blobs", "sha256", strings.TrimPrefix(p.Layers["linux/arm64"], "sha256:"))); err != nil ||
		!bytes.Equal(got, p.Blobs[p.Layers["linux/arm64"]]) {
		t.Fatalf("crane pull of team/app: arm64 layer missing or altered (%v)", err)
	}
	for _, r := range e.fu.requests()[upAfterPush:] {
		t.Errorf("a read of the local team/app went upstream: %s %s", r.Method, r.Path)
	}

	// A project that does not exist is the default upstream's: a push never creates it.
	if out, err := runErr(env, "crane", "push", layout, e.m.Addr+"/library/nginx:evil"); err == nil ||
		!strings.Contains(out, "default upstream") {
		t.Errorf("crane push to library/nginx beside the default upstream: err %v, output lacks the reason:\n%s", err, out)
	}
	miExpectManifest(t, e.m.URL("/v2/library/nginx/manifests/latest"), p.Index)
	if resp, _ := miMust(t, http.MethodGet, e.m.URL("/v2/library/nginx/manifests/evil"), miAccept); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET library/nginx:evil after the refused push: %s, want 404", resp.Status)
	}

	// Writes to mirrored repositories are refused.
	cfgBlob := []byte(`{"architecture":"amd64","os":"linux"}`)
	cfgDigest := clDigest(cfgBlob)
	for _, c := range []struct{ method, path, ct string }{
		{http.MethodPut, "/v2/registry.k8s.io/pause/manifests/evil", clMTIndex},
		{http.MethodPut, "/v2/k8s/pause/manifests/3.10", clMTIndex},
		{http.MethodPut, "/v2/pause/manifests/3.10?ns=registry.k8s.io", clMTIndex},
		{http.MethodPut, "/v2/docker.io/library/nginx/manifests/latest", clMTIndex},
		{http.MethodPut, "/v2/library/nginx/manifests/latest", clMTIndex},
		{http.MethodPut, "/v2/nginx/manifests/latest", clMTIndex},
		{http.MethodPost, "/v2/newproject/app/blobs/uploads/", ""},
		{http.MethodPost, "/v2/registry.k8s.io/pause/blobs/uploads/?digest=" + cfgDigest, "application/octet-stream"},
		{http.MethodPost, "/v2/k8s/pause/blobs/uploads/", ""},
		{http.MethodPost, "/v2/pause/blobs/uploads/?ns=registry.k8s.io", ""},
		{http.MethodDelete, "/v2/registry.k8s.io/pause/manifests/3.10", ""},
		{http.MethodDelete, "/v2/registry.k8s.io/pause/manifests/" + p.IndexDigest, ""},
	} {
		var payload []byte
		switch {
		case c.method == http.MethodPut:
			payload = p.Index
		case strings.Contains(c.path, "digest="):
			payload = cfgBlob
		}
		hdr := map[string]string{}
		if c.ct != "" {
			hdr["Content-Type"] = c.ct
		}
		resp, body := clHTTP(t, c.method, e.m.URL(c.path), hdr, payload)
		if resp.StatusCode != http.StatusForbidden || miCode(body) != "DENIED" {
			t.Errorf("%s %s: %s %q, want 403 DENIED", c.method, c.path, resp.Status, miTrunc(body))
		}
	}
	if out, err := runErr(env, "crane", "push", layout, e.m.Addr+"/registry.k8s.io/pause:evil"); err == nil {
		t.Errorf("crane push to the mirrored registry.k8s.io/pause succeeded:\n%s", out)
	}
	for _, r := range e.fu.requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			t.Errorf("a write reached the upstream: %s %s", r.Method, r.Path)
		}
	}
	// The mirrored tag is untouched.
	miExpectManifest(t, e.m.URL("/v2/registry.k8s.io/pause/manifests/3.10"), p.Index)
	if resp, _ := miMust(t, http.MethodGet, e.m.URL("/v2/registry.k8s.io/pause/manifests/evil"), miAccept); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET registry.k8s.io/pause:evil after the refused push: %s, want 404", resp.Status)
	}
}
