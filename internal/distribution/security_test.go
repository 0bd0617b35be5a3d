package distribution

// Regression tests of issue 20 at the API: the catalog's next-page cursor never names a
// hidden repository, audit entries name only valid references and cover blob GETs and
// manifest HEADs, and the token endpoint grants nothing on invalid names.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/passwd"
	"github.com/berth-registry/berth/internal/registry"
)

const secPass = "secure-password-1"

// secWorld is the API with auth on, over a fresh store. Users: root (system
// administrator), dave (guest of team), olga (no roles); robots: robot$scraper
// (*:metrics), robot$reader (*:pull).
type secWorld struct {
	h   http.Handler
	svc *auth.Service
	m   *meta.Store
}

func newSecWorld(t *testing.T) *secWorld {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := meta.Open(ctx, meta.Options{Dialect: meta.SQLite, DSN: t.TempDir() + "/berth.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	b, err := blobstore.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tk, err := auth.NewTokens(ctx, m, auth.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc := auth.New(m, nil, tk, auth.Options{ProjectCreation: "admins", MaxFailures: 1000}, log)
	t.Cleanup(svc.Close)
	h, _ := passwd.HashCost(secPass, 10_000) // cheap: tests log in often
	for _, u := range []meta.User{{Name: "root", Admin: true}, {Name: "dave"}, {Name: "olga"}} {
		u.PasswordHash = h
		if _, err := m.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []meta.Robot{
		{Name: "robot$scraper", Permissions: `[{"project":"*","actions":["metrics"]}]`},
		{Name: "robot$reader", Permissions: `[{"project":"*","actions":["pull"]}]`},
	} {
		r.SecretHash = string(h)
		if _, err := m.CreateRobot(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	reg := registry.New(m, b, registry.Options{}, log)
	api := New(reg, Options{Guard: NewGuard(svc, "")}, log)
	return &secWorld{h: Observe(api, NewMetrics(prometheus.NewRegistry()), log, false), svc: svc, m: m}
}

func basic(user string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+secPass))
}

func (w *secWorld) do(t *testing.T, method, target, authz string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.RemoteAddr = "192.0.2.1:4242"
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, req)
	return rec
}

func secDigest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// project makes a project (public or not) with members, as the admin API would.
func (w *secWorld) project(t *testing.T, name string, public bool, members ...string) {
	t.Helper()
	if _, err := w.m.CreateProject(context.Background(), meta.Project{Name: name, Public: public}, "", ""); err != nil {
		t.Fatal(err)
	}
	for _, u := range members {
		if err := w.m.SetMember(context.Background(), meta.Member{Project: name, Principal: "user:" + u, Role: "guest"}); err != nil {
			t.Fatal(err)
		}
	}
}

// push stores a blob and an image manifest tagged v1 in repo, as the administrator;
// it returns the blob's digest.
func (w *secWorld) push(t *testing.T, repo string) string {
	t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","repo":"` + repo + `"}`)
	if r := w.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+secDigest(cfg), basic("root"), cfg); r.Code != http.StatusCreated {
		t.Fatalf("push blob to %s: %d %s", repo, r.Code, r.Body)
	}
	man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, secDigest(cfg), len(cfg))
	if r := w.do(t, http.MethodPut, "/v2/"+repo+"/manifests/v1", basic("root"), []byte(man), "Content-Type", "application/vnd.oci.image.manifest.v1+json"); r.Code != http.StatusCreated {
		t.Fatalf("push manifest to %s: %d %s", repo, r.Code, r.Body)
	}
	return secDigest(cfg)
}

var linkLast = regexp.MustCompile(`[?&]last=([^&>]*)`)

// TestCatalogCursorHidesPrivateNames walks the catalog one repository a page, the way
// the finding did: neither a page nor a Link cursor may name a repository the caller
// cannot pull, and the walk still reaches every one it can.
func TestCatalogCursorHidesPrivateNames(t *testing.T) {
	w := newSecWorld(t)
	w.project(t, "apub", true)
	w.project(t, "bsecret", false)
	w.project(t, "cteam", false, "dave")
	w.project(t, "dsecret", false)
	w.project(t, "e", false, "dave")
	w.project(t, "f", false)
	hidden := map[string]bool{}
	for _, repo := range []string{"bsecret/one", "bsecret/two", "bsecret/three", "dsecret/x", "f", "f/y"} {
		w.push(t, repo)
		hidden[repo] = true
	}
	want := []string{"apub/app", "cteam/app", "cteam/tool", "e", "e/z"}
	for _, repo := range want {
		w.push(t, repo)
	}
	for _, n := range []int{1, 2, 3, 100} {
		var seen []string
		next := fmt.Sprintf("/v2/_catalog?n=%d", n)
		for pages := 0; next != ""; pages++ {
			if pages > 20 {
				t.Fatalf("n=%d: the walk does not end", n)
			}
			r := w.do(t, http.MethodGet, next, basic("dave"), nil)
			if r.Code != http.StatusOK {
				t.Fatalf("n=%d %s: %d %s", n, next, r.Code, r.Body)
			}
			var body struct{ Repositories []string }
			if err := json.Unmarshal(r.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			seen = append(seen, body.Repositories...)
			next = ""
			if link := r.Header().Get("Link"); link != "" {
				m := linkLast.FindStringSubmatch(link)
				if m == nil {
					t.Fatalf("n=%d: Link %q has no last", n, link)
				}
				last, _ := url.QueryUnescape(m[1])
				if hidden[last] {
					t.Errorf("n=%d: Link cursor names the hidden repository %q", n, last)
				}
				next = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			}
		}
		for _, name := range seen {
			if hidden[name] {
				t.Errorf("n=%d: page lists hidden %q", n, name)
			}
		}
		if strings.Join(seen, " ") != strings.Join(want, " ") {
			t.Errorf("n=%d: walk saw %v, want %v", n, seen, want)
		}
	}
	// An administrator still sees everything.
	r := w.do(t, http.MethodGet, "/v2/_catalog", basic("root"), nil)
	if strings.Count(r.Body.String(), `"`) != 2*(len(want)+len(hidden))+2 {
		t.Errorf("admin catalog: %s", r.Body)
	}
}

// TestAuditReferences: a flood of requests with invalid (huge) references becomes a
// couple of short rows; blob GETs and manifest HEADs are in the trail.
func TestAuditReferences(t *testing.T) {
	w := newSecWorld(t)
	w.project(t, "team", false, "dave")
	blob := w.push(t, "team/app")
	huge := strings.Repeat("A", 60<<10)
	for range 300 {
		if r := w.do(t, http.MethodGet, "/v2/team/app/manifests/"+huge, "", nil); r.Code != http.StatusUnauthorized {
			t.Fatalf("anonymous GET with a 60 KB reference: %d", r.Code)
		}
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v2/team/app/blobs/" + blob},
		{http.MethodHead, "/v2/team/app/manifests/v1"},
	} {
		if r := w.do(t, c.method, c.path, basic("dave"), nil); r.Code != http.StatusOK {
			t.Fatalf("%s %s: %d", c.method, c.path, r.Code)
		}
	}
	w.svc.Close()
	ctx := context.Background()
	rows, err := w.m.Audit(ctx, meta.AuditFilter{Actor: "anonymous", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) > 2 {
		t.Errorf("300 identical anonymous requests left %d audit rows, want at most 2", len(rows))
	}
	for _, e := range rows {
		if len(e.Resource) > 64 || strings.Contains(e.Resource, "AAAA") || e.Resource != "team/app:"+invalidReference {
			t.Errorf("invalid reference audited as %d bytes %.60q", len(e.Resource), e.Resource)
		}
	}
	for _, want := range []meta.AuditFilter{
		{Actor: "dave", Action: "pull", Resource: "team/app:" + blob, Result: "ok"},
		{Actor: "dave", Action: "pull", Resource: "team/app:v1", Result: "ok"},
	} {
		got, err := w.m.Audit(ctx, want)
		if err != nil || len(got) != 1 {
			t.Errorf("audit %+v: %v %+v, want one entry", want, err, got)
		}
	}
}

// TestTokenInvalidNames: scopes on names the registry would refuse, or with actions it
// does not know, grant nothing — not even to a system administrator.
func TestTokenInvalidNames(t *testing.T) {
	w := newSecWorld(t)
	th := TokenHandler(w.svc)
	for _, c := range []struct {
		scope string
		want  string // the access granted, as "name:actions"; "" for none
	}{
		{"repository:*:pull", ""},
		{"repository:*:*", ""},
		{"repository:Team/App:pull", ""},
		{"repository::pull", ""},
		{"repository:team//app:pull", ""},
		{"repository:team/app/:pull", ""},
		{"repository:../team:pull", ""},
		{"repository:host:5000/app:pull", ""},
		{"repository:" + strings.Repeat("a", 300) + ":pull", ""},
		{"repository:team/app:metrics", ""},
		{"repository:team/app:pull,bogus,*", "team/app:pull"},
		{"repository:team/app:pull,push", "team/app:pull,push"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/token?service=berth&scope="+url.QueryEscape(c.scope), nil)
		req.Header.Set("Authorization", basic("root"))
		rec := httptest.NewRecorder()
		th.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.scope, rec.Code, rec.Body)
		}
		var resp struct{ Token string }
		_ = json.Unmarshal(rec.Body.Bytes(), &resp)
		claims, err := w.svc.Tokens.Verify(resp.Token)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range claims.Access {
			got = append(got, a.Name+":"+strings.Join(a.Actions, ","))
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("scope %.40q granted %v, want %q", c.scope, got, c.want)
		}
	}
}
