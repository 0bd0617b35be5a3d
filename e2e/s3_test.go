package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// S3 is a versitygw (a real S3 server over a directory) started for one test.
type S3 struct {
	Endpoint string
	Data     string
}

const s3Access, s3Secret = "berthaccess", "berthsecret123"

// startS3 starts versitygw on a free loopback port; it stops when the test ends.
func startS3(t *testing.T) *S3 {
	t.Helper()
	bin := requireTool(t, "versitygw")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o700)
	addr := freeAddr(t)
	logf, _ := os.Create(filepath.Join(dir, "versitygw.log"))
	cmd := exec.Command(bin, "--port", addr, "--access", s3Access, "--secret", s3Secret,
		"--region", "us-east-1", "--quiet", "posix", data)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; i < 200; i++ {
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close()
			return &S3{Endpoint: "http://" + addr, Data: data}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("versitygw did not start on %s", addr)
	return nil
}

// Config is the berth storage configuration for a bucket on this server.
func (s *S3) Config(bucket string) string {
	return fmt.Sprintf(`storage:
  driver: s3
  s3:
    endpoint: %s
    region: us-east-1
    bucket: %s
    prefix: berth
    forcePathStyle: true
    accessKey: %s
    secretKey: %s
    createBucket: true
`, s.Endpoint, bucket, s3Access, s3Secret)
}

// objects lists the object files versitygw holds for bucket under prefix.
func (s *S3) objects(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(s.Data, bucket)
	filepath.Walk(filepath.Join(root, prefix), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// TestS3Sha512Chunked: a chunked sha512 upload larger than one S3 part is verified after
// the multipart upload completes (S3 cannot re-read parts before); a wrong digest
// leaves nothing behind.
func TestS3Sha512Chunked(t *testing.T) {
	s3 := startS3(t)
	b := startBerth(t, BerthOptions{Config: s3.Config("sha512")})
	content := make([]byte, 10<<20+333)
	rand.Read(content)
	sum := sha512.Sum512(content)
	good := "sha512:" + hex.EncodeToString(sum[:])
	bad := "sha512:" + strings.Repeat("ab", 64)

	upload := func(dgst string) int {
		resp, err := http.Post(b.URL("/v2/s3/app/blobs/uploads/"), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		for off := 0; off < len(content); off += 3 << 20 {
			end := min(off+3<<20, len(content))
			req, _ := http.NewRequest(http.MethodPatch, b.URL(loc), bytes.NewReader(content[off:end]))
			req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, end-1))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("PATCH %d-%d: %s", off, end-1, resp.Status)
			}
			loc = resp.Header.Get("Location")
		}
		req, _ := http.NewRequest(http.MethodPut, b.URL(loc+"?digest="+dgst), nil)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := upload(bad); s != http.StatusBadRequest {
		t.Fatalf("wrong sha512: %d, want 400", s)
	}
	if objs := s3.objects(t, "sha512", "berth/blobs"); len(objs) != 0 {
		t.Fatalf("a rejected upload left objects: %v", objs)
	}
	if s := upload(good); s != http.StatusCreated {
		t.Fatalf("sha512 chunked upload: %d, want 201", s)
	}
	resp, err := http.Get(b.URL("/v2/s3/app/blobs/" + good))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, content) {
		t.Fatalf("blob read back: %d bytes, equal=%v", len(got), bytes.Equal(got, content))
	}
	if objs := s3.objects(t, "sha512", "berth/blobs"); len(objs) != 1 {
		t.Fatalf("objects after one blob: %v", objs)
	}
}

// TestS3Redirect: with storage.s3.redirect, a blob GET answers 307 to a presigned URL of
// the object, which serves the exact bytes; HEAD still answers from the database.
func TestS3Redirect(t *testing.T) {
	s3 := startS3(t)
	b := startBerth(t, BerthOptions{Config: s3.Config("redirect") + "    redirect: true\n"})
	content := []byte("bytes served by object storage directly")
	dgst := pushBlob(t, b, "s3/redirect", content)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(b.URL("/v2/s3/redirect/blobs/" + dgst))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, s3.Endpoint+"/redirect/") || !strings.Contains(loc, "X-Amz-Signature=") {
		t.Fatalf("blob GET: %d Location %q, want 307 to a presigned %s URL", resp.StatusCode, loc, s3.Endpoint)
	}
	resp, err = http.Get(b.URL("/v2/s3/redirect/blobs/" + dgst))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, content) {
		t.Fatalf("following the redirect: %d %q", resp.StatusCode, got)
	}
	if s := httpStatus(t, http.MethodHead, b.URL("/v2/s3/redirect/blobs/"+dgst)); s != 200 {
		t.Fatalf("HEAD: %d", s)
	}
	// Visibility is checked before presigning: another repository gets 404, not a URL.
	if s := httpStatus(t, http.MethodGet, b.URL("/v2/s3/other/blobs/"+dgst)); s != 404 {
		t.Fatalf("blob GET in a repository without the blob: %d, want 404", s)
	}
}
