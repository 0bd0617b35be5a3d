package hf

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/hf/hubtest"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
	"github.com/berth-registry/berth/internal/registry"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const (
	commit1 = "1111111111111111111111111111111111111111"
	commit2 = "2222222222222222222222222222222222222222"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// fixture is a model of a few files (two regular, two LFS, one in a directory) at two
// commits, main at the first, and a small dataset.
type fixture struct {
	hub      *hubtest.Hub
	config   []byte
	weights  []byte
	weights2 []byte
}

func newFixture(t *testing.T, bigSize int) *fixture {
	f := &fixture{config: []byte(`{"architectures":["TinyModel"],"model_type":"tiny"}`), weights: randomBytes(bigSize), weights2: randomBytes(1 << 16)}
	files := []hubtest.File{
		{Path: "config.json", Data: f.config},
		{Path: "README.md", Data: []byte("# tiny model\n")},
		{Path: "model.safetensors", Data: f.weights, LFS: true},
		{Path: "onnx/model.onnx", Data: f.weights2, LFS: true},
	}
	model := &hubtest.Repo{Type: "model", ID: "Org/Tiny-Model", Refs: map[string]string{"main": commit1, "refs/pr/1": commit2},
		Commits: map[string][]hubtest.File{commit1: files, commit2: append([]hubtest.File{{Path: "extra.txt", Data: []byte("pr\n")}}, files...)}}
	data := &hubtest.Repo{Type: "dataset", ID: "org/data", Refs: map[string]string{"main": commit1},
		Commits: map[string][]hubtest.File{commit1: {{Path: "train.csv", Data: []byte("a,b\n1,2\n")}}}}
	gated := &hubtest.Repo{Type: "model", ID: "org/gated", Gated: true, Refs: map[string]string{"main": commit1},
		Commits: map[string][]hubtest.File{commit1: {{Path: "config.json", Data: []byte(`{}`)}, {Path: "w.bin", Data: randomBytes(4096), LFS: true}}}}
	f.hub = hubtest.New(model, data, gated)
	f.hub.Token = "hf_upstream_secret_token"
	t.Cleanup(f.hub.Close)
	return f
}

type mirror struct {
	svc *Service
	srv *httptest.Server
	m   *meta.Store
	reg *registry.Registry
}

func newMirror(t *testing.T, m *meta.Store, hub *hubtest.Hub, mod func(*config.HF)) *mirror {
	t.Helper()
	return newReplica(t, m, filepath.Join(t.TempDir(), "blobs"), hub, mod)
}

// newReplica is a mirror over a given database and blob store, as another replica.
func newReplica(t *testing.T, m *meta.Store, blobDir string, hub *hubtest.Hub, mod func(*config.HF)) *mirror {
	t.Helper()
	dir := t.TempDir()
	blobs, err := blobstore.NewFilesystem(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(m, blobs, registry.Options{}, quiet)
	cfg := config.Default().HF
	cfg.Enabled, cfg.Upstream, cfg.Token, cfg.AllowPrivateRedirects = true, hub.Hub.URL, hub.Token, true
	if mod != nil {
		mod(&cfg)
	}
	svc, err := New(cfg, NewStore(m.DB()), reg, nil, filepath.Join(dir, "spool"), nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(cfg.Prefix+"/", svc)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &mirror{svc: svc, srv: srv, m: m, reg: reg}
}

func (mi *mirror) do(t *testing.T, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, mi.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		path string
		want route
		err  string
	}{
		{"/api/models/org/name", route{kind: routeInfo, repo: Repo{Model, "org/name"}}, ""},
		{"/api/models/gpt2", route{kind: routeInfo, repo: Repo{Model, "gpt2"}}, ""},
		{"/api/models/org/name/revision/main", route{kind: routeInfo, repo: Repo{Model, "org/name"}, revision: "main"}, ""},
		{"/api/models/gpt2/revision/v1.0", route{kind: routeInfo, repo: Repo{Model, "gpt2"}, revision: "v1.0"}, ""},
		{"/api/models/org/name/revision/refs%2Fpr%2F1", route{kind: routeInfo, repo: Repo{Model, "org/name"}, revision: "refs/pr/1"}, ""},
		{"/api/datasets/org/data/tree/main", route{kind: routeTree, repo: Repo{Dataset, "org/data"}, revision: "main"}, ""},
		{"/api/models/org/name/tree/main/onnx", route{kind: routeTree, repo: Repo{Model, "org/name"}, revision: "main", path: "onnx"}, ""},
		{"/api/models/org/name/tree/main/a%2Fb", route{kind: routeTree, repo: Repo{Model, "org/name"}, revision: "main", path: "a/b"}, ""},
		{"/org/name/resolve/main/config.json", route{kind: routeResolve, repo: Repo{Model, "org/name"}, revision: "main", path: "config.json"}, ""},
		{"/gpt2/resolve/main/config.json", route{kind: routeResolve, repo: Repo{Model, "gpt2"}, revision: "main", path: "config.json"}, ""},
		{"/org/name/resolve/refs%2Fpr%2F1/onnx/model.onnx", route{kind: routeResolve, repo: Repo{Model, "org/name"}, revision: "refs/pr/1", path: "onnx/model.onnx"}, ""},
		{"/datasets/org/data/resolve/" + commit1 + "/train.csv", route{kind: routeResolve, repo: Repo{Dataset, "org/data"}, revision: commit1, path: "train.csv"}, ""},
		// Traversal and junk.
		{"/org/name/resolve/main/../../other/x", route{}, "leaves the repository"},
		{"/org/name/resolve/main/a/%2E%2E/b", route{}, "leaves the repository"},
		{"/org/name/resolve/main/a%5Cb", route{}, "not allowed"},
		{"/org/name/resolve/main//etc/passwd", route{}, "must be relative"},
		{"/org/name/resolve/main/a//b", route{}, "empty segment"},
		{"/org/name/resolve/..%2F..%2Fx/f", route{}, "not a valid"},
		{"/org/name/resolve/ma%00in/f", route{}, "not allowed"},
		{"/../name/resolve/main/f", route{}, "repository id"},
		{"/org/na..me/resolve/main/f", route{}, "'..'"},
		{"/api/models/org/-x/revision/main", route{}, "repository id"},
		{"/api/models/a/b/c/d", route{}, "not a Hugging Face"},
		{"/api/spaces/org/x", route{}, "not a Hugging Face"},
		{"/org/name/blob/main/f", route{}, "not a Hugging Face"},
		{"/org/name/resolve/main/%zz", route{}, "path segment"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, err := parseRoute(tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseRoute = %+v, %v; want error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseRoute = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		h               string
		start, n        int64
		ok, satisfiable bool
	}{
		{"bytes=0-0", 0, 1, true, true},
		{"bytes=10-", 10, 90, true, true},
		{"bytes=10-19", 10, 10, true, true},
		{"bytes=90-1000", 90, 10, true, true},
		{"bytes=-5", 95, 5, true, true},
		{"bytes=-500", 0, 100, true, true},
		{"bytes=100-", 0, 0, false, false},
		{"bytes=99999999999999-", 0, 0, false, false},
		{"bytes=-0", 0, 0, false, false},
		{"bytes=0-1,5-6", 0, 0, false, true},
		{"items=0-1", 0, 0, false, true},
		{"bytes=5-1", 0, 0, false, true},
		{"bytes=x-", 0, 0, false, true},
	} {
		s, n, ok, sat := parseRange(tc.h, 100)
		if s != tc.start || n != tc.n || ok != tc.ok || sat != tc.satisfiable {
			t.Errorf("parseRange(%q) = %d %d %v %v; want %d %d %v %v", tc.h, s, n, ok, sat, tc.start, tc.n, tc.ok, tc.satisfiable)
		}
	}
}

// TestProtocol walks the request sequence of huggingface_hub (repo info, tree listing,
// HEAD then GET per file, resumed Range GETs) and of @huggingface/hub (GET with
// Range: bytes=0-0) on SQLite and PostgreSQL.
func TestProtocol(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			fx := newFixture(t, 3<<20)
			mi := newMirror(t, b.Open(t), fx.hub, nil)

			// Repository info at the default branch and at a revision.
			for _, p := range []string{"/hf/api/models/Org/Tiny-Model", "/hf/api/models/Org/Tiny-Model/revision/main", "/hf/api/models/Org/Tiny-Model/revision/refs%2Fpr%2F1"} {
				resp, body := mi.do(t, "GET", p)
				var info struct {
					SHA      string `json:"sha"`
					Siblings []struct {
						RFilename string `json:"rfilename"`
					} `json:"siblings"`
				}
				if resp.StatusCode != 200 || json.Unmarshal(body, &info) != nil || len(info.Siblings) < 4 {
					t.Fatalf("GET %s = %d %s", p, resp.StatusCode, body)
				}
				want := commit1
				if strings.Contains(p, "refs") {
					want = commit2
				}
				if info.SHA != want {
					t.Errorf("%s: sha %s, want %s", p, info.SHA, want)
				}
			}
			// The info is cached: asking again does not reach the Hub.
			before := fx.hub.Count("GET", "/api/models/Org/Tiny-Model/revision/main")
			mi.do(t, "GET", "/hf/api/models/Org/Tiny-Model/revision/main")
			if got := fx.hub.Count("GET", "/api/models/Org/Tiny-Model/revision/main"); got != before {
				t.Errorf("a fresh revision went to the Hub again (%d → %d)", before, got)
			}

			// Tree listing: the Hub's pages (2 items each) joined into one answer.
			resp, body := mi.do(t, "GET", "/hf/api/models/Org/Tiny-Model/tree/main?recursive=true&expand=false")
			var items []struct {
				Type, Path string
				Size       int64
				LFS        *struct{ OID string } `json:"lfs"`
			}
			if resp.StatusCode != 200 || json.Unmarshal(body, &items) != nil {
				t.Fatalf("tree = %d %s", resp.StatusCode, body)
			}
			if len(items) != 5 || resp.Header.Get("Link") != "" || resp.Header.Get("X-Repo-Commit") != commit1 {
				t.Errorf("tree: %d items (want 5: 4 files and onnx/), Link %q, commit %q", len(items), resp.Header.Get("Link"), resp.Header.Get("X-Repo-Commit"))
			}
			if resp, body := mi.do(t, "GET", "/hf/api/models/Org/Tiny-Model/tree/main/onnx"); resp.StatusCode != 200 || !strings.Contains(string(body), "onnx/model.onnx") {
				t.Errorf("tree of a directory = %d %s", resp.StatusCode, body)
			}

			if strings.Contains(string(body), "xetHash") {
				t.Errorf("the tree listing passes on xetHash (clients with hf_xet would go around the mirror)")
			}
			// paths-info, as @huggingface/hub (JSON) and huggingface_hub (a form) post it.
			for _, tc := range []struct{ ct, body string }{
				{"application/json", `{"paths":["config.json","model.safetensors"],"expand":true}`},
				{"application/x-www-form-urlencoded", "paths=config.json&paths=model.safetensors&expand=False"},
			} {
				resp, err := http.Post(mi.srv.URL+"/hf/api/models/Org/Tiny-Model/paths-info/main", tc.ct, strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				var got []map[string]any
				err = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				if resp.StatusCode != 200 || err != nil || len(got) != 2 || got[1]["lfs"] == nil || got[1]["xetHash"] != nil {
					t.Errorf("paths-info (%s) = %d %v %v", tc.ct, resp.StatusCode, got, err)
				}
			}
			if resp, err := http.Post(mi.srv.URL+"/hf/api/models/Org/Tiny-Model/paths-info/main", "application/json", strings.NewReader(`{"paths":["../x"]}`)); err != nil || resp.StatusCode != 400 {
				t.Errorf("paths-info with traversal: %v %v", resp, err)
			}

			// HEAD as huggingface_hub sends it: a regular file, then an LFS file.
			resp, _ = mi.do(t, "HEAD", "/hf/Org/Tiny-Model/resolve/main/config.json", "Accept-Encoding", "identity", "Authorization", "Bearer client-token")
			reg := hubtest.File{Data: fx.config}
			if resp.StatusCode != 200 || resp.Header.Get("X-Repo-Commit") != commit1 || resp.Header.Get("ETag") != `"`+reg.GitOID()+`"` ||
				resp.Header.Get("Content-Length") != fmt.Sprint(len(fx.config)) || resp.Header.Get("X-Linked-Etag") != "" {
				t.Errorf("HEAD config.json: %d %v", resp.StatusCode, resp.Header)
			}
			lfs := hubtest.File{Data: fx.weights}
			resp, _ = mi.do(t, "HEAD", "/hf/Org/Tiny-Model/resolve/main/model.safetensors", "Accept-Encoding", "identity")
			if resp.StatusCode != 200 || resp.Header.Get("X-Linked-Etag") != `"`+lfs.SHA256()+`"` || resp.Header.Get("X-Linked-Size") != fmt.Sprint(len(fx.weights)) ||
				resp.Header.Get("Location") != "" || resp.Header.Get("X-Xet-Hash") != "" || resp.Header.Get("Link") != "" {
				t.Errorf("HEAD model.safetensors (want 200 with linked etag/size, no redirect, no Xet headers): %d %v", resp.StatusCode, resp.Header)
			}

			// GETs: whole files, then the JS client's probe and a resumed download.
			for _, tc := range []struct {
				path string
				want []byte
			}{{"config.json", fx.config}, {"model.safetensors", fx.weights}, {"onnx/model.onnx", fx.weights2}} {
				resp, body := mi.do(t, "GET", "/hf/Org/Tiny-Model/resolve/main/"+tc.path)
				if resp.StatusCode != 200 || !bytes.Equal(body, tc.want) {
					t.Errorf("GET %s = %d, %d bytes (want %d)", tc.path, resp.StatusCode, len(body), len(tc.want))
				}
			}
			if resp, _ := mi.do(t, "GET", "/hf/Org/Tiny-Model/resolve/main/config.json"); resp.Header.Get("X-Berth-Cache") != "hit" {
				t.Errorf("a second GET: X-Berth-Cache %q, want hit", resp.Header.Get("X-Berth-Cache"))
			}
			resp, body = mi.do(t, "GET", "/hf/Org/Tiny-Model/resolve/main/model.safetensors", "Range", "bytes=0-0", "Accept", "application/vnd.xet-fileinfo+json, */*")
			if resp.StatusCode != 206 || len(body) != 1 || body[0] != fx.weights[0] || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 0-0/%d", len(fx.weights)) {
				t.Errorf("probe GET bytes=0-0 = %d %q %v", resp.StatusCode, body, resp.Header)
			}
			resp, body = mi.do(t, "GET", "/hf/Org/Tiny-Model/resolve/main/model.safetensors", "Range", "bytes=1000000-")
			if resp.StatusCode != 206 || !bytes.Equal(body, fx.weights[1000000:]) {
				t.Errorf("resumed GET = %d, %d bytes", resp.StatusCode, len(body))
			}
			resp, _ = mi.do(t, "GET", "/hf/Org/Tiny-Model/resolve/main/model.safetensors", "Range", "bytes=99999999999-")
			if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(fx.weights)) {
				t.Errorf("huge Range = %d %v, want 416", resp.StatusCode, resp.Header)
			}
			// Each file came from the Hub once; the LFS bytes from its CDN, never with a token.
			if n := fx.hub.Count("GET", "/repos/"); n != 2 {
				t.Errorf("CDN GETs = %d, want 2 (one per LFS file)", n)
			}
			for _, r := range fx.hub.Requests() {
				if r.Host == "cdn" && r.Authorization != "" {
					t.Errorf("the CDN received Authorization %q", r.Authorization)
				}
				if r.Authorization != "" && r.Authorization != "Bearer "+fx.hub.Token {
					t.Errorf("the Hub received the client's Authorization %q", r.Authorization)
				}
			}

			// A renamed repository: the Hub's relative redirect is followed for the HEAD
			// (huggingface_hub follows relative redirects only) and the GET.
			fx.hub.Renamed = map[string]string{"model/org/old-name": "Org/Tiny-Model"}
			resp, _ = mi.do(t, "HEAD", "/hf/org/old-name/resolve/"+commit1+"/config.json")
			if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"`+reg.GitOID()+`"` || resp.Header.Get("Location") != "" {
				t.Errorf("HEAD in a renamed repository = %d %v", resp.StatusCode, resp.Header)
			}
			if resp, body := mi.do(t, "GET", "/hf/org/old-name/resolve/"+commit1+"/config.json"); resp.StatusCode != 200 || !bytes.Equal(body, fx.config) {
				t.Errorf("GET in a renamed repository = %d %q", resp.StatusCode, body)
			}

			// A commit, a PR ref and a dataset.
			if resp, body := mi.do(t, "GET", "/hf/Org/Tiny-Model/resolve/"+commit2+"/extra.txt"); resp.StatusCode != 200 || string(body) != "pr\n" {
				t.Errorf("GET at a commit = %d %q", resp.StatusCode, body)
			}
			if resp, body := mi.do(t, "GET", "/hf/Org/Tiny-Model/resolve/refs%2Fpr%2F1/extra.txt"); resp.StatusCode != 200 || string(body) != "pr\n" || resp.Header.Get("X-Repo-Commit") != commit2 {
				t.Errorf("GET at refs/pr/1 = %d %q", resp.StatusCode, body)
			}
			if resp, body := mi.do(t, "GET", "/hf/datasets/org/data/resolve/main/train.csv"); resp.StatusCode != 200 || string(body) != "a,b\n1,2\n" {
				t.Errorf("dataset file = %d %q", resp.StatusCode, body)
			}
			if resp, _ := mi.do(t, "GET", "/hf/api/datasets/org/data/revision/main"); resp.StatusCode != 200 {
				t.Errorf("dataset info = %d", resp.StatusCode)
			}

			// Errors in the Hub's format, which huggingface_hub maps to its exceptions.
			for _, tc := range []struct {
				path, code string
				status     int
			}{
				{"/hf/Org/Tiny-Model/resolve/main/missing.bin", "EntryNotFound", 404},
				{"/hf/Org/Tiny-Model/resolve/nope/config.json", "RevisionNotFound", 404},
				{"/hf/api/models/org/unknown", "RepoNotFound", 401},
			} {
				resp, _ := mi.do(t, "GET", tc.path)
				if resp.StatusCode != tc.status || resp.Header.Get("X-Error-Code") != tc.code {
					t.Errorf("GET %s = %d %q, want %d %s", tc.path, resp.StatusCode, resp.Header.Get("X-Error-Code"), tc.status, tc.code)
				}
				if tc.code == "EntryNotFound" && resp.Header.Get("X-Repo-Commit") != commit1 {
					t.Errorf("EntryNotFound without X-Repo-Commit (the client caches .no_exist by it)")
				}
			}
			for _, p := range []string{"/hf/Org/Tiny-Model/resolve/main/..%2F..%2Fetc%2Fpasswd", "/hf/..%2F..%2Fv2/resolve/main/x", "/hf/api/models/a/b/c/d"} {
				if resp, body := mi.do(t, "GET", p); resp.StatusCode != 400 || !strings.Contains(string(body), "error") {
					t.Errorf("GET %s = %d %s, want 400", p, resp.StatusCode, body)
				}
			}
			if resp, _ := mi.do(t, "GET", "/hf/api/models/Org/Tiny-Model/revision/main?expand="+strings.Repeat("x", 2000)); resp.StatusCode != 400 {
				t.Errorf("a huge query = %d, want 400", resp.StatusCode)
			}
			if resp, _ := mi.do(t, "PUT", "/hf/Org/Tiny-Model/resolve/main/config.json"); resp.StatusCode != 405 {
				t.Errorf("PUT = %d, want 405", resp.StatusCode)
			}

			// Gated: the mirror's token opens it; the token never reaches the client.
			resp, body = mi.do(t, "GET", "/hf/org/gated/resolve/main/w.bin")
			if resp.StatusCode != 200 || len(body) != 4096 {
				t.Errorf("gated file with the mirror's token = %d", resp.StatusCode)
			}
			for k, v := range resp.Header {
				if strings.Contains(strings.Join(v, ","), fx.hub.Token) {
					t.Errorf("header %s carries the upstream token", k)
				}
			}

			// The bytes are stored once, by sha256, in the blob store under hf/org/tiny-model.
			f, err := mi.svc.store.File(t.Context(), Repo{Model, "Org/Tiny-Model"}, commit1, "model.safetensors")
			if err != nil || f.Digest != "sha256:"+lfs.SHA256() || f.LocalRepo != "hf/org/tiny-model" {
				t.Errorf("stored file = %+v %v", f, err)
			}
		})
	}
}

// TestConcurrentDownloadsOneFetch: ten clients ask for a large file at once; the Hub's
// CDN serves it once and every client gets the whole file.
func TestConcurrentDownloadsOneFetch(t *testing.T) {
	fx := newFixture(t, 8<<20)
	mi := newMirror(t, metatest.Backends(t)[0].Open(t), fx.hub, nil)
	fx.hub.SetRate(32 << 20) // a quarter-second download, so the clients overlap
	const clients = 10
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(mi.srv.URL + "/hf/Org/Tiny-Model/resolve/main/model.safetensors")
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil && (resp.StatusCode != 200 || !bytes.Equal(body, fx.weights)) {
				err = fmt.Errorf("status %d, %d bytes", resp.StatusCode, len(body))
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}
	if n := fx.hub.Count("GET", "/repos/"); n != 1 {
		t.Errorf("CDN GETs = %d, want exactly 1", n)
	}
	if b := fx.hub.CDNBytes(); b != int64(len(fx.weights)) {
		t.Errorf("CDN sent %d bytes, want %d (1.0x)", b, len(fx.weights))
	}
}

// TestReplicasOneFetch: two replicas over one database and blob store, five clients
// on each asking for the same file at once: the Hub's CDN serves it once (the other
// replica waits on the fetch lease and serves the stored file).
func TestReplicasOneFetch(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			fx := newFixture(t, 4<<20)
			m := b.Open(t)
			blobs := filepath.Join(t.TempDir(), "blobs")
			replicas := []*mirror{newReplica(t, m, blobs, fx.hub, nil), newReplica(t, m, blobs, fx.hub, nil)}
			fx.hub.SetRate(16 << 20)
			var wg sync.WaitGroup
			for i := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := http.Get(replicas[i%2].srv.URL + "/hf/Org/Tiny-Model/resolve/main/model.safetensors")
					if err != nil {
						t.Errorf("client %d: %v", i, err)
						return
					}
					defer resp.Body.Close()
					body, err := io.ReadAll(resp.Body)
					if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, fx.weights) {
						t.Errorf("client %d: %d, %d bytes, %v", i, resp.StatusCode, len(body), err)
					}
				}()
			}
			wg.Wait()
			if n := fx.hub.Count("GET", "/repos/"); n != 1 {
				t.Errorf("CDN GETs = %d across two replicas, want 1", n)
			}
		})
	}
}

// TestCorruptUpstream: the Hub sends wrong bytes (an LFS file from its CDN, a regular
// file from the Hub); no client receives a complete file, nothing is cached, and the
// next download after the Hub recovers is correct.
func TestCorruptUpstream(t *testing.T) {
	fx := newFixture(t, 2<<20)
	mi := newMirror(t, metatest.Backends(t)[0].Open(t), fx.hub, nil)
	fx.hub.SetFault(hubtest.Corrupt)
	for _, tc := range []struct {
		path string
		want []byte
	}{{"model.safetensors", fx.weights}, {"config.json", fx.config}} {
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Get(mi.srv.URL + "/hf/Org/Tiny-Model/resolve/main/" + tc.path)
				if err != nil {
					return // refused before the headers: fine
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if resp.StatusCode == 200 && err == nil {
					t.Errorf("%s: a client received a complete body of %d bytes from corrupt upstream bytes", tc.path, len(body))
				}
				if err == nil && len(body) == len(tc.want) {
					t.Errorf("%s: a client received every byte", tc.path)
				}
			}()
		}
		wg.Wait()
		if _, err := mi.svc.store.File(t.Context(), Repo{Model, "Org/Tiny-Model"}, commit1, tc.path); err == nil {
			t.Errorf("%s: corrupt bytes were cached", tc.path)
		}
	}
	fx.hub.SetFault(hubtest.NoFault)
	resp, body := mi.do(t, "GET", "/hf/Org/Tiny-Model/resolve/main/model.safetensors")
	if resp.StatusCode != 200 || !bytes.Equal(body, fx.weights) {
		t.Errorf("after the Hub recovered: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// TestStaleServing: past the revision TTL, with the Hub down or rate-limiting, cached
// revisions, listings and files are still served; what was never cached is 503/429.
func TestStaleServing(t *testing.T) {
	fx := newFixture(t, 1<<20)
	mi := newMirror(t, metatest.Backends(t)[0].Open(t), fx.hub, func(c *config.HF) { c.RevisionTTL = config.Duration(time.Millisecond) })
	for _, p := range []string{"/hf/api/models/Org/Tiny-Model/revision/main", "/hf/api/models/Org/Tiny-Model/tree/main?recursive=true",
		"/hf/Org/Tiny-Model/resolve/main/config.json", "/hf/Org/Tiny-Model/resolve/main/model.safetensors"} {
		if resp, _ := mi.do(t, "GET", p); resp.StatusCode != 200 {
			t.Fatalf("warm %s = %d", p, resp.StatusCode)
		}
	}
	time.Sleep(5 * time.Millisecond)
	for _, fault := range []hubtest.Fault{hubtest.Down, hubtest.RateLimit} {
		fx.hub.SetFault(fault)
		resp, _ := mi.do(t, "GET", "/hf/api/models/Org/Tiny-Model/revision/main")
		if resp.StatusCode != 200 || resp.Header.Get("X-Berth-Cache") != "stale" {
			t.Errorf("%s: info = %d %q, want 200 stale", fault, resp.StatusCode, resp.Header.Get("X-Berth-Cache"))
		}
		for _, p := range []string{"config.json", "model.safetensors"} {
			resp, _ := mi.do(t, "HEAD", "/hf/Org/Tiny-Model/resolve/main/"+p)
			if resp.StatusCode != 200 || resp.Header.Get("X-Repo-Commit") != commit1 || resp.Header.Get("ETag") == "" {
				t.Errorf("%s: HEAD %s = %d %v", fault, p, resp.StatusCode, resp.Header)
			}
			if resp, _ := mi.do(t, "GET", "/hf/Org/Tiny-Model/resolve/main/"+p); resp.StatusCode != 200 {
				t.Errorf("%s: GET %s = %d", fault, p, resp.StatusCode)
			}
		}
		if resp, _ := mi.do(t, "GET", "/hf/api/models/Org/Tiny-Model/tree/main?recursive=true"); resp.StatusCode != 200 {
			t.Errorf("%s: tree = %d", fault, resp.StatusCode)
		}
		want := 503
		if fault == hubtest.RateLimit {
			want = 429
		}
		if resp, _ := mi.do(t, "GET", "/hf/datasets/org/data/resolve/main/train.csv"); resp.StatusCode != want {
			t.Errorf("%s: never cached = %d, want %d", fault, resp.StatusCode, want)
		}
	}
	// The branch moves once the Hub is back: the new commit is served.
	fx.hub.SetFault(hubtest.NoFault)
	fx.hub.SetRef("model", "Org/Tiny-Model", "main", commit2)
	if resp, body := mi.do(t, "GET", "/hf/Org/Tiny-Model/resolve/main/extra.txt"); resp.StatusCode != 200 || string(body) != "pr\n" || resp.Header.Get("X-Repo-Commit") != commit2 {
		t.Errorf("after main moved: %d %q %q", resp.StatusCode, body, resp.Header.Get("X-Repo-Commit"))
	}
}

// TestTokenNeverLeaks: without the mirror's token a gated repository is refused as the
// Hub refuses it; with it, the token goes to the Hub only — not to the CDN, not in any
// answer, not in the log.
func TestTokenNeverLeaks(t *testing.T) {
	fx := newFixture(t, 1<<10)
	var logBuf bytes.Buffer
	m := metatest.Backends(t)[0].Open(t)
	noToken := newMirror(t, m, fx.hub, func(c *config.HF) { c.Token = "" })
	if resp, _ := noToken.do(t, "GET", "/hf/org/gated/resolve/main/config.json"); resp.StatusCode != 401 || resp.Header.Get("X-Error-Code") != "GatedRepo" {
		t.Errorf("gated without a token = %d %q, want 401 GatedRepo", resp.StatusCode, resp.Header.Get("X-Error-Code"))
	}
	mi := newMirror(t, metatest.Backends(t)[0].Open(t), fx.hub, nil)
	mi.svc.log = slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fx.hub.ResetLog()
	for _, p := range []string{"/hf/api/models/org/gated/revision/main", "/hf/org/gated/resolve/main/config.json", "/hf/org/gated/resolve/main/w.bin", "/hf/org/gated/resolve/main/nope"} {
		for _, method := range []string{"HEAD", "GET"} {
			resp, body := mi.do(t, method, p, "Authorization", "Bearer the-clients-own-token")
			if strings.Contains(string(body), fx.hub.Token) || strings.Contains(fmt.Sprint(resp.Header), fx.hub.Token) || strings.Contains(fmt.Sprint(resp.Header), "secret-signature") {
				t.Errorf("%s %s: the answer carries the upstream token or the CDN's signed URL", method, p)
			}
		}
	}
	fx.hub.SetFault(hubtest.Down)
	mi.do(t, "GET", "/hf/org/gated/resolve/"+commit2+"/x")
	if strings.Contains(logBuf.String(), fx.hub.Token) {
		t.Errorf("the log carries the upstream token")
	}
	for _, r := range fx.hub.Requests() {
		switch {
		case r.Host == "cdn" && r.Authorization != "":
			t.Errorf("CDN received Authorization")
		case r.Host == "hub" && r.Authorization != "Bearer "+fx.hub.Token:
			t.Errorf("Hub received Authorization %q, want the mirror's token only", r.Authorization)
		}
	}
}

func waitABit() { time.Sleep(20 * time.Millisecond) }
