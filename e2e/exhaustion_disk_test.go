package e2e

// A full disk (issue 18): berth's data directory on a 30 MiB tmpfs. Pushes are refused
// with 507 DENIED once free space falls below the watermark, a 40 MB monolithic PUT
// fails cleanly and leaves no bytes behind, reads keep working, a disk filled by someone
// else still lets deletes and GC commit (the reserve), and pushes resume without a
// restart once GC has freed space. Helpers are prefixed "ex".

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// exImage is an acknowledged image: config, one layer, manifest.
type exImage struct {
	tag, manifest string
	payload       []byte
	blobs         map[string][]byte
}

// exDo sends one request and returns status and body; a 500 or an UNKNOWN code fails
// the test at once, since a full disk must never surface as one.
func exDo(t *testing.T, method, url string, hdr map[string]string, body io.Reader) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if r, ok := body.(*bytes.Reader); ok {
		req.ContentLength = int64(r.Len())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusInternalServerError || bytes.Contains(out, []byte(`"UNKNOWN"`)) {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, out)
	}
	return resp.StatusCode, out, resp.Header
}

// exRefused checks the documented refusal: 507, DENIED, a message naming the condition.
func exRefused(t *testing.T, what string, status int, body []byte) {
	t.Helper()
	var e struct {
		Errors []struct{ Code, Message string }
	}
	_ = json.Unmarshal(body, &e)
	if status != http.StatusInsufficientStorage || len(e.Errors) != 1 || e.Errors[0].Code != "DENIED" ||
		!strings.Contains(e.Errors[0].Message, "storage") {
		t.Fatalf("%s: want 507 DENIED naming storage, got %d %s", what, status, body)
	}
}

// exPushBlob uploads data in one POST ?digest=; it returns the status and body.
func exPushBlob(t *testing.T, b *Berth, repo string, data []byte) (int, []byte) {
	status, body, _ := exDo(t, "POST", b.URL("/v2/"+repo+"/blobs/uploads/?digest="+biSHA(data)),
		map[string]string{"Content-Type": "application/octet-stream"}, bytes.NewReader(data))
	return status, body
}

// exPushImage pushes a config, a layer of size bytes and a manifest tagged tag. It
// returns the image when every step was acknowledged, or the refusal.
func exPushImage(t *testing.T, b *Berth, repo, tag string, seed uint64, size int64) (*exImage, int, []byte) {
	t.Helper()
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","seed":%d}`, seed))
	layer := crData(seed, size)
	img := &exImage{tag: tag, blobs: map[string][]byte{biSHA(config): config, biSHA(layer): layer}}
	for _, data := range [][]byte{config, layer} {
		if status, body := exPushBlob(t, b, repo, data); status != http.StatusCreated {
			return nil, status, body
		}
	}
	img.payload = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		biSHA(config), len(config), biSHA(layer), len(layer)))
	img.manifest = biSHA(img.payload)
	status, body, _ := exDo(t, "PUT", b.URL("/v2/"+repo+"/manifests/"+tag),
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, bytes.NewReader(img.payload))
	if status != http.StatusCreated {
		return nil, status, body
	}
	return img, status, body
}

// exPull checks that the image pulls back byte for byte.
func exPull(t *testing.T, b *Berth, repo string, img *exImage) {
	t.Helper()
	status, body, _ := exDo(t, "GET", b.URL("/v2/"+repo+"/manifests/"+img.tag),
		map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, nil)
	if status != http.StatusOK || !bytes.Equal(body, img.payload) {
		t.Fatalf("pull %s:%s: %d %s", repo, img.tag, status, body)
	}
	for d, data := range img.blobs {
		status, body, _ := exDo(t, "GET", b.URL("/v2/"+repo+"/blobs/"+d), nil, nil)
		if status != http.StatusOK || !bytes.Equal(body, data) {
			t.Fatalf("pull blob %s of %s: %d, %d bytes", d, img.tag, status, len(body))
		}
	}
}

// exUploadFiles lists what upload sessions hold on disk.
func exUploadFiles(t *testing.T, root string) []string {
	entries, err := os.ReadDir(filepath.Join(root, "uploads"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// exNoPartialBlobs checks that every committed blob file holds exactly its digest.
func exNoPartialBlobs(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(filepath.Join(root, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("read %s: %v", p, err)
			return nil
		}
		sum := sha256.Sum256(data)
		if want, _, _ := strings.Cut(d.Name(), "-"); hex.EncodeToString(sum[:]) != want {
			t.Errorf("blob file %s holds other bytes (%d)", p, len(data))
		}
		return nil
	})
}

func exReady(t *testing.T, b *Berth) string {
	t.Helper()
	status, body, _ := exDo(t, "GET", b.URL("/readyz"), nil, nil)
	if status != http.StatusOK {
		t.Fatalf("/readyz under storage pressure: %d %s (reads still work: it must stay 200)", status, body)
	}
	return string(body)
}

func exMetric(t *testing.T, b *Berth, name string) string {
	t.Helper()
	_, body, _ := exDo(t, "GET", b.URL("/metrics"), nil, nil)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func exWaitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// exFill writes a file until the disk is full, as another process would.
func exFill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			return
		}
	}
}

func TestExhaustionDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a 30 MiB tmpfs (needs root): %v: %s", err, out)
	}
	// Registered before startBerth, so it runs after berth has stopped.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	b := startBerth(t, BerthOptions{Data: dir, Config: "gc:\n  reviewAfter: 0s\n" +
		"storage:\n  pressure:\n    minFreeBytes: 6MiB\n    minFreePercent: 0\n    reserve: 2MiB\n    checkInterval: 200ms\n"})
	root := filepath.Join(dir, "storage")
	const repo = "p/app"
	var acked []*exImage
	for i := range 2 {
		img, status, body := exPushImage(t, b, repo, fmt.Sprintf("v%d", i), uint64(100+i), 3<<20)
		if img == nil {
			t.Fatalf("push v%d with room: %d %s", i, status, body)
		}
		acked = append(acked, img)
	}
	if !strings.HasPrefix(exReady(t, b), "ok\n") || strings.Contains(exReady(t, b), "pressure") {
		t.Fatalf("/readyz with room: %q", exReady(t, b))
	}

	// A 40 MB monolithic PUT (POST, then the whole blob) admitted with ~20 MiB free is
	// cut at the watermark: the documented error, and its bytes are gone at once.
	status, body, hdr := exDo(t, "POST", b.URL("/v2/"+repo+"/blobs/uploads/"), nil, nil)
	if status != http.StatusAccepted {
		t.Fatalf("start upload: %d %s", status, body)
	}
	big := crData(7, 40<<20)
	status, body, _ = exDo(t, "PUT", b.URL(hdr.Get("Location")+"?digest="+biSHA(big)),
		map[string]string{"Content-Type": "application/octet-stream"}, bytes.NewReader(big))
	exRefused(t, "40 MB monolithic PUT", status, body)
	if files := exUploadFiles(t, root); len(files) != 0 {
		t.Fatalf("the failed PUT left upload files: %v", files)
	}
	big = nil

	// Push until refused.
	var refusal []byte
	for i := 2; refusal == nil; i++ {
		if i > 12 {
			t.Fatal("never refused on a 30 MiB disk")
		}
		img, status, body := exPushImage(t, b, repo, fmt.Sprintf("v%d", i), uint64(100+i), 3<<20)
		if img == nil {
			exRefused(t, fmt.Sprintf("push v%d", i), status, body)
			refusal = body
			break
		}
		acked = append(acked, img)
	}
	t.Logf("refused after %d images: %s", len(acked), bytes.TrimSpace(refusal))
	if len(acked) < 3 {
		t.Fatalf("only %d images fit before the refusal", len(acked))
	}
	// Further writes of every kind are refused the same way; reads keep working.
	status, body, _ = exDo(t, "POST", b.URL("/v2/"+repo+"/blobs/uploads/"), nil, nil)
	exRefused(t, "start an upload under pressure", status, body)
	for _, img := range acked {
		exPull(t, b, repo, img)
	}
	if r := exReady(t, b); !strings.Contains(r, "storage pressure: writes refused") {
		t.Fatalf("/readyz under pressure: %q", r)
	}
	if v := exMetric(t, b, "berth_storage_pressure"); v != "1" {
		t.Fatalf("berth_storage_pressure = %q under pressure", v)
	}

	// Someone else fills the disk to the last byte: the reserve is released, so the
	// database can still commit the deletes and GC that free space.
	filler := filepath.Join(dir, "filler")
	exFill(t, filler)
	exWaitFor(t, "the reserve to be released", 10*time.Second, func() bool { return exMetric(t, b, "berth_storage_reserve_held") == "0" })
	deleted := acked[:3]
	for _, img := range deleted {
		status, body, _ := exDo(t, "DELETE", b.URL("/v2/"+repo+"/manifests/"+img.manifest), nil, nil)
		if status != http.StatusAccepted {
			t.Fatalf("delete %s on a full disk: %d %s", img.tag, status, body)
		}
	}
	acked = acked[3:]
	exWaitFor(t, "GC to free space and the pressure to end", 30*time.Second, func() bool {
		return !strings.Contains(exReady(t, b), "pressure")
	})

	// Pushes resume without a restart; nothing acknowledged is lost.
	img, status, body := exPushImage(t, b, repo, "after", 999, 1<<20)
	if img == nil {
		t.Fatalf("push once space returned: %d %s", status, body)
	}
	acked = append(acked, img)
	for _, img := range acked {
		exPull(t, b, repo, img)
	}
	exNoPartialBlobs(t, root)
	if files := exUploadFiles(t, root); len(files) != 0 {
		t.Fatalf("upload files left: %v", files)
	}
	if v := exMetric(t, b, "berth_storage_refusals_total"); v == "" || v == "0" {
		t.Fatalf("berth_storage_refusals_total = %q", v)
	}
	_ = os.Remove(filler)
	exWaitFor(t, "the reserve to be re-created", 10*time.Second, func() bool { return exMetric(t, b, "berth_storage_reserve_held") == "1" })
}
