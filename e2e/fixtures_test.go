package e2e

// The shared test image: a real multi-arch pause image (static C binary for linux/amd64, a
// Go equivalent for linux/arm64), built once per test binary with real crane against a
// throwaway berth (ecosystem.md §2 and pitfall 18), then held in memory. Tests seed it into
// their own berth over raw HTTP (seedPause) or write it as an OCI image layout
// (writeLayout) for clients to push from, and check copies with assertPause/checkLayout.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	clMTIndex    = "application/vnd.oci.image.index.v1+json"
	clMTManifest = "application/vnd.oci.image.manifest.v1+json"
	// clManifestAccept is what a client that understands every manifest type sends.
	clManifestAccept = clMTIndex + ", " + clMTManifest + ", " +
		"application/vnd.docker.distribution.manifest.list.v2+json, " +
		"application/vnd.docker.distribution.manifest.v2+json"
)

var pausePlatforms = []string{"linux/amd64", "linux/arm64"}

// pauseImage is the multi-arch fixture: every byte of it, addressable by digest.
type pauseImage struct {
	Index       []byte // the OCI index without per-descriptor artifactType (pitfall 4)
	IndexDigest string
	// CraneIndexDigest is the index exactly as `crane index append` wrote it (with
	// artifactType on each descriptor); kept to show the re-PUT changed the digest.
	CraneIndexDigest string
	Platforms        map[string]string // "linux/arm64" → image manifest digest
	Layers           map[string]string // "linux/arm64" → layer digest
	Manifests        map[string][]byte // image manifest digest → bytes
	Blobs            map[string][]byte // config and layer digest → bytes
}

var (
	pauseOnce sync.Once
	pauseFix  *pauseImage
	pauseErr  error
)

// pauseFixture returns the fixture, building it on first use.
func pauseFixture(t testing.TB) *pauseImage {
	t.Helper()
	pauseOnce.Do(func() {
		start := time.Now()
		pauseFix, pauseErr = buildPause(t)
		t.Logf("pause fixture built in %s", time.Since(start).Round(time.Millisecond))
	})
	if pauseFix == nil {
		if pauseErr == nil {
			pauseErr = errors.New("an earlier test failed while building it")
		}
		t.Fatalf("pause fixture: %v", pauseErr)
	}
	return pauseFix
}

const pauseC = "#include <unistd.h>\nint main(){pause();return 0;}\n"

const pauseGo = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
`

func buildPause(t testing.TB) (_ *pauseImage, err error) {
	requireTool(t, "crane")
	requireTool(t, "tar")
	requireTool(t, "gcc")
	work, err := os.MkdirTemp("", "berth-e2e-pause")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	for _, d := range []string{"amd64", "arm64", "gopause"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"pause.c":         pauseC,
		"gopause/main.go": pauseGo,
		"gopause/go.mod":  "module pause\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	if out, err := runErrIn(work, nil, "gcc", "-static", "-Os", "-s", "-o", "amd64/pause", "pause.c"); err != nil {
		return nil, fmt.Errorf("gcc: %v\n%s", err, out)
	}
	// The Go build uses the ordinary build cache: the arm64 standard library is compiled
	// once per machine, later runs take about a second.
	goEnv := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "GOFLAGS=-mod=mod", "GOWORK=off"}
	if out, err := runErrIn(filepath.Join(work, "gopause"), goEnv, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w", "-o", "../arm64/pause", "."); err != nil {
		return nil, fmt.Errorf("go build (arm64 pause): %v\n%s", err, out)
	}
	b := startBerth(t, BerthOptions{})
	defer func() {
		if err != nil {
			b.dumpLog()
		}
		b.Stop()
	}()
	env := toolEnv(t)
	repo := b.Addr + "/build/pause"
	for _, arch := range []string{"amd64", "arm64"} {
		bin := filepath.Join(work, arch, "pause")
		if err := os.Chmod(bin, 0o755); err != nil {
			return nil, err
		}
		layer := filepath.Join(work, "layer-"+arch+".tar")
		if out, err := runErr(nil, "tar", "--mtime=@0", "--sort=name", "--owner=0", "--group=0", "--numeric-owner",
			"-C", filepath.Join(work, arch), "-cf", layer, "pause"); err != nil {
			return nil, fmt.Errorf("tar: %v\n%s", err, out)
		}
		steps := [][]string{
			{"append", "--oci-empty-base", "-f", layer, "-t", repo + ":" + arch + "-tmp"},
			{"mutate", repo + ":" + arch + "-tmp", "--set-platform", "linux/" + arch, "--entrypoint", "/pause", "-t", repo + ":" + arch},
		}
		for _, args := range steps {
			if out, err := runErr(env, "crane", args...); err != nil {
				return nil, fmt.Errorf("crane %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	}
	if out, err := runErr(env, "crane", "index", "append", "-m", repo+":amd64", "-m", repo+":arm64", "-t", repo+":crane-index"); err != nil {
		return nil, fmt.Errorf("crane index append: %v\n%s", err, out)
	}

	p := &pauseImage{
		Platforms: map[string]string{}, Layers: map[string]string{},
		Manifests: map[string][]byte{}, Blobs: map[string][]byte{},
	}
	craneIndex, err := clFetch(b.URL("/v2/build/pause/manifests/crane-index"), clManifestAccept)
	if err != nil {
		return nil, err
	}
	p.CraneIndexDigest = clDigest(craneIndex)
	p.Index, err = stripArtifactType(craneIndex)
	if err != nil {
		return nil, err
	}
	p.IndexDigest = clDigest(p.Index)
	// Re-PUT the index without artifactType (pitfall 4) and read everything back.
	req, _ := http.NewRequest(http.MethodPut, b.URL("/v2/build/pause/manifests/3.9"), bytes.NewReader(p.Index))
	req.Header.Set("Content-Type", clMTIndex)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != p.IndexDigest {
		return nil, fmt.Errorf("re-PUT of the index: %s, Docker-Content-Digest %q, want 201 and %s",
			resp.Status, resp.Header.Get("Docker-Content-Digest"), p.IndexDigest)
	}
	var idx clIndex
	if err := json.Unmarshal(p.Index, &idx); err != nil {
		return nil, err
	}
	for _, d := range idx.Manifests {
		plat := d.Platform.OS + "/" + d.Platform.Architecture
		raw, err := clFetch(b.URL("/v2/build/pause/manifests/"+d.Digest), clManifestAccept)
		if err != nil {
			return nil, err
		}
		if clDigest(raw) != d.Digest {
			return nil, fmt.Errorf("manifest %s read back with digest %s", d.Digest, clDigest(raw))
		}
		p.Platforms[plat] = d.Digest
		p.Manifests[d.Digest] = raw
		var m clManifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		if len(m.Layers) != 1 {
			return nil, fmt.Errorf("manifest %s has %d layers, want 1", d.Digest, len(m.Layers))
		}
		p.Layers[plat] = m.Layers[0].Digest
		for _, bd := range append([]clDescriptor{m.Config}, m.Layers...) {
			data, err := clFetch(b.URL("/v2/build/pause/blobs/"+bd.Digest), "")
			if err != nil {
				return nil, err
			}
			if clDigest(data) != bd.Digest || int64(len(data)) != bd.Size {
				return nil, fmt.Errorf("blob %s read back with digest %s size %d", bd.Digest, clDigest(data), len(data))
			}
			p.Blobs[bd.Digest] = data
		}
	}
	for _, plat := range pausePlatforms {
		if p.Platforms[plat] == "" {
			return nil, fmt.Errorf("index has no %s manifest: %s", plat, p.Index)
		}
		if err := p.checkBinary(plat, p.Blobs[p.Layers[plat]]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

type clPlatform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type clDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *clPlatform       `json:"platform,omitempty"`
}

type clIndex struct {
	SchemaVersion int            `json:"schemaVersion"`
	MediaType     string         `json:"mediaType"`
	Manifests     []clDescriptor `json:"manifests"`
}

type clManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        clDescriptor      `json:"config"`
	Layers        []clDescriptor    `json:"layers"`
	Subject       *clDescriptor     `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// stripArtifactType re-serialises crane's index without the per-descriptor artifactType,
// keeping crane's field order. It refuses fields it does not know, so a crane upgrade
// that adds some cannot silently lose them.
func stripArtifactType(raw []byte) ([]byte, error) {
	var generic struct {
		Manifests []map[string]json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, err
	}
	known := map[string]bool{"mediaType": true, "size": true, "digest": true, "platform": true, "artifactType": true}
	sawArtifactType := false
	for _, d := range generic.Manifests {
		for k := range d {
			if !known[k] {
				return nil, fmt.Errorf("crane index descriptor has unexpected field %q: %s", k, raw)
			}
		}
		_, ok := d["artifactType"]
		sawArtifactType = sawArtifactType || ok
	}
	if !sawArtifactType {
		return nil, fmt.Errorf("crane index has no per-descriptor artifactType any more (pitfall 4 fixed?): %s", raw)
	}
	type desc struct {
		MediaType string      `json:"mediaType"`
		Size      int64       `json:"size"`
		Digest    string      `json:"digest"`
		Platform  *clPlatform `json:"platform,omitempty"`
	}
	var idx struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []desc `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, err
	}
	return json.Marshal(idx)
}

// checkBinary proves a layer holds a real pause executable for the platform.
func (p *pauseImage) checkBinary(plat string, layer []byte) error {
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return fmt.Errorf("%s layer: %v", plat, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return fmt.Errorf("%s layer has no pause file: %v", plat, err)
		}
		if strings.TrimPrefix(h.Name, "./") != "pause" {
			continue
		}
		if h.Mode&0o111 == 0 || h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 {
			return fmt.Errorf("%s pause: mode %o uid %d gid %d mtime %d, want executable, 0, 0, 0", plat, h.Mode, h.Uid, h.Gid, h.ModTime.Unix())
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s pause is not ELF: %v", plat, err)
		}
		want := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}[plat]
		if f.Machine != want {
			return fmt.Errorf("%s pause is built for %v", plat, f.Machine)
		}
		return nil
	}
}

// allBlobs is every content-addressed object of the image: index, manifests, blobs.
func (p *pauseImage) allBlobs() map[string][]byte {
	all := map[string][]byte{p.IndexDigest: p.Index}
	for d, b := range p.Manifests {
		all[d] = b
	}
	for d, b := range p.Blobs {
		all[d] = b
	}
	return all
}

// seedPause pushes the fixture into repo:tag over raw HTTP (no client involved), so a
// test of one client does not depend on another.
func seedPause(t testing.TB, b *Berth, repo, tag string) {
	t.Helper()
	p := pauseFixture(t)
	for d, data := range p.Blobs {
		resp, _ := clHTTP(t, http.MethodPost, b.URL("/v2/"+repo+"/blobs/uploads/?digest="+d),
			map[string]string{"Content-Type": "application/octet-stream"}, data)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("seed blob %s into %s: %s", d, repo, resp.Status)
		}
	}
	for d, data := range p.Manifests {
		clPutManifest(t, b, repo, d, clMTManifest, data)
	}
	clPutManifest(t, b, repo, tag, clMTIndex, p.Index)
}

func clPutManifest(t testing.TB, b *Berth, repo, ref, mediaType string, data []byte) {
	t.Helper()
	resp, body := clHTTP(t, http.MethodPut, b.URL("/v2/"+repo+"/manifests/"+ref), map[string]string{"Content-Type": mediaType}, data)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest %s:%s: %s %s", repo, ref, resp.Status, body)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != clDigest(data) {
		t.Fatalf("PUT manifest %s:%s: Docker-Content-Digest %q, want %s", repo, ref, got, clDigest(data))
	}
}

// assertPause checks over raw HTTP that repo:ref on b is the fixture, byte for byte: the
// index, both image manifests and every config and layer blob, readable in that repo.
func assertPause(t testing.TB, b *Berth, repo, ref string) {
	t.Helper()
	p := pauseFixture(t)
	resp, body := clHTTP(t, http.MethodGet, b.URL("/v2/"+repo+"/manifests/"+ref), map[string]string{"Accept": clManifestAccept}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s:%s on %s: %s %s", repo, ref, b.Addr, resp.Status, body)
	}
	if got := clDigest(body); got != p.IndexDigest || !bytes.Equal(body, p.Index) {
		t.Fatalf("%s:%s on %s has digest %s, want the fixture index %s\n got: %s\nwant: %s", repo, ref, b.Addr, got, p.IndexDigest, body, p.Index)
	}
	if ct, dcd := resp.Header.Get("Content-Type"), resp.Header.Get("Docker-Content-Digest"); ct != clMTIndex || dcd != p.IndexDigest {
		t.Fatalf("%s:%s: Content-Type %q Docker-Content-Digest %q, want %q %q", repo, ref, ct, dcd, clMTIndex, p.IndexDigest)
	}
	for d, want := range p.Manifests {
		resp, body := clHTTP(t, http.MethodGet, b.URL("/v2/"+repo+"/manifests/"+d), map[string]string{"Accept": clManifestAccept}, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			t.Fatalf("GET %s@%s on %s: %s, body equal: %v", repo, d, b.Addr, resp.Status, bytes.Equal(body, want))
		}
	}
	for d, want := range p.Blobs {
		resp, body := clHTTP(t, http.MethodGet, b.URL("/v2/"+repo+"/blobs/"+d), nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			t.Fatalf("GET blob %s in %s on %s: %s, body equal: %v", d, repo, b.Addr, resp.Status, bytes.Equal(body, want))
		}
	}
}

// writeLayout writes the fixture as an OCI image layout with the index tagged tag.
func (p *pauseImage) writeLayout(t testing.TB, dir, tag string) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	for d, data := range p.allBlobs() {
		if err := os.WriteFile(filepath.Join(blobs, strings.TrimPrefix(d, "sha256:")), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	index, _ := json.Marshal(clIndex{SchemaVersion: 2, MediaType: clMTIndex, Manifests: []clDescriptor{{
		MediaType: clMTIndex, Digest: p.IndexDigest, Size: int64(len(p.Index)),
		Annotations: map[string]string{"org.opencontainers.image.ref.name": tag},
	}}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkLayout checks that an OCI layout written by a client holds the whole fixture: its
// index.json names the fixture index, and every object is present with the right bytes.
func checkPauseLayout(t testing.TB, dir string) {
	t.Helper()
	p := pauseFixture(t)
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx clIndex
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatalf("%s/index.json: %v", dir, err)
	}
	found := false
	for _, d := range idx.Manifests {
		found = found || d.Digest == p.IndexDigest
	}
	if !found {
		t.Fatalf("%s/index.json does not reference the fixture index %s:\n%s", dir, p.IndexDigest, raw)
	}
	var missing []string
	for d, want := range p.allBlobs() {
		got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
		if err != nil || !bytes.Equal(got, want) {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("layout %s lacks or altered: %v", dir, missing)
	}
}

func clDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// fetch GETs a URL and returns the body, failing on any status but 200.
func clFetch(url, accept string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s %s", url, resp.Status, body)
	}
	return body, nil
}

// doHTTP sends one request and returns the response (body already read and closed).
func clHTTP(t testing.TB, method, url string, headers map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, data
}
