package e2e

// Scale-out tests of issue 6: two berth replicas sharing one PostgreSQL database and one
// S3 bucket (versitygw), behind nginx doing round-robin. Every test starts its own
// cluster (startReplicas); helpers are prefixed "rp".

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	rpBucket   = "replicas"
	rpPartSize = 5 << 20 // BERTH_STORAGE_S3_PART_SIZE: small parts, so a few MiB span parts
	// rpUpstreamHeader is added by nginx to every answer: the replica(s) it tried.
	rpUpstreamHeader = "X-Berth-Upstream"
)

// ---------------------------------------------------------------- versitygw

// rpS3 is a versitygw that the test can stop and start again on the same port and data.
type rpS3 struct {
	*S3
	t      *testing.T
	addr   string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

func rpStartS3(t *testing.T) *rpS3 {
	t.Helper()
	requireTool(t, "versitygw")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	s := &rpS3{S3: &S3{Endpoint: "http://" + addr, Data: data}, t: t, addr: addr, dir: dir}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start runs versitygw on s.addr over s.Data and waits until it answers. Right after a
// kill the port may still be held for a moment: a start that exits is tried again.
func (s *rpS3) start() {
	t := s.t
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, "versitygw.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	bin := requireTool(t, "versitygw")
	for try := 0; try < 10; try++ {
		cmd := exec.Command(bin, "--port", s.addr, "--access", s3Access, "--secret", s3Secret,
			"--region", "us-east-1", "--quiet", "posix", s.Data)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			select {
			case <-exited:
				deadline = time.Time{}
				continue
			default:
			}
			if resp, err := http.Get(s.Endpoint + "/"); err == nil {
				resp.Body.Close()
				s.cmd, s.exited = cmd, exited
				return
			}
		}
		_ = cmd.Process.Kill()
		<-exited
		time.Sleep(200 * time.Millisecond)
	}
	out, _ := os.ReadFile(filepath.Join(s.dir, "versitygw.log"))
	t.Fatalf("versitygw did not start on %s:\n%s", s.addr, tail(string(out), 4000))
}

// stop kills versitygw (SIGKILL, as a crash or an outage would) and waits for it.
func (s *rpS3) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// client is an S3 client on the bucket's server, for looking at what berth left there.
func (s *rpS3) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s3Access, s3Secret, ""),
	})
}

// multipartUploads lists the multipart uploads in progress under berth/.
func (s *rpS3) multipartUploads(t *testing.T) []string {
	t.Helper()
	out, err := s.client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(rpBucket), Prefix: aws.String("berth/"),
	})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key)+" ("+aws.ToString(u.UploadId)+")")
	}
	return keys
}

// checkObjects asserts that the bucket holds exactly want blob objects and nothing of an
// upload: no uploads/ marker or tail, no multipart upload in progress. Deletions of a
// losing duplicate upload may trail its answer a little: the count is given 3s to settle.
func (s *rpS3) checkObjects(t *testing.T, want int) {
	t.Helper()
	var blobs, uploads, mpu []string
	deadline := time.Now().Add(3 * time.Second)
	for {
		blobs = s.objects(t, rpBucket, "berth/blobs")
		uploads = s.objects(t, rpBucket, "berth/uploads")
		mpu = s.multipartUploads(t)
		if (len(blobs) == want && len(uploads) == 0 && len(mpu) == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(blobs) != want {
		t.Errorf("%d blob objects under berth/blobs, want exactly %d (one per distinct blob):\n%s", len(blobs), want, strings.Join(blobs, "\n"))
	}
	if len(uploads) != 0 {
		t.Errorf("upload leftovers under berth/uploads after every upload finished:\n%s", strings.Join(uploads, "\n"))
	}
	if len(mpu) != 0 {
		t.Errorf("multipart uploads still in progress after every upload finished:\n%s", strings.Join(mpu, "\n"))
	}
	t.Logf("bucket: %d blob objects, %d upload objects, %d multipart uploads", len(blobs), len(uploads), len(mpu))
}

// ---------------------------------------------------------------- nginx

// rpNginx is an nginx load balancer started by the test, in the foreground.
type rpNginx struct {
	Addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// rpNginxConf is the load-balancer configuration: round-robin over the replicas, request
// and response bodies streamed (no size limit, no buffering), the client's Host passed
// on. A request goes to the next replica when the chosen one cannot be reached or fails
// before answering (error timeout, nginx's default). nginx then re-sends GET, HEAD, PUT
// and DELETE even if the dead replica had received them (they are idempotent in HTTP, so
// a closing blob PUT can arrive twice); POST and PATCH are re-sent only if they never
// reached it: non_idempotent is deliberately not set, since a POST or PATCH that reached
// a dying replica may have taken effect and only the client can tell. A replica that
// fails is left out for fail_timeout.
const rpNginxConf = `{{user}}worker_processes 1;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log warn;
events { worker_connections 1024; }
http {
    log_format lb '$remote_addr "$request" $status $body_bytes_sent up=$upstream_addr upstatus=$upstream_status t=$request_time';
    access_log {{dir}}/access.log lb;
    client_body_temp_path {{dir}}/client_body;
    proxy_temp_path {{dir}}/proxy;
    fastcgi_temp_path {{dir}}/fastcgi;
    uwsgi_temp_path {{dir}}/uwsgi;
    scgi_temp_path {{dir}}/scgi;

    upstream berth {
{{servers}}    }
    server {
        listen {{listen}};
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_http_version 1.1;
        location / {
            proxy_pass http://berth;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 2s;
            proxy_send_timeout 60s;
            proxy_read_timeout 60s;
            add_header ` + rpUpstreamHeader + ` $upstream_addr always;
        }
    }
}
`

func rpStartNginx(t *testing.T, backends ...string) *rpNginx {
	t.Helper()
	bin := requireTool(t, "nginx")
	n := &rpNginx{dir: t.TempDir(), Addr: freeAddr(t), done: make(chan struct{})}
	var servers strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&servers, "        server %s max_fails=1 fail_timeout=5s;\n", b)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // workers may then read the 0700 temp dir
	}
	conf := strings.NewReplacer("{{user}}", user, "{{dir}}", n.dir, "{{servers}}", servers.String(), "{{listen}}", n.Addr).Replace(rpNginxConf)
	confPath := filepath.Join(n.dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(n.dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	n.cmd = exec.Command(bin, "-p", n.dir, "-c", confPath, "-e", filepath.Join(n.dir, "error.log"), "-g", "daemon off;")
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			n.dumpLog(t)
		}
	})
	for i := 0; i < 200; i++ {
		select {
		case <-n.done:
			n.dumpLog(t)
			t.Fatalf("nginx exited at start")
		default:
		}
		if resp, err := http.Get("http://" + n.Addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.dumpLog(t)
	t.Fatalf("nginx did not start on %s", n.Addr)
	return nil
}

func (n *rpNginx) dumpLog(t *testing.T) {
	for _, f := range []string{"stderr.log", "error.log"} {
		out, _ := os.ReadFile(filepath.Join(n.dir, f))
		if len(out) > 0 {
			t.Logf("nginx %s:\n%s", f, tail(string(out), 6000))
		}
	}
}

// ---------------------------------------------------------------- the cluster

// rpCluster is two replicas on one database and one bucket, behind nginx.
type rpCluster struct {
	A, B *Berth
	LB   *rpNginx
	S3   *rpS3
}

// startReplicas starts versitygw, a fresh PostgreSQL database, replicas A and B (own data
// dirs, the same configuration) and nginx in front of them.
func startReplicas(t *testing.T) *rpCluster {
	t.Helper()
	requireTool(t, "nginx")
	c := &rpCluster{S3: rpStartS3(t)}
	cfg := "database:\n  driver: postgres\n  dsn: " + postgresDSN(t) + "\n" + c.S3.Config(rpBucket)
	env := []string{"BERTH_STORAGE_S3_PART_SIZE=" + strconv.Itoa(rpPartSize)}
	c.A = startBerth(t, BerthOptions{Config: cfg, Env: env})
	c.B = startBerth(t, BerthOptions{Config: cfg, Env: env})
	c.LB = rpStartNginx(t, c.A.Addr, c.B.Addr)
	return c
}

// lb is a Berth handle addressing the load balancer, for helpers that take a *Berth.
func (c *rpCluster) lb() *Berth { return &Berth{t: c.A.t, Addr: c.LB.Addr} }

// ---------------------------------------------------------------- access logs

var rpAccessLine = regexp.MustCompile(`msg=request method=(\S+) path=(\S+) status=(\d+)`)
var rpUploadPath = regexp.MustCompile(`/blobs/uploads/([0-9a-f]{32})$`)

// rpAccess is one access-log line of a replica.
type rpAccess struct {
	method, path string
	status       int
}

// rpAccessLog reads every access-log line the replica wrote (all its processes).
func rpAccessLog(t *testing.T, b *Berth) []rpAccess {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(b.Data, "berth-*.log"))
	var out []rpAccess
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range rpAccessLine.FindAllStringSubmatch(string(data), -1) {
			st, _ := strconv.Atoi(m[3])
			out = append(out, rpAccess{method: m[1], path: m[2], status: st})
		}
	}
	return out
}

// ---------------------------------------------------------------- small HTTP helpers

// rpBlob is content with its digest.
type rpBlob struct {
	data   []byte
	digest string
}

func rpNewBlob(seed uint64, size int) rpBlob {
	d := crData(seed, int64(size))
	return rpBlob{data: d, digest: biSHA(d)}
}

// rpGetBlob GETs a blob and checks it is exactly the content.
func rpGetBlob(t *testing.T, addr, repo string, b rpBlob) {
	t.Helper()
	r, err := biTry(nil, addr, "GET", "/v2/"+repo+"/blobs/"+b.digest, nil, nil, false)
	if err != nil {
		t.Errorf("GET blob %s in %s on %s: %v", b.digest, repo, addr, err)
		return
	}
	if r.Status != http.StatusOK || !bytes.Equal(r.Body, b.data) {
		t.Errorf("GET blob %s in %s on %s: %d, %d bytes hashing to %s, want %d bytes %s (body %s)",
			b.digest, repo, addr, r.Status, len(r.Body), biSHA(r.Body), len(b.data), b.digest, miTrunc(r.Body))
	}
}

// rpChunked uploads b in chunks of chunk bytes; each request (POST, each PATCH, the PUT)
// goes to the next address of addrs in turn. It returns the PUT's answer; a failure
// before it is reported with t.Errorf and answered as status 0 (so that it may be called
// from any goroutine).
func rpChunked(t *testing.T, addrs []string, repo string, b rpBlob, chunk int) biResp {
	t.Helper()
	i := 0
	next := func() string { a := addrs[i%len(addrs)]; i++; return a }
	r, err := biTry(nil, next(), "POST", "/v2/"+repo+"/blobs/uploads/", nil, []byte{}, false)
	if err != nil || r.Status != http.StatusAccepted || r.Header.Get("Location") == "" {
		t.Errorf("POST upload in %s: %d %v %s", repo, r.Status, err, miTrunc(r.Body))
		return biResp{}
	}
	loc := r.Header.Get("Location")
	for off := 0; off < len(b.data); off += chunk {
		end := min(off+chunk, len(b.data))
		r, err = biTry(nil, next(), "PATCH", loc, map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, end-1),
		}, b.data[off:end], false)
		if err != nil || r.Status != http.StatusAccepted || r.Header.Get("Range") != fmt.Sprintf("0-%d", end-1) {
			t.Errorf("PATCH %s %d-%d: %d %v Range %q %s", loc, off, end-1, r.Status, err, r.Header.Get("Range"), miTrunc(r.Body))
			return biResp{}
		}
		if l := r.Header.Get("Location"); l != "" {
			loc = l
		}
	}
	r, err = biTry(nil, next(), "PUT", biWithQuery(loc, "digest="+b.digest), nil, nil, false)
	if err != nil {
		t.Errorf("PUT %s: %v", loc, err)
		return biResp{}
	}
	return r
}

// rpWantOCIError checks an error answer: status and an OCI error body with code.
func rpWantOCIError(t *testing.T, what string, r biResp, err error, status int, code string) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v, want %d %s", what, err, status, code)
		return
	}
	if r.Status != status || biErrCode(r.Body) != code {
		t.Errorf("%s: %d %s, want %d with an OCI error body of code %s", what, r.Status, miTrunc(r.Body), status, code)
	}
}

// rpWriteLayout writes an OCI layout holding one image manifest (config + layers) tagged tag.
func rpWriteLayout(t *testing.T, dir, tag string, config rpBlob, layers ...rpBlob) (manifest []byte) {
	t.Helper()
	sizes := map[string]int{}
	for _, l := range layers {
		sizes[l.digest] = len(l.data)
	}
	manifest = biManifest(config.digest, len(config.data), sizes, nil)
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range append([]rpBlob{config, {data: manifest, digest: biSHA(manifest)}}, layers...) {
		if err := os.WriteFile(filepath.Join(blobs, strings.TrimPrefix(b.digest, "sha256:")), b.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	index, _ := json.Marshal(clIndex{SchemaVersion: 2, MediaType: clMTIndex, Manifests: []clDescriptor{{
		MediaType: clMTManifest, Digest: biSHA(manifest), Size: int64(len(manifest)),
		Annotations: map[string]string{"org.opencontainers.image.ref.name": tag},
	}}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return manifest
}

// rpCheckLayoutBlobs checks that a layout pulled by a client holds every blob intact.
func rpCheckLayoutBlobs(t *testing.T, dir string, blobs ...rpBlob) {
	t.Helper()
	for _, b := range blobs {
		got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(b.digest, "sha256:")))
		if err != nil || !bytes.Equal(got, b.data) {
			t.Errorf("layout %s: blob %s missing or altered (%v, %d bytes)", dir, b.digest, err, len(got))
		}
	}
}

// ---------------------------------------------------------------- 1. conformance

// TestReplicasConformance runs the OCI conformance suite through nginx in front of two
// replicas: every test passes, none is skipped, and upload sessions were served by both
// replicas (a session opened on one continues on the other).
func TestReplicasConformance(t *testing.T) {
	bin := requireTool(t, "oci-conformance")
	c := startReplicas(t)
	work := t.TempDir()
	results := filepath.Join(work, "results")
	start := time.Now()
	out, _ := runErrIn(work, conformanceEnv(c.LB.Addr, results, false), bin)
	counts := map[string]int{}
	for _, m := range conformanceCount.FindAllStringSubmatch(out, -1) {
		counts[m[1]], _ = strconv.Atoi(m[2])
	}
	t.Logf("conformance through nginx in %s: %v", time.Since(start).Round(time.Millisecond), counts)
	if counts["Pass"] == 0 || counts["FAIL"] != 0 || counts["Skip"] != 0 || counts["Error"] != 0 || counts["Disabled"] > 1 {
		// The failing specs' messages (junit.xml), not only their names.
		if junit, err := os.ReadFile(filepath.Join(results, "junit.xml")); err == nil {
			for _, m := range regexp.MustCompile(`(?s)<failure[^>]*>(.*?)</failure>`).FindAllSubmatch(junit, 10) {
				t.Logf("failure: %s", tail(string(m[1]), 3000))
			}
		}
		t.Fatalf("conformance through the load balancer: want all passing, none skipped (only the sparse data set disabled), got %v\n%s",
			counts, tail(out, 20000))
	}

	// Which replica served each request of each upload session.
	type session struct{ writesA, writesB, anyA, anyB int }
	sessions := map[string]*session{}
	served := map[string]int{}
	for _, r := range []struct {
		name string
		b    *Berth
	}{{"A", c.A}, {"B", c.B}} {
		for _, a := range rpAccessLog(t, r.b) {
			served[r.name]++
			m := rpUploadPath.FindStringSubmatch(a.path)
			if m == nil {
				continue
			}
			s := sessions[m[1]]
			if s == nil {
				s = &session{}
				sessions[m[1]] = s
			}
			write := a.method == http.MethodPatch || a.method == http.MethodPut
			if r.name == "A" {
				s.anyA++
				if write {
					s.writesA++
				}
			} else {
				s.anyB++
				if write {
					s.writesB++
				}
			}
		}
	}
	var both, writesBoth int
	for _, s := range sessions {
		if s.anyA > 0 && s.anyB > 0 {
			both++
		}
		if s.writesA > 0 && s.writesB > 0 {
			writesBoth++
		}
	}
	t.Logf("requests served: A %d, B %d; %d upload sessions seen by id, %d served by both replicas, %d written (PATCH/PUT) on both",
		served["A"], served["B"], len(sessions), both, writesBoth)
	if served["A"] == 0 || served["B"] == 0 {
		t.Fatalf("nginx did not spread the requests: A served %d, B %d", served["A"], served["B"])
	}
	if writesBoth == 0 {
		t.Fatalf("no upload session had PATCH/PUT requests on both replicas (%d sessions, %d touched both)", len(sessions), both)
	}
}

// ---------------------------------------------------------------- 2. clients

// TestReplicasClients: crane and skopeo push through replica A and pull through replica B
// with the same digests and bytes (the multi-arch pause fixture, and an image whose
// 11 MiB layer spans S3 parts); a chunked upload alternates replicas request by request.
func TestReplicasClients(t *testing.T) {
	requireTool(t, "crane")
	requireTool(t, "skopeo")
	p := pauseFixture(t)
	c := startReplicas(t)
	env := toolEnv(t)
	dir := t.TempDir()

	layout := filepath.Join(dir, "pause")
	p.writeLayout(t, layout, "3.9")
	cfg := rpBlob{data: []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)}
	cfg.digest = biSHA(cfg.data)
	big := rpNewBlob(601, 11<<20+123)
	bigLayout := filepath.Join(dir, "big")
	bigManifest := rpWriteLayout(t, bigLayout, "v1", cfg, big)
	bigDigest := biSHA(bigManifest)

	pushers := []struct {
		name string
		push func(src, ref string)
	}{
		{"crane", func(src, ref string) { run(t, env, "crane", "push", src, ref) }},
		{"skopeo", func(src, ref string) {
			tag := ref[strings.LastIndex(ref, ":")+1:]
			run(t, env, "skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "oci:"+src+":"+tag, "docker://"+ref)
		}},
	}
	for _, pu := range pushers {
		repo := "replicas/" + pu.name
		pu.push(layout, c.A.Addr+"/"+repo+":3.9")
		pu.push(bigLayout, c.A.Addr+"/"+repo+":v1")

		// Pulled through B: raw HTTP, each client's digest, each client's pull.
		assertPause(t, c.B, repo, "3.9")
		rpGetBlob(t, c.B.Addr, repo, big)
		for _, ref := range []struct{ ref, want string }{{repo + ":3.9", p.IndexDigest}, {repo + ":v1", bigDigest}} {
			full := c.B.Addr + "/" + ref.ref
			if got := strings.TrimSpace(clRun(t, env, "", "crane", "digest", full)); got != ref.want {
				t.Errorf("pushed by %s to A, crane digest %s on B = %s, want %s", pu.name, full, got, ref.want)
			}
			if got := clDigest([]byte(clRun(t, env, "", "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+full))); got != ref.want {
				t.Errorf("pushed by %s to A, skopeo inspect --raw %s on B has digest %s, want %s", pu.name, full, got, ref.want)
			}
		}
		out := filepath.Join(dir, pu.name+"-crane-pull")
		run(t, env, "crane", "pull", "--format", "oci", c.B.Addr+"/"+repo+":3.9", out)
		checkPauseLayout(t, out)
		out = filepath.Join(dir, pu.name+"-skopeo-pull")
		run(t, env, "skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "docker://"+c.B.Addr+"/"+repo+":3.9", "oci:"+out+":3.9")
		checkPauseLayout(t, out)
		out = filepath.Join(dir, pu.name+"-big-crane-pull")
		run(t, env, "crane", "pull", "--format", "oci", c.B.Addr+"/"+repo+":v1", out)
		rpCheckLayoutBlobs(t, out, cfg, big, rpBlob{data: bigManifest, digest: bigDigest})
		out = filepath.Join(dir, pu.name+"-big-skopeo-pull")
		run(t, env, "skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", "docker://"+c.B.Addr+"/"+repo+":v1", "oci:"+out+":v1")
		rpCheckLayoutBlobs(t, out, cfg, big, rpBlob{data: bigManifest, digest: bigDigest})
	}

	// A chunked upload: POST on A, PATCH on B, PATCH on A, PUT (with the last bytes) on B.
	// 12 MiB in chunks of 4.5, 4.5 and 3 MiB: the parts of the S3 multipart upload are
	// written by both replicas, the tails handed over between them.
	blob := rpNewBlob(602, 12<<20)
	repo := "replicas/chunked"
	loc := biStartUpload(t, c.A.Addr, repo)
	c1, c2 := 9<<19, 9<<20
	loc = biPatch(t, c.B.Addr, loc, 0, blob.data[:c1])
	st := biDo(t, nil, c.A.Addr, "GET", loc, nil, nil, false)
	if st.Status != http.StatusNoContent || st.Header.Get("Range") != fmt.Sprintf("0-%d", c1-1) {
		t.Fatalf("upload status on A after a PATCH on B: %d Range %q, want 204 0-%d", st.Status, st.Header.Get("Range"), c1-1)
	}
	loc = biPatch(t, c.A.Addr, loc, int64(c1), blob.data[c1:c2])
	r := biDo(t, nil, c.B.Addr, "PUT", biWithQuery(loc, "digest="+blob.digest), map[string]string{
		"Content-Type":  "application/octet-stream",
		"Content-Range": fmt.Sprintf("%d-%d", c2, len(blob.data)-1),
	}, blob.data[c2:], false)
	if r.Status != http.StatusCreated || r.Header.Get("Docker-Content-Digest") != blob.digest {
		t.Fatalf("closing PUT on B of an upload started on A: %d %q %s, want 201 %s", r.Status, r.Header.Get("Docker-Content-Digest"), r.Body, blob.digest)
	}
	for _, b := range []*Berth{c.A, c.B} {
		rpGetBlob(t, b.Addr, repo, blob)
		h := biDo(t, nil, b.Addr, "HEAD", "/v2/"+repo+"/blobs/"+blob.digest, nil, nil, false)
		if h.Status != http.StatusOK || h.Header.Get("Content-Length") != strconv.Itoa(len(blob.data)) || h.Header.Get("Docker-Content-Digest") != blob.digest {
			t.Errorf("HEAD blob on %s: %d length %q digest %q", b.Addr, h.Status, h.Header.Get("Content-Length"), h.Header.Get("Docker-Content-Digest"))
		}
		// A range that straddles the part boundary.
		from, to := rpPartSize-10, rpPartSize+9
		g := biDo(t, nil, b.Addr, "GET", "/v2/"+repo+"/blobs/"+blob.digest, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", from, to)}, nil, false)
		if g.Status != http.StatusPartialContent || !bytes.Equal(g.Body, blob.data[from:to+1]) {
			t.Errorf("Range GET across the part boundary on %s: %d, %d bytes, equal=%v", b.Addr, g.Status, len(g.Body), bytes.Equal(g.Body, blob.data[from:to+1]))
		}
	}
	if s := biDo(t, nil, c.A.Addr, "GET", loc, nil, nil, false); s.Status != http.StatusNotFound || biErrCode(s.Body) != "BLOB_UPLOAD_UNKNOWN" {
		t.Errorf("upload status on A after B committed it: %d %s, want 404 BLOB_UPLOAD_UNKNOWN", s.Status, s.Body)
	}
}

// ---------------------------------------------------------------- 3. kill -9 of a replica

const (
	rpKillImages   = 50
	rpKillAttempts = 4 // one push and up to 3 retries of the whole push
	rpKillChunk    = 256 << 10
	rpKillAfter    = 40 // blob acknowledgements (of about 150) before replica A is killed
)

// rpImage is one image of the kill test and what its pushes were told.
type rpImage struct {
	repo, tag string
	blobs     []rpBlob // config first
	manifest  []byte
	digest    string

	acked    atomic.Bool // a push got its final 201
	attempts int
	lastErr  string
}

// rpFailure is a push attempt that failed: the request, its answer and who gave it.
type rpFailure struct {
	img      string
	attempt  int
	method   string
	what     string
	status   int
	upstream string // as nginx reports it: "A" or "A, B" when it passed the request on
	code     string // OCI error code of the body
	body     string
	err      error
}

func (f rpFailure) String() string {
	if f.err != nil {
		return fmt.Sprintf("%s attempt %d: %s: %v", f.img, f.attempt, f.what, f.err)
	}
	return fmt.Sprintf("%s attempt %d: %s: %d from %q %s", f.img, f.attempt, f.what, f.status, f.upstream, f.body)
}

func rpNewImage(rng *rand.Rand, i int) *rpImage {
	img := &rpImage{repo: fmt.Sprintf("kill/img%02d", i), tag: "v1"}
	img.blobs = append(img.blobs, rpNewBlob(rng.Uint64(), 512+rng.IntN(4096)))
	for j := 0; j < 2; j++ {
		size := 32<<10 + rng.IntN(1<<20)
		if i%10 == 0 && j == 1 {
			size = 6<<20 + rng.IntN(1<<20) // a few layers span S3 parts
		}
		img.blobs = append(img.blobs, rpNewBlob(rng.Uint64(), size))
	}
	layers := map[string]int{}
	for _, b := range img.blobs[1:] {
		layers[b.digest] = len(b.data)
	}
	img.manifest = biManifest(img.blobs[0].digest, len(img.blobs[0].data), layers, nil)
	img.digest = biSHA(img.manifest)
	return img
}

// rpPushOnce pushes img through addr (POST, PATCH chunks, PUT per blob, then the
// manifest) and stops at the first failure. onBlob is called for each blob's 201.
func rpPushOnce(c *http.Client, addr string, img *rpImage, attempt int, onBlob func(rpBlob), served func(string)) *rpFailure {
	fail := func(what string, r biResp, err error) *rpFailure {
		f := &rpFailure{img: img.repo, attempt: attempt, method: strings.Fields(what)[0], what: what, err: err}
		if err == nil {
			f.status, f.upstream, f.code, f.body = r.Status, r.Header.Get(rpUpstreamHeader), biErrCode(r.Body), miTrunc(r.Body)
		}
		return f
	}
	do := func(method, path string, hdr map[string]string, body []byte) (biResp, error) {
		r, err := biTry(c, addr, method, path, hdr, body, false)
		if err == nil {
			served(r.Header.Get(rpUpstreamHeader))
		}
		return r, err
	}
	for _, b := range img.blobs {
		r, err := do("POST", "/v2/"+img.repo+"/blobs/uploads/", nil, []byte{})
		if err != nil || r.Status != http.StatusAccepted || r.Header.Get("Location") == "" {
			return fail("POST upload", r, err)
		}
		loc := r.Header.Get("Location")
		for off := 0; off < len(b.data); off += rpKillChunk {
			end := min(off+rpKillChunk, len(b.data))
			r, err = do("PATCH", loc, map[string]string{
				"Content-Type":  "application/octet-stream",
				"Content-Range": fmt.Sprintf("%d-%d", off, end-1),
			}, b.data[off:end])
			if err != nil || r.Status != http.StatusAccepted || r.Header.Get("Range") != fmt.Sprintf("0-%d", end-1) {
				return fail(fmt.Sprintf("PATCH %d-%d (Range %q)", off, end-1, r.Header.Get("Range")), r, err)
			}
			if l := r.Header.Get("Location"); l != "" {
				loc = l
			}
		}
		r, err = do("PUT", biWithQuery(loc, "digest="+b.digest), nil, nil)
		if err != nil || r.Status != http.StatusCreated || r.Header.Get("Docker-Content-Digest") != b.digest {
			return fail("PUT blob "+b.digest, r, err)
		}
		onBlob(b)
	}
	r, err := do("PUT", "/v2/"+img.repo+"/manifests/"+img.tag, map[string]string{"Content-Type": biMTManifest}, img.manifest)
	if err != nil || r.Status != http.StatusCreated || r.Header.Get("Docker-Content-Digest") != img.digest {
		return fail("PUT manifest", r, err)
	}
	return nil
}

// TestReplicasKillOne pushes 50 images concurrently through nginx and SIGKILLs replica A
// mid-run. A client whose push fails retries the whole push (up to 3 times), as real
// clients do. Every push that was acknowledged (its final 201), and every blob whose
// upload was acknowledged, is intact on the surviving replica; all 50 pushes succeed;
// the only failed answers are nginx's for requests that were on A when it died.
func TestReplicasKillOne(t *testing.T) {
	c := startReplicas(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	var imgs []*rpImage
	for i := 0; i < rpKillImages; i++ {
		imgs = append(imgs, rpNewImage(rng, i))
	}

	client := &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}
	var (
		mu         sync.Mutex
		failures   []rpFailure
		ackedBlobs = map[string]rpBlob{} // digest → blob, in repo (digests are unique per image)
		blobRepo   = map[string]string{}
		byUpstream = map[string]int{}
		blobAcks   atomic.Int64
		killOnce   sync.Once
		killed     = make(chan struct{})
		killedAt   time.Time
		doneAtKill int
		acksAtKill int64
	)
	var finished atomic.Int64
	kill := func() {
		killOnce.Do(func() {
			go func() {
				mu.Lock()
				doneAtKill, acksAtKill, killedAt = int(finished.Load()), blobAcks.Load(), time.Now()
				mu.Unlock()
				c.A.Kill()
				close(killed)
			}()
		})
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, img := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer finished.Add(1)
			for attempt := 1; attempt <= rpKillAttempts; attempt++ {
				img.attempts = attempt
				f := rpPushOnce(client, c.LB.Addr, img, attempt, func(b rpBlob) {
					mu.Lock()
					ackedBlobs[b.digest], blobRepo[b.digest] = b, img.repo
					mu.Unlock()
					if blobAcks.Add(1) >= rpKillAfter {
						kill()
					}
				}, func(up string) {
					mu.Lock()
					byUpstream[up]++
					mu.Unlock()
				})
				if f == nil {
					img.acked.Store(true)
					return
				}
				img.lastErr = f.String()
				mu.Lock()
				failures = append(failures, *f)
				mu.Unlock()
				time.Sleep(time.Duration(attempt) * 250 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	kill() // in case every push finished first (then the test proves little: reported below)
	<-killed
	t.Logf("pushes done in %s; A killed %s after the start with %d blob acks and %d of %d pushes finished",
		time.Since(start).Round(time.Millisecond), killedAt.Sub(start).Round(time.Millisecond), acksAtKill, doneAtKill, len(imgs))
	if doneAtKill >= len(imgs) {
		t.Errorf("replica A was killed only after every push had finished: the kill was not mid-run")
	}
	ups := []string{}
	for up, n := range byUpstream {
		ups = append(ups, fmt.Sprintf("%s=%d", up, n))
	}
	sort.Strings(ups)
	t.Logf("answers by upstream: %s", strings.Join(ups, " "))
	if byUpstream[c.A.Addr] == 0 {
		t.Errorf("replica A answered no request before it was killed")
	}

	attempts := map[int]int{}
	for _, img := range imgs {
		attempts[img.attempts]++
		if !img.acked.Load() {
			t.Errorf("push of %s:%s never succeeded in %d attempts; last: %s", img.repo, img.tag, img.attempts, img.lastErr)
		}
	}
	t.Logf("pushes by attempts needed: %v; %d failed attempts", attempts, len(failures))
	var fromA, resent int
	for _, f := range failures {
		if f.err != nil {
			t.Errorf("no answer from nginx: %s", f)
			continue
		}
		ups := strings.Split(f.upstream, ", ")
		switch last := ups[len(ups)-1]; {
		case last == c.A.Addr && f.status >= 500:
			// nginx's 502 for a request that was on A when it died.
			if fromA++; fromA <= 5 {
				t.Logf("failed attempt (A died): %s", f)
			}
		case last == c.B.Addr && len(ups) == 2 && ups[0] == c.A.Addr && f.method == "PUT" &&
			f.status == http.StatusNotFound && f.code == "BLOB_UPLOAD_UNKNOWN":
			// nginx re-sends a PUT (idempotent in HTTP) to B when A died while handling
			// it; A may have been part-way through committing the session, which then
			// ends cleanly: the client starts over.
			resent++
			t.Logf("closing PUT re-sent by nginx after A died: %s", f)
		default:
			// Any other error answer came from the surviving replica: a bug. A damaged
			// session must end with 404 BLOB_UPLOAD_UNKNOWN, never a 500.
			t.Errorf("error answer from the surviving replica B: %s", f)
		}
	}
	t.Logf("failed attempts: %d answered 502 by nginx for A, %d closing PUTs re-sent to B and ended as BLOB_UPLOAD_UNKNOWN", fromA, resent)

	// Everything acknowledged is intact on the surviving replica.
	vc := &http.Client{Timeout: 60 * time.Second}
	for _, img := range imgs {
		if !img.acked.Load() {
			continue
		}
		for _, ref := range []string{img.tag, img.digest} {
			r, err := biTry(vc, c.B.Addr, "GET", "/v2/"+img.repo+"/manifests/"+ref, map[string]string{"Accept": biMTManifest}, nil, false)
			if err != nil || r.Status != http.StatusOK || !bytes.Equal(r.Body, img.manifest) || r.Header.Get("Docker-Content-Digest") != img.digest {
				t.Errorf("acknowledged manifest %s:%s on B: %d %v %q", img.repo, ref, r.Status, err, r.Header.Get("Docker-Content-Digest"))
			}
		}
		for _, b := range img.blobs {
			rpGetBlob(t, c.B.Addr, img.repo, b)
		}
	}
	for d, b := range ackedBlobs {
		rpGetBlob(t, c.B.Addr, blobRepo[d], b)
	}
	t.Logf("verified %d acknowledged blobs on B", len(ackedBlobs))
	// And through the load balancer, with A gone.
	for _, img := range imgs[:5] {
		rpGetBlob(t, c.LB.Addr, img.repo, img.blobs[1])
	}
	// Not asserted (a crash leaves objects that the upload purge and garbage collection
	// remove later), but worth seeing.
	t.Logf("bucket after the kill: %d blob objects for %d distinct blobs, %d upload objects, %d multipart uploads",
		len(c.S3.objects(t, rpBucket, "berth/blobs")), len(ackedBlobs), len(c.S3.objects(t, rpBucket, "berth/uploads")), len(c.S3.multipartUploads(t)))
	crLogErrors(t, c.B)
}

// ---------------------------------------------------------------- 4. S3 outage

// TestReplicasS3Outage stops the S3 server (SIGKILL) for a few seconds: blob GETs and
// uploads answer 503 UNAVAILABLE with an OCI error body on both replicas and through
// nginx, metadata requests (manifests, tags, blob HEAD) still work, /readyz reports the
// outage; once the same server is back on the same port and data, everything works again
// without restarting Berth, an upload interrupted by the outage resumes, and nothing is
// corrupt or left over.
func TestReplicasS3Outage(t *testing.T) {
	c := startReplicas(t)
	lb := c.lb()
	layer := rpNewBlob(701, 300<<10)
	manifestDigest := pushImage(t, lb, "outage/app", "v1", layer.data)
	big := rpNewBlob(702, 7<<20)
	if r := rpChunked(t, []string{c.A.Addr, c.B.Addr}, "outage/app", big, 2<<20); r.Status != http.StatusCreated {
		t.Fatalf("chunked push of the big blob: %d %s", r.Status, r.Body)
	}
	manifest := biDo(t, nil, c.A.Addr, "GET", "/v2/outage/app/manifests/v1", map[string]string{"Accept": biMTManifest}, nil, false)
	if manifest.Status != http.StatusOK {
		t.Fatalf("manifest: %d", manifest.Status)
	}
	// An upload in progress across the outage: 1 MiB acknowledged before.
	pending := rpNewBlob(703, 3<<20)
	loc := biStartUpload(t, c.A.Addr, "outage/app")
	loc = biPatch(t, c.B.Addr, loc, 0, pending.data[:1<<20])
	fresh := rpNewBlob(704, 100<<10)

	c.S3.stop()
	down := time.Now()
	// Every check at once: a request that needs S3 takes a few seconds to give up (the S3
	// client retries), so one after the other they would make a long outage.
	vc := &http.Client{Timeout: 60 * time.Second}
	var wg sync.WaitGroup
	check := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	for _, b := range []*Berth{c.A, c.B} {
		for _, bl := range []rpBlob{layer, big} {
			check(func() {
				r, err := biTry(vc, b.Addr, "GET", "/v2/outage/app/blobs/"+bl.digest, nil, nil, false)
				rpWantOCIError(t, "GET blob while S3 is down on "+b.Addr, r, err, http.StatusServiceUnavailable, "UNAVAILABLE")
			})
		}
		check(func() {
			r, err := biTry(vc, b.Addr, "POST", "/v2/outage/app/blobs/uploads/?digest="+fresh.digest,
				map[string]string{"Content-Type": "application/octet-stream"}, fresh.data, false)
			rpWantOCIError(t, "monolithic upload while S3 is down on "+b.Addr, r, err, http.StatusServiceUnavailable, "UNAVAILABLE")
		})
		// Metadata lives in the database: still served.
		check(func() {
			h, err := biTry(vc, b.Addr, "HEAD", "/v2/outage/app/blobs/"+layer.digest, nil, nil, false)
			if err != nil || h.Status != http.StatusOK || h.Header.Get("Docker-Content-Digest") != layer.digest || h.Header.Get("Content-Length") != strconv.Itoa(len(layer.data)) {
				t.Errorf("blob HEAD while S3 is down on %s: %d %v (answered from the database, it must not need S3)", b.Addr, h.Status, err)
			}
			m, err := biTry(vc, b.Addr, "GET", "/v2/outage/app/manifests/v1", map[string]string{"Accept": biMTManifest}, nil, false)
			if err != nil || m.Status != http.StatusOK || !bytes.Equal(m.Body, manifest.Body) || m.Header.Get("Docker-Content-Digest") != manifestDigest {
				t.Errorf("manifest GET while S3 is down on %s: %d %v", b.Addr, m.Status, err)
			}
			tl, err := biTry(vc, b.Addr, "GET", "/v2/outage/app/tags/list", nil, nil, false)
			if err != nil || tl.Status != http.StatusOK || !bytes.Contains(tl.Body, []byte(`"v1"`)) {
				t.Errorf("tags list while S3 is down on %s: %d %v %s", b.Addr, tl.Status, err, tl.Body)
			}
			hz, err := biTry(vc, b.Addr, "GET", "/healthz", nil, nil, false)
			if err != nil || hz.Status != http.StatusOK {
				t.Errorf("/healthz while S3 is down on %s: %d %v, want 200", b.Addr, hz.Status, err)
			}
		})
		check(func() {
			rd, err := biTry(vc, b.Addr, "GET", "/readyz", nil, nil, false)
			if err != nil || rd.Status != http.StatusServiceUnavailable {
				t.Errorf("/readyz while S3 is down on %s: %d %v, want 503", b.Addr, rd.Status, err)
			}
		})
	}
	// The pending session's next chunk (on B), and a blob GET through nginx.
	check(func() {
		r, err := biTry(vc, c.B.Addr, "PATCH", loc, map[string]string{
			"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", 1<<20, 2<<20-1),
		}, pending.data[1<<20:2<<20], false)
		rpWantOCIError(t, "PATCH while S3 is down", r, err, http.StatusServiceUnavailable, "UNAVAILABLE")
	})
	check(func() {
		r, err := biTry(vc, c.LB.Addr, "GET", "/v2/outage/app/blobs/"+layer.digest, nil, nil, false)
		rpWantOCIError(t, "GET blob through nginx while S3 is down", r, err, http.StatusServiceUnavailable, "UNAVAILABLE")
	})
	wg.Wait()

	c.S3.start()
	up := time.Now()
	t.Logf("S3 was down for %s", up.Sub(down).Round(time.Millisecond))
	deadline := time.Now().Add(20 * time.Second)
	for _, b := range []*Berth{c.A, c.B} {
		for {
			r, err := biTry(vc, b.Addr, "GET", "/v2/outage/app/blobs/"+layer.digest, nil, nil, false)
			if err == nil && r.Status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("blob GET on %s still failing 20s after S3 came back: %d %v %s", b.Addr, r.Status, err, miTrunc(r.Body))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("both replicas serve blobs again %s after S3 came back", time.Since(up).Round(time.Millisecond))
	for _, b := range []*Berth{c.A, c.B} {
		if s := httpStatus(t, http.MethodGet, b.URL("/readyz")); s != http.StatusOK {
			t.Errorf("/readyz on %s after S3 came back: %d", b.Addr, s)
		}
		rpGetBlob(t, b.Addr, "outage/app", layer)
		rpGetBlob(t, b.Addr, "outage/app", big)
	}

	// The interrupted session resumes where it was acknowledged.
	st := biDo(t, nil, c.A.Addr, "GET", loc, nil, nil, false)
	if st.Status != http.StatusNoContent || st.Header.Get("Range") != fmt.Sprintf("0-%d", 1<<20-1) {
		t.Errorf("upload status after the outage: %d Range %q %s, want 204 0-%d (the chunk refused with 503 must not count)",
			st.Status, st.Header.Get("Range"), miTrunc(st.Body), 1<<20-1)
	} else {
		loc = biPatch(t, c.A.Addr, loc, 1<<20, pending.data[1<<20:])
		if r := biDo(t, nil, c.B.Addr, "PUT", biWithQuery(loc, "digest="+pending.digest), nil, nil, false); r.Status != http.StatusCreated {
			t.Errorf("closing the interrupted upload after the outage: %d %s", r.Status, r.Body)
		}
		rpGetBlob(t, c.A.Addr, "outage/app", pending)
	}
	// New pushes work, through each replica and the load balancer.
	biPushBlob(t, c.B.Addr, "outage/app", fresh.data)
	rpGetBlob(t, c.A.Addr, "outage/app", fresh)
	layer2 := rpNewBlob(705, 200<<10)
	pushImage(t, lb, "outage/app", "v2", layer2.data)
	rpGetBlob(t, c.B.Addr, "outage/app", layer2)
	m := biDo(t, nil, c.B.Addr, "GET", "/v2/outage/app/manifests/v1", map[string]string{"Accept": biMTManifest}, nil, false)
	if m.Status != http.StatusOK || !bytes.Equal(m.Body, manifest.Body) {
		t.Errorf("manifest v1 after the outage: %d", m.Status)
	}
	// Blobs: config (shared by v1 and v2), layer, big, pending, fresh, layer2.
	c.S3.checkObjects(t, 6)
	crLogErrors(t, c.A)
}

// ---------------------------------------------------------------- 5. object count

// TestReplicasS3Objects pushes N distinct blobs, some once, some twice one after the
// other through different replicas, some concurrently through both replicas (small ones
// and ones spanning S3 parts), plus a cancelled and a rejected upload: exactly N blob
// objects exist afterwards, and no upload leftovers.
func TestReplicasS3Objects(t *testing.T) {
	c := startReplicas(t)
	A, B, LB := c.A.Addr, c.B.Addr, c.LB.Addr
	type pushed struct {
		repo string
		blob rpBlob
	}
	var all []pushed
	distinct := map[string]bool{}
	record := func(repo string, b rpBlob) {
		all = append(all, pushed{repo, b})
		distinct[b.digest] = true
	}
	seed := uint64(800)
	newBlob := func(size int) rpBlob { seed++; return rpNewBlob(seed, size) }

	// Once: small monolithic ones through nginx, one chunked spanning parts.
	for i := 0; i < 4; i++ {
		b := newBlob(10<<10 + i*1000)
		biPushBlob(t, LB, "objects/once", b.data)
		record("objects/once", b)
	}
	b := newBlob(7 << 20)
	if r := rpChunked(t, []string{LB}, "objects/once", b, 3<<20); r.Status != http.StatusCreated {
		t.Fatalf("chunked push: %d %s", r.Status, r.Body)
	}
	record("objects/once", b)

	// Twice, one after the other: on A, then again on B (other repository, then the same).
	for i, size := range []int{20 << 10, 6 << 20, 7<<20 + 5} {
		b := newBlob(size)
		if r := rpChunked(t, []string{A}, "objects/twice", b, 4<<20); r.Status != http.StatusCreated {
			t.Fatalf("first push: %d %s", r.Status, r.Body)
		}
		record("objects/twice", b)
		repo := "objects/twice-again"
		if i == 2 {
			repo = "objects/twice"
		}
		if r := rpChunked(t, []string{B, A}, repo, b, 3<<20); r.Status != http.StatusCreated {
			t.Fatalf("second push of %s to %s: %d %s", b.digest, repo, r.Status, r.Body)
		}
		record(repo, b)
	}

	// Concurrently: each blob by four clients at once, two through A and two through B,
	// alternately in the same and in other repositories, chunked so that the uploads overlap.
	var wg sync.WaitGroup
	var mu sync.Mutex
	startLine := make(chan struct{})
	for i, size := range []int{300 << 10, 900 << 10, 6 << 20, 11<<20 + 7} {
		b := newBlob(size)
		for j := 0; j < 4; j++ {
			addr := []string{A, B}[j%2]
			repo := fmt.Sprintf("objects/concurrent%d", j/2)
			mu.Lock()
			record(repo, b)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-startLine
				chunk := 256 << 10
				if size > rpPartSize {
					chunk = 2 << 20
				}
				r := rpChunked(t, []string{addr}, repo, b, chunk)
				if r.Status != http.StatusCreated || r.Header.Get("Docker-Content-Digest") != b.digest {
					t.Errorf("concurrent push %d/%d of %s to %s via %s: %d %s", i, j, b.digest, repo, addr, r.Status, r.Body)
				}
			}()
		}
	}
	close(startLine)
	wg.Wait()

	// Uploads that end without a blob: a cancelled one (past a part) and a wrong digest.
	x := newBlob(6 << 20)
	loc := biStartUpload(t, A, "objects/cancel")
	loc = biPatch(t, B, loc, 0, x.data)
	if r := biDo(t, nil, A, "DELETE", loc, nil, nil, false); r.Status != http.StatusNoContent {
		t.Errorf("cancelling an upload: %d %s", r.Status, r.Body)
	}
	loc = biStartUpload(t, B, "objects/bad")
	loc = biPatch(t, A, loc, 0, x.data)
	wrong := biSHA([]byte("something else"))
	if r := biDo(t, nil, B, "PUT", biWithQuery(loc, "digest="+wrong), nil, nil, false); r.Status != http.StatusBadRequest || biErrCode(r.Body) != "DIGEST_INVALID" {
		t.Errorf("closing an upload with a wrong digest: %d %s, want 400 DIGEST_INVALID", r.Status, r.Body)
	}
	for _, addr := range []string{A, B} {
		biAbsent(t, addr, "/v2/objects/cancel/blobs/"+x.digest)
		biAbsent(t, addr, "/v2/objects/bad/blobs/"+x.digest)
	}

	// Everything readable from both replicas, and exactly one object per distinct blob.
	for _, p := range all {
		for _, addr := range []string{A, B} {
			rpGetBlob(t, addr, p.repo, p.blob)
		}
	}
	t.Logf("%d pushes of %d distinct blobs", len(all), len(distinct))
	c.S3.checkObjects(t, len(distinct))
}

// ---------------------------------------------------------------- damaged session

// TestReplicasS3DamagedSession reproduces, deterministically, what a replica killed
// inside a closing PUT leaves behind: its S3 commit deletes the session's tail objects
// (then its marker) before the blob row is written, so the session row outlives its
// bytes. The closing PUT that a load balancer re-sends to the other replica must end the
// session with 404 BLOB_UPLOAD_UNKNOWN (start over), as an interrupted upload does,
// never with a 500.
func TestReplicasS3DamagedSession(t *testing.T) {
	c := startReplicas(t)
	cl := c.S3.client()
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		keepMarker bool
	}{{"tails gone, marker kept", true}, {"tails and marker gone", false}} {
		t.Run(tc.name, func(t *testing.T) {
			blob := rpNewBlob(901, 300<<10)
			repo := "damaged/" + strings.ReplaceAll(strings.ReplaceAll(tc.name, " ", "-"), ",", "")
			uploadKeys := func() []string {
				list, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(rpBucket), Prefix: aws.String("berth/uploads/")})
				if err != nil {
					t.Fatal(err)
				}
				var keys []string
				for _, o := range list.Contents {
					keys = append(keys, aws.ToString(o.Key))
				}
				return keys
			}
			before := uploadKeys()
			loc := biStartUpload(t, c.A.Addr, repo)
			loc = biPatch(t, c.B.Addr, loc, 0, blob.data[:200<<10])
			var deleted []string
			for _, k := range uploadKeys() {
				if slices.Contains(before, k) {
					continue // not this session's
				}
				if strings.Contains(k, ".tail-") || !tc.keepMarker {
					if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(rpBucket), Key: aws.String(k)}); err != nil {
						t.Fatal(err)
					}
					deleted = append(deleted, k)
				}
			}
			if len(deleted) == 0 {
				t.Fatal("the session left no object to delete after a PATCH")
			}
			t.Logf("deleted %v", deleted)
			r := biDo(t, nil, c.B.Addr, "PUT", biWithQuery(loc, "digest="+blob.digest), map[string]string{
				"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", 200<<10, len(blob.data)-1),
			}, blob.data[200<<10:], false)
			if r.Status != http.StatusNotFound || biErrCode(r.Body) != "BLOB_UPLOAD_UNKNOWN" {
				t.Errorf("closing PUT of a session whose S3 objects are gone: %d %s, want 404 BLOB_UPLOAD_UNKNOWN", r.Status, r.Body)
			}
			if s := biDo(t, nil, c.A.Addr, "GET", loc, nil, nil, false); s.Status != http.StatusNotFound || biErrCode(s.Body) != "BLOB_UPLOAD_UNKNOWN" {
				t.Errorf("upload status afterwards: %d %s, want 404 BLOB_UPLOAD_UNKNOWN", s.Status, s.Body)
			}
			// The client starts over and succeeds.
			if r := rpChunked(t, []string{c.A.Addr, c.B.Addr}, repo, blob, 100<<10); r.Status != http.StatusCreated {
				t.Errorf("new upload after the damaged one: %d %s", r.Status, r.Body)
			}
			rpGetBlob(t, c.A.Addr, repo, blob)
		})
	}
}
