package cric

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func testClient(t *testing.T, o Options) *Client {
	t.Helper()
	o.Stdout, o.Stderr = io.Discard, io.Discard
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMatchHost(t *testing.T) {
	for _, tc := range []struct {
		list []string
		host string
		want bool
	}{
		{[]string{"*"}, "any.example:5000", true},
		{[]string{"reg.example"}, "reg.example:5000", true},
		{[]string{"reg.example:5000"}, "reg.example:5000", true},
		{[]string{"reg.example:5000"}, "reg.example:5001", false},
		{[]string{"other"}, "reg.example", false},
		{nil, "reg.example", false},
	} {
		if got := matchHost(tc.list, tc.host); got != tc.want {
			t.Errorf("matchHost(%v, %q) = %v", tc.list, tc.host, got)
		}
	}
}

func TestParseImage(t *testing.T) {
	c := testClient(t, Options{})
	d := "sha256:" + strings.Repeat("a", 64)
	ref, tag, err := c.parseImage("reg.example:5000/team/app:v1@" + d)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Identifier() != d || tag != "v1" || ref.Context().RepositoryStr() != "team/app" {
		t.Fatalf("tag@digest: %v %q", ref, tag)
	}
	ref, tag, _ = c.parseImage("nginx")
	if ref.Name() != "index.docker.io/library/nginx:latest" || tag != "latest" {
		t.Fatalf("docker hub short name: %v %q", ref.Name(), tag)
	}
	if _, _, err := c.parseImage("UPPER/case:x"); ExitCode(err) != 2 {
		t.Fatalf("invalid reference: %v (exit %d)", err, ExitCode(err))
	}
	for s, want := range map[string]bool{"host:5000/app": false, "host:5000/app:v1": true, "app@" + d: true, "app": false} {
		if hasExplicitVersion(s) != want {
			t.Errorf("hasExplicitVersion(%q) != %v", s, want)
		}
	}
	if n := canonicalName(ref, "latest"); n != "docker.io/library/nginx:latest" {
		t.Errorf("canonicalName: %s", n)
	}
}

func TestSplitLocal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bundle.tar")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d := "sha256:" + strings.Repeat("b", 64)
	for spec, want := range map[string][2]string{
		p:                   {p, ""},
		p + ":v1":           {p, "v1"},
		p + ":reg:5000/a:v": {p, "reg:5000/a:v"},
		p + "@" + d:         {p, d},
		p + "x":             {"", ""},
	} {
		a, b := splitLocal(spec)
		if a != want[0] || b != want[1] {
			t.Errorf("splitLocal(%q) = %q, %q; want %q", spec, a, b, want)
		}
	}
}

func TestClassify(t *testing.T) {
	req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: "reg.example", Path: "/v2/a/manifests/v1"}}
	for _, tc := range []struct {
		err      error
		kind     Kind
		code     int
		contains string
	}{
		{&transport.Error{StatusCode: 401, Request: req, Errors: []transport.Diagnostic{{Code: transport.UnauthorizedErrorCode, Message: "authentication required"}}},
			KindUnauthorized, 3, "authentication required"},
		{&transport.Error{StatusCode: 403, Request: req}, KindDenied, 3, "403"},
		{&transport.Error{StatusCode: 404, Request: req, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode, Message: "manifest unknown"}}},
			KindNotFound, 4, "MANIFEST_UNKNOWN"},
		{&transport.Error{StatusCode: 429, Request: req}, KindOther, 1, "rate limited"},
		{fmt.Errorf("wrapped: %w", &url.Error{Op: "Get", URL: "https://reg.example/v2/", Err: syscall.ECONNREFUSED}), KindNetwork, 5, "reg.example"},
		{errors.New("http: server gave HTTP response to HTTPS client"), KindNetwork, 5, "--plain-http"},
		{invalidErrorf("x"), KindInvalid, 6, "invalid content"},
		{Usagef("bad"), KindUsage, 2, "bad"},
	} {
		ce := Classify(tc.err)
		if ce.Kind != tc.kind || ExitCode(tc.err) != tc.code || !strings.Contains(ce.Error(), tc.contains) {
			t.Errorf("Classify(%v) = kind %v exit %d %q; want kind %v exit %d containing %q",
				tc.err, ce.Kind, ExitCode(tc.err), ce.Error(), tc.kind, tc.code, tc.contains)
		}
	}
}

// TestRetries: 503 and 429 are retried with backoff; with --retries 0 they are not.
func TestRetries(t *testing.T) {
	var failures atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/app/tags/list" && failures.Add(1) <= 2 {
			code := http.StatusServiceUnavailable
			if failures.Load() == 2 {
				code = http.StatusTooManyRequests
			}
			w.WriteHeader(code)
			return
		}
		switch r.URL.Path {
		case "/v2/":
			w.WriteHeader(http.StatusOK)
		case "/v2/app/tags/list":
			fmt.Fprint(w, `{"name":"app","tags":["v1"]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	c := testClient(t, Options{Retries: 3})
	tl, err := c.Tags(context.Background(), host+"/app")
	if err != nil || len(tl.Tags) != 1 {
		t.Fatalf("with retries: %v %+v", err, tl)
	}
	if n := failures.Load(); n != 3 {
		t.Fatalf("%d tag list requests, want 3 (two failures, one success)", n)
	}
	failures.Store(0)
	c = testClient(t, Options{Retries: 0})
	if _, err := c.Tags(context.Background(), host+"/app"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("without retries: %v", err)
	}
}

// TestTarLayoutRoundTrip writes a layout tar with the tar sink and reads it back in place;
// a corrupted blob is caught by its digest.
func TestTarLayoutRoundTrip(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar")
	s, err := newTarSink(out)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("layer"), smallBlob/4) // spooled through a temp file
	small := []byte(`{"architecture":"amd64","os":"linux"}`)
	blobs := []v1.Descriptor{
		{MediaType: types.OCIConfigJSON, Digest: digestOf(small), Size: int64(len(small))},
		{MediaType: types.OCILayer, Digest: digestOf(big), Size: int64(len(big))},
	}
	data := map[v1.Hash][]byte{blobs[0].Digest: small, blobs[1].Digest: big}
	for _, d := range blobs {
		l := &localLayer{store: memStore(data), desc: d}
		if err := s.putBlob(context.Background(), d, l); err != nil {
			t.Fatal(err)
		}
	}
	raw := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%d},"layers":[{"mediaType":"%s","digest":"%s","size":%d}]}`,
		types.OCIManifestSchema1, blobs[0].MediaType, blobs[0].Digest, blobs[0].Size, blobs[1].MediaType, blobs[1].Digest, blobs[1].Size))
	n := &node{desc: v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: digestOf(raw), Size: int64(len(raw))}, raw: raw}
	if err := s.putManifest(context.Background(), n, &rootSpec{annotations: map[string]string{AnnotationRefName: "v1"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}

	l, err := openLocal(out + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, err := l.selectEntry()
	if err != nil || e.Digest != n.desc.Digest {
		t.Fatalf("entry: %v %v", e, err)
	}
	c := testClient(t, Options{})
	mraw, err := l.layout.manifest(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	g, err := c.graph(context.Background(), l.layout, e, mraw, nil)
	if err != nil || len(g.blobs()) != 2 {
		t.Fatalf("graph: %v %v", g, err)
	}
	for _, d := range g.blobs() {
		layer, _ := l.layout.layer(context.Background(), d)
		rc, err := layer.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(got, data[d.Digest]) {
			t.Fatalf("blob %s: %v", d.Digest, err)
		}
	}
	// Corrupt one byte of the big blob in place: reading it fails with invalid content.
	f, _ := os.OpenFile(out, os.O_RDWR, 0)
	ts := l.layout.store.(*tarStore)
	ent, _ := ts.lookup(blobName(blobs[1].Digest))
	_, _ = f.WriteAt([]byte("X"), ent.off+10)
	f.Close()
	layer, _ := l.layout.layer(context.Background(), blobs[1])
	rc, _ := layer.Compressed()
	if _, err := io.ReadAll(rc); ExitCode(err) != 6 {
		t.Fatalf("corrupted blob read: %v", err)
	}
}

// memStore is a blobStore in memory.
type memStore map[v1.Hash][]byte

func (m memStore) open(h v1.Hash) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(m[h])), nil
}
func (m memStore) file(string) ([]byte, error) { return nil, os.ErrNotExist }
func (m memStore) String() string              { return "memory" }
