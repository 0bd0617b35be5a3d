package blobstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/blobstore/storetest"
)

const (
	vgwAccess = "berthtest"
	vgwSecret = "berthtestsecret123"
	vgwBucket = "berth-test"
)

// versity is one versitygw (S3 over a temp directory) shared by this package's tests.
var versity struct {
	once     sync.Once
	endpoint string
	err      error // why it could not start
	missing  bool  // not installed
	cmd      *exec.Cmd
	dir      string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if versity.cmd != nil {
		_ = versity.cmd.Process.Kill()
		_ = versity.cmd.Wait()
	}
	if versity.dir != "" {
		os.RemoveAll(versity.dir)
	}
	os.Exit(code)
}

// s3Endpoint starts versitygw once and returns its URL; without versitygw the test is
// skipped, or fails under CI.
func s3Endpoint(t *testing.T) string {
	t.Helper()
	versity.once.Do(startVersity)
	if versity.missing {
		if os.Getenv("CI") != "" {
			t.Fatalf("versitygw is not installed; CI must run .ci/install-tools.sh first")
		}
		t.Skip("versitygw is not installed (run .ci/install-tools.sh and source .ci/env.sh)")
	}
	if versity.err != nil {
		t.Fatalf("versitygw: %v", versity.err)
	}
	return versity.endpoint
}

func startVersity() {
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		versity.missing = true
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		versity.err = err
		return
	}
	addr := ln.Addr().String()
	ln.Close()
	versity.dir, err = os.MkdirTemp("", "berth-versitygw-")
	if err != nil {
		versity.err = err
		return
	}
	data := filepath.Join(versity.dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		versity.err = err
		return
	}
	log, err := os.Create(filepath.Join(versity.dir, "versitygw.log"))
	if err != nil {
		versity.err = err
		return
	}
	cmd := exec.Command(bin, "--port", addr, "--access", vgwAccess, "--secret", vgwSecret,
		"--region", "us-east-1", "--keep-alive", "--quiet", "posix", data)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		versity.err = err
		return
	}
	versity.cmd = cmd
	versity.endpoint = "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		// Any HTTP answer (403 to an anonymous request) means it is serving.
		resp, err := http.Get(versity.endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log.Name())
			versity.err = fmt.Errorf("not answering on %s after 15s: %v\n%s", addr, err, out)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func s3Options(t *testing.T, prefix string) blobstore.S3Options {
	return blobstore.S3Options{
		Endpoint: s3Endpoint(t), Region: "us-east-1", Bucket: vgwBucket, Prefix: prefix,
		ForcePathStyle: true, AccessKey: vgwAccess, SecretKey: vgwSecret, CreateBucket: true,
	}
}

// newS3 returns a driver over a fresh prefix (empty storage) of the test bucket.
func newS3(t *testing.T) (*blobstore.S3, string) {
	t.Helper()
	prefix := "t-" + randomHex(6) + "/berth"
	return openS3(t, prefix), prefix
}

// openS3 opens another driver instance (a replica) over prefix.
func openS3(t *testing.T, prefix string) *blobstore.S3 {
	t.Helper()
	d, err := blobstore.NewS3(t.Context(), s3Options(t, prefix))
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	return d
}

// rawClient talks to versitygw directly, to look at what the driver stored.
func rawClient(t *testing.T) *s3.Client {
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s3Endpoint(t)), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(vgwAccess, vgwSecret, ""),
	})
}

func listKeys(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(rawClient(t), &s3.ListObjectsV2Input{Bucket: aws.String(vgwBucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	slices.Sort(keys)
	return keys
}

func listMultipart(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListMultipartUploadsPaginator(rawClient(t), &s3.ListMultipartUploadsInput{Bucket: aws.String(vgwBucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Uploads {
			keys = append(keys, aws.ToString(u.Key))
		}
	}
	return keys
}

func fill(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7) + byte(i>>13)
	}
	return b
}

func mustWrite(t *testing.T, up blobstore.Upload, p []byte) {
	t.Helper()
	if n, err := up.Write(p); err != nil || n != len(p) {
		t.Fatalf("Write(%d) = %d, %v", len(p), n, err)
	}
}

func mustRead(t *testing.T, d blobstore.Driver, loc string, want []byte) {
	t.Helper()
	b, err := d.Open(t.Context(), loc)
	if err != nil {
		t.Fatalf("Open(%s): %v", loc, err)
	}
	defer b.Close()
	got, err := io.ReadAll(b)
	if err != nil || b.Size() != int64(len(want)) || !bytes.Equal(got, want) {
		t.Fatalf("%s: read %d bytes (Size %d, %v), want %d", loc, len(got), b.Size(), err, len(want))
	}
}

func TestS3Driver(t *testing.T) {
	s3Endpoint(t)
	storetest.RunWith(t, storetest.Options{SharedHold: true}, func(t *testing.T) blobstore.Driver {
		d, _ := newS3(t)
		return d
	})
}

// session is a chunked upload driven the way the registry drives one: the row (size +
// state) is all that survives between requests, and each request may land on another
// replica.
type session struct {
	handle string
	size   int64
	state  []byte
}

func startSession(t *testing.T, d blobstore.Driver) *session {
	t.Helper()
	up, err := d.NewUpload(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Close(); err != nil {
		t.Fatal(err)
	}
	return &session{handle: up.Handle(), state: up.State()}
}

func (s *session) open(t *testing.T, d blobstore.Driver) blobstore.Upload {
	t.Helper()
	up, err := d.OpenUpload(t.Context(), s.handle)
	if err != nil {
		t.Fatalf("OpenUpload: %v", err)
	}
	if err := up.Rewind(s.size, s.state); err != nil {
		t.Fatalf("Rewind(%d): %v", s.size, err)
	}
	return up
}

// patch appends p in one request on driver d.
func (s *session) patch(t *testing.T, d blobstore.Driver, p []byte) {
	t.Helper()
	up := s.open(t, d)
	defer up.Close()
	mustWrite(t, up, p)
	if err := up.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	s.size, s.state = up.Size(), up.State()
}

func (s *session) finish(t *testing.T, d blobstore.Driver, content []byte) string {
	t.Helper()
	up := s.open(t, d)
	loc, err := up.Commit(t.Context(), digest.FromBytes(content))
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return loc
}

// TestS3ObjectCount: after pushing N distinct blobs, some of them twice (the second push
// of a digest is aborted, as the registry does; two concurrent commits of one digest end
// with the loser's object deleted), exactly N blob objects exist and nothing else.
func TestS3ObjectCount(t *testing.T) {
	d, prefix := newS3(t)
	ctx := t.Context()
	stored := map[digest.Digest]string{}
	var mu sync.Mutex
	// push stores content like the registry: commit unless the digest is stored already.
	push := func(content []byte, chunked bool) {
		t.Helper()
		dg := digest.FromBytes(content)
		var up blobstore.Upload
		if chunked {
			s := startSession(t, d)
			for off := 0; off < len(content); off += 3 << 20 {
				s.patch(t, d, content[off:min(off+3<<20, len(content))])
			}
			up = s.open(t, d)
		} else {
			var err error
			if up, err = d.NewUpload(ctx); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, up, content)
		}
		mu.Lock()
		_, dup := stored[dg]
		mu.Unlock()
		if dup {
			up.Close()
			if err := d.AbortUpload(ctx, up.Handle()); err != nil {
				t.Fatal(err)
			}
			return
		}
		loc, err := up.Commit(ctx, dg)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if first, ok := stored[dg]; ok {
			// Lost a commit race: the database keeps the first location.
			if err := d.Delete(ctx, loc); err != nil {
				t.Fatal(err)
			}
			loc = first
		}
		stored[dg] = loc
	}
	blobs := [][]byte{
		nil,                     // empty
		[]byte("small config"),  // tiny
		fill(1, 5<<20-1),        // just under S3's minimum part
		fill(2, 8<<20),          // exactly one part
		fill(3, 8<<20+1),        // one part and a byte
		fill(4, 19<<20+12345),   // three parts
		[]byte(`{"layers":[]}`), // tiny
	}
	for i, b := range blobs {
		push(b, i%2 == 0)
		push(b, i%2 == 1) // pushed again: aborted
	}
	// Concurrent pushes of one digest (some monolithic, some chunked).
	race := fill(9, 9<<20)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			push(race, i%2 == 0)
		}()
	}
	wg.Wait()
	n := len(blobs) + 1
	if len(stored) != n {
		t.Fatalf("%d digests stored, want %d", len(stored), n)
	}
	for dg, loc := range stored {
		if !strings.HasPrefix(loc, "blobs/") {
			t.Fatalf("location %q", loc)
		}
		b, err := d.Open(ctx, loc)
		if err != nil {
			t.Fatalf("%s: %v", dg, err)
		}
		v := dg.Algorithm().Digester()
		if _, err := io.Copy(v.Hash(), b); err != nil || v.Digest() != dg {
			t.Fatalf("%s reads back as %s (%v)", dg, v.Digest(), err)
		}
		b.Close()
	}
	keys := listKeys(t, prefix+"/")
	var blobKeys []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix+"/blobs/") {
			blobKeys = append(blobKeys, k)
		}
	}
	if len(blobKeys) != n || len(keys) != n {
		t.Fatalf("%d blob objects (%d objects in all), want exactly %d:\n%s", len(blobKeys), len(keys), n, strings.Join(keys, "\n"))
	}
	if mp := listMultipart(t, prefix+"/"); len(mp) != 0 {
		t.Fatalf("multipart uploads left: %v", mp)
	}
}

// TestS3ResumeOnAnotherReplica: a 20 MiB chunked upload whose requests alternate between
// two driver instances, with only the recorded size and state passed between them,
// including a request that died after writing unacknowledged bytes.
func TestS3ResumeOnAnotherReplica(t *testing.T) {
	a, prefix := newS3(t)
	b := openS3(t, prefix)
	replicas := []*blobstore.S3{a, b}
	content := fill(42, 20<<20)
	s := startSession(t, a)
	off := 0
	for i := 0; off < len(content); i++ {
		chunk := min([]int{1 << 20, 3 << 20}[i%2], len(content)-off)
		d := replicas[i%2]
		if i%4 == 3 {
			// A request that wrote, synced and died before the database recorded it.
			up := s.open(t, d)
			mustWrite(t, up, fill(7, 2<<20+5))
			if err := up.Sync(); err != nil {
				t.Fatal(err)
			}
			up.Close()
		}
		s.patch(t, d, content[off:off+chunk])
		off += chunk
	}
	var st struct {
		Parts []struct{ Size int64 }
		Tail  []struct{ Size int64 }
	}
	if err := json.Unmarshal(s.state, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Parts) != 2 {
		t.Fatalf("state after 20 MiB: %s; want 2 parts of 8 MiB", s.state)
	}
	for _, p := range st.Parts {
		if p.Size < blobstore.S3MinPartSize {
			t.Fatalf("part of %d bytes below S3's minimum: %s", p.Size, s.state)
		}
	}
	// A third replica, started after all this, finishes it.
	c := openS3(t, prefix)
	loc := s.finish(t, c, content)
	mustRead(t, a, loc, content)
	mustRead(t, b, loc, content)
	if keys := listKeys(t, prefix+"/uploads/"); len(keys) != 0 {
		t.Fatalf("session objects left after commit: %v", keys)
	}
}

// TestS3SmallChunks: many tiny chunks keep few tail segments (they are merged), and the
// parts built from them are full-sized.
func TestS3SmallChunks(t *testing.T) {
	d, prefix := newS3(t)
	content := fill(5, 9<<20+777)
	s := startSession(t, d)
	maxSegs := 0
	for off := 0; off < len(content); off += 100 << 10 {
		s.patch(t, d, content[off:min(off+100<<10, len(content))])
		var st struct {
			Parts []struct{ Size int64 }
			Tail  []json.RawMessage
		}
		if err := json.Unmarshal(s.state, &st); err != nil {
			t.Fatal(err)
		}
		maxSegs = max(maxSegs, len(st.Tail))
		for _, p := range st.Parts {
			if p.Size != blobstore.S3DefaultPartSize {
				t.Fatalf("part of %d bytes: %s", p.Size, s.state)
			}
		}
	}
	if maxSegs > 8 {
		t.Fatalf("up to %d tail segments for 100 KiB chunks; merging should keep it logarithmic", maxSegs)
	}
	// Superseded segments are deleted as the session goes on, not only at the end.
	if keys := listKeys(t, prefix+"/uploads/"); len(keys) > maxSegs+3 {
		t.Fatalf("%d session objects during the upload (at most %d segments live):\n%s", len(keys), maxSegs, strings.Join(keys, "\n"))
	}
	mustRead(t, d, s.finish(t, d, content), content)
	if keys := listKeys(t, prefix+"/"); len(keys) != 1 {
		t.Fatalf("objects after commit: %v", keys)
	}
}

// TestS3RacingPartDetected: two writers resume from one state and both upload the same
// part number; the loser's part replaces the winner's. Committing the recorded (winner's)
// state must fail as corrupt instead of producing a blob with the loser's bytes.
func TestS3RacingPartDetected(t *testing.T) {
	d, prefix := newS3(t)
	s := startSession(t, d)
	// Part 1 and a tail: the multipart upload exists, and both writers will upload part 2
	// to it. (Writers racing from a state without one each create their own: no overlap.)
	s.patch(t, d, fill(1, 9<<20))
	w1, w2 := s.open(t, d), s.open(t, d)
	mustWrite(t, w1, fill(2, 8<<20))
	if err := w1.Sync(); err != nil {
		t.Fatal(err)
	}
	won := &session{handle: s.handle, size: w1.Size(), state: w1.State()}
	mustWrite(t, w2, fill(3, 8<<20)) // replaces part 2
	if err := w2.Sync(); err != nil {
		t.Fatal(err)
	}
	w1.Close()
	w2.Close()
	up := won.open(t, d)
	_, err := up.Commit(t.Context(), digest.FromString("whatever"))
	if !errors.Is(err, blobstore.ErrUploadCorrupt) {
		t.Fatalf("Commit after a clobbered part: %v, want ErrUploadCorrupt", err)
	}
	if keys := listKeys(t, prefix+"/blobs/"); len(keys) != 0 {
		t.Fatalf("blob objects after a refused commit: %v", keys)
	}
	if err := d.AbortUpload(t.Context(), s.handle); err != nil {
		t.Fatal(err)
	}
	if keys, mp := listKeys(t, prefix+"/"), listMultipart(t, prefix+"/"); len(keys)+len(mp) != 0 {
		t.Fatalf("left after abort: %v %v", keys, mp)
	}
}

func TestS3UploadsIdleSince(t *testing.T) {
	d, prefix := newS3(t)
	ctx := t.Context()
	var _ blobstore.UploadLister = d
	marker := startSession(t, d) // marker only
	tails := startSession(t, d)
	tails.patch(t, d, []byte("some bytes"))
	// A monolithic upload that died after its first part: multipart upload, no marker.
	mono, err := d.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, mono, fill(1, 9<<20))
	// A committed blob is not an upload.
	done := startSession(t, d)
	done.patch(t, d, []byte("done"))
	done.finish(t, d, []byte("done"))

	idle := func(before time.Time) []string {
		t.Helper()
		hs, err := d.UploadsIdleSince(ctx, before)
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	want := []string{marker.handle, tails.handle, mono.Handle()}
	slices.Sort(want)
	if got := idle(time.Now().Add(time.Minute)); !slices.Equal(got, want) {
		t.Fatalf("idle sessions %v, want %v", got, want)
	}
	if got := idle(time.Now().Add(-time.Hour)); len(got) != 0 {
		t.Fatalf("sessions idle for an hour: %v, want none", got)
	}
	for _, h := range want {
		if err := d.AbortUpload(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if got := idle(time.Now().Add(time.Minute)); len(got) != 0 {
		t.Fatalf("idle sessions after abort: %v", got)
	}
	if keys, mp := listKeys(t, prefix+"/uploads/"), listMultipart(t, prefix+"/"); len(keys)+len(mp) != 0 {
		t.Fatalf("left after abort: %v %v", keys, mp)
	}
	if keys := listKeys(t, prefix+"/blobs/"); len(keys) != 1 {
		t.Fatalf("blob objects: %v, want the committed one", keys)
	}
}

func TestS3Locations(t *testing.T) {
	d, _ := newS3(t)
	ctx := t.Context()
	s := startSession(t, d)
	s.patch(t, d, []byte("in progress"))
	up, err := d.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, up, []byte("blob"))
	loc, err := up.Commit(ctx, digest.FromString("blob"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "blobs/" + up.Handle()[:2] + "/" + up.Handle(); loc != want {
		t.Fatalf("location %q, want %q", loc, want)
	}
	h := s.handle
	for _, l := range []string{
		"", "blobs", "blobs/", "uploads/" + h, "uploads/" + h + ".tail-0000000000000000",
		"blobs/" + h[:2] + "/" + h + "/../../uploads/" + h, "blobs/00/" + h, "/" + loc, loc + "/", "../" + loc,
		"blobs/" + h[:2] + "/" + strings.ToUpper(h), "blobs/sha256/ab/" + h,
	} {
		if b, err := d.Open(ctx, l); !errors.Is(err, blobstore.ErrNotFound) {
			if b != nil {
				b.Close()
			}
			t.Errorf("Open(%q): %v, want ErrNotFound", l, err)
		}
		if err := d.Delete(ctx, l); err == nil {
			t.Errorf("Delete(%q) accepted a location Commit never produces", l)
		}
	}
	// The session in progress survived.
	up2 := s.open(t, d)
	mustWrite(t, up2, []byte("!"))
	mustRead(t, d, mustCommit(t, up2, "in progress!"), []byte("in progress!"))

	// A damaged state naming another session's objects is refused, not followed.
	other := startSession(t, d)
	other.patch(t, d, []byte("other"))
	bad := bytes.ReplaceAll(other.state, []byte(other.handle), []byte(h))
	up3, err := d.OpenUpload(ctx, other.handle)
	if err != nil {
		t.Fatal(err)
	}
	if err := up3.Rewind(5, bad); !errors.Is(err, blobstore.ErrUploadCorrupt) {
		t.Fatalf("Rewind with another session's keys: %v, want ErrUploadCorrupt", err)
	}
	if err := up3.Rewind(5, []byte("{not json")); !errors.Is(err, blobstore.ErrUploadCorrupt) {
		t.Fatalf("Rewind with a damaged state: %v, want ErrUploadCorrupt", err)
	}
	up3.Close()
}

func mustCommit(t *testing.T, up blobstore.Upload, content string) string {
	t.Helper()
	loc, err := up.Commit(t.Context(), digest.FromString(content))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestS3PresignGet(t *testing.T) {
	d, _ := newS3(t)
	ctx := t.Context()
	up, err := d.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, up, []byte("presigned content"))
	loc := mustCommit(t, up, "presigned content")
	u, err := d.PresignGet(ctx, loc, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "presigned content" {
		t.Fatalf("GET presigned URL: %d %q", resp.StatusCode, body)
	}
	// Without the signature the object is not readable.
	plain, _, _ := strings.Cut(u, "?")
	resp, err = http.Get(plain)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("unsigned GET of a blob succeeded")
	}
	if _, err := d.PresignGet(ctx, "uploads/x", time.Minute); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("PresignGet of an invalid location: %v", err)
	}
}

func TestS3Start(t *testing.T) {
	ctx := t.Context()
	o := s3Options(t, "x")
	o.Bucket = "berth-missing-" + randomHex(4)
	o.CreateBucket = false
	if _, err := blobstore.NewS3(ctx, o); !errors.Is(err, blobstore.ErrBucketMissing) || !strings.Contains(err.Error(), o.Bucket) {
		t.Fatalf("missing bucket: %v, want ErrBucketMissing naming it", err)
	}
	o.CreateBucket = true
	d, err := blobstore.NewS3(ctx, o)
	if err != nil {
		t.Fatalf("NewS3 creating the bucket: %v", err)
	}
	if err := d.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := blobstore.NewS3(ctx, o); err != nil { // exists now
		t.Fatal(err)
	}
	bad := s3Options(t, "x")
	bad.SecretKey = "wrong"
	if _, err := blobstore.NewS3(ctx, bad); err == nil || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("wrong secret: %v, want access denied", err)
	}
	small := s3Options(t, "x")
	small.PartSize = blobstore.S3MinPartSize - 1
	if _, err := blobstore.NewS3(ctx, small); err == nil {
		t.Fatal("a part size below S3's minimum was accepted")
	}
	// Nothing listening: a clear, transient error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := s3Options(t, "x")
	down.Endpoint = "http://" + ln.Addr().String()
	ln.Close()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := blobstore.NewS3(sctx, down); !errors.Is(err, blobstore.ErrUnavailable) {
		t.Fatalf("unreachable endpoint: %v, want ErrUnavailable", err)
	}
}
