package e2e

// Regression tests of issue 20's high-severity findings: a local push must never shadow
// a name the mirror serves (the registry-mirrors takeover), and repositories stored
// without a project (pushed while auth was off) are owned by the system administrators
// once auth is on, never by whoever pushes to the name first.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/meta"
)

// TestSecurityMirrorTakeover: with a default upstream (Docker's registry-mirrors) and the
// default projectCreation: everyone, an ordinary user pushing library/nginx (or nginx)
// must neither succeed nor create the project; anonymous pulls keep getting the
// upstream's image. An administrator may still make a local override, explicitly.
func TestSecurityMirrorTakeover(t *testing.T) {
	p := pauseFixture(t)
	up := startBerth(t, BerthOptions{})
	seedPause(t, up, "library/nginx", "latest")
	fu := newMiUpstream(t, up)
	w := startAuthBerth(t, fmt.Sprintf(`mirror:
  defaultUpstream: docker.io
  upstreams:
    - name: docker.io
      url: %s
      tagTTL: 1s
`, fu.URL()))
	w.setup(t)
	evil := newAuImage(t, "attacker's nginx")

	for _, mode := range []string{"basic", "token"} {
		olga := &auClient{w: w, user: "olga", pass: auPass, mode: mode}
		for _, repo := range []string{"library/nginx", "nginx", "olgas/app"} {
			rs := pushAs(t, olga, repo, "latest", evil.manifest, evil.config, evil.layer)
			for _, r := range rs {
				if r.status != http.StatusForbidden || auErrCode(r.body) != "DENIED" || !strings.Contains(string(r.body), "default upstream") {
					t.Errorf("%s push of %s by olga: %d %s, want 403 DENIED naming the default upstream", mode, repo, r.status, r.body)
				}
			}
		}
	}
	// A system administrator does not create one by pushing either.
	if rs := pushAs(t, w.adminClient(), "library/nginx", "latest", evil.manifest, evil.config, evil.layer); rs[len(rs)-1].status != http.StatusForbidden {
		t.Errorf("admin push of library/nginx without the project: %d %s, want 403", rs[len(rs)-1].status, rs[len(rs)-1].body)
	}
	for _, name := range []string{"library", "nginx", "olgas"} {
		if _, err := w.m.ProjectByName(context.Background(), name); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("project %s after refused pushes: %v, want none", name, err)
		}
	}
	// Every anonymous registry-mirrors client still gets the upstream's nginx.
	for _, path := range []string{"/v2/library/nginx/manifests/latest", "/v2/nginx/manifests/latest"} {
		resp, body := clHTTP(t, http.MethodGet, w.b.URL(path), map[string]string{"Accept": clManifestAccept}, nil)
		if resp.StatusCode != http.StatusOK || clDigest(body) != p.IndexDigest {
			t.Errorf("anonymous GET %s: %s digest %s, want the upstream's %s", path, resp.Status, clDigest(body), p.IndexDigest)
		}
	}
	for _, r := range fu.requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			t.Errorf("a write reached the upstream: %s %s", r.Method, r.Path)
		}
	}

	// An existing local project is local: its members push, its names never go upstream.
	upBefore := len(fu.requests())
	dave := &auClient{w: w, user: "dave", pass: auPass, mode: "token"}
	img := newAuImage(t, "team app")
	for _, r := range pushAs(t, dave, "team/app", "v1", img.manifest, img.config, img.layer) {
		if r.status != http.StatusCreated {
			t.Fatalf("developer push to team/app: %d %s", r.status, r.body)
		}
	}
	if r := dave.do(t, http.MethodGet, "/v2/team/missing/manifests/v1", map[string]string{"Accept": auMTManifest}, nil); r.status != http.StatusNotFound {
		t.Errorf("GET of a missing name in local project team: %d %s, want 404", r.status, r.body)
	}
	if r := auDo(t, http.MethodGet, w.b.URL("/v2/team/app/manifests/v1"), map[string]string{"Accept": auMTManifest}, nil); r.status != http.StatusUnauthorized {
		t.Errorf("anonymous GET of private team/app: %d, want 401", r.status)
	}
	if got := fu.requests()[upBefore:]; len(got) != 0 {
		t.Errorf("requests for the local project team reached the upstream: %v", got)
	}

	// The explicit local override: an administrator creates project library (audited);
	// from then on library/* is local and private, and olga still cannot push there.
	if r := w.admin(t, http.MethodPost, "/api/v1/projects", map[string]string{"Content-Type": "application/json"}, []byte(`{"name":"library"}`)); r.status != http.StatusCreated {
		t.Fatalf("admin creates project library: %d %s", r.status, r.body)
	}
	w.seed(t, "library/nginx", "latest", img.manifest, img.config, img.layer)
	if rs := pushAs(t, &auClient{w: w, user: "olga", pass: auPass, mode: "basic"}, "library/nginx", "latest", evil.manifest, evil.config, evil.layer); rs[len(rs)-1].status != http.StatusForbidden {
		t.Errorf("olga push into the admin's library: %d, want 403", rs[len(rs)-1].status)
	}
	if r := auDo(t, http.MethodGet, w.b.URL("/v2/library/nginx/manifests/latest"), map[string]string{"Accept": auMTManifest}, nil); r.status != http.StatusUnauthorized {
		t.Errorf("anonymous GET of the private local override: %d, want 401", r.status)
	}
	auWaitAudit(t, w, []auAuditWant{{what: "the explicit override", filter: meta.AuditFilter{Action: "project.create", Resource: "library", Actor: "admin"}}})
}

// TestSecurityOwnerlessUpgrade: repositories pushed with auth off are adopted, at the
// first start with auth on, into private projects with no members: a user created later
// can neither read, overwrite nor delete them, and cannot "create" their project by
// pushing; the administrator keeps full access.
func TestSecurityOwnerlessUpgrade(t *testing.T) {
	data := t.TempDir()
	open := startBerth(t, BerthOptions{Data: data})
	img := newAuImage(t, "pushed before auth")
	for _, step := range pushAs(t, &auClient{w: &auWorld{b: open}, mode: "basic"}, "team/app", "v1", img.manifest, img.config, img.layer) {
		if step.status != http.StatusCreated {
			t.Fatalf("push with auth off: %d %s", step.status, step.body)
		}
	}
	open.Stop()

	b := startBerth(t, BerthOptions{Data: data, Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + auAdminPass + "\n"})
	m, err := meta.Open(context.Background(), meta.Options{Dialect: meta.SQLite, DSN: filepath.Join(data, "berth.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	w := &auWorld{b: b, m: m}
	pr, err := m.ProjectByName(context.Background(), "team")
	if err != nil || pr.Public {
		t.Fatalf("project team after enabling auth: %+v %v, want adopted, private", pr, err)
	}
	uh, err := auth.HashPassword(auPass)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateUser(context.Background(), meta.User{Name: "eve", PasswordHash: uh}); err != nil {
		t.Fatal(err)
	}
	other := newAuImage(t, "eve's replacement")
	for _, mode := range []string{"basic", "token"} {
		eve := &auClient{w: w, user: "eve", pass: auPass, mode: mode}
		r := eve.do(t, http.MethodGet, "/v2/team/app/manifests/v1", map[string]string{"Accept": auMTManifest}, nil)
		if r.status != http.StatusForbidden && r.status != http.StatusUnauthorized {
			t.Errorf("%s: eve pulls the adopted team/app: %d, want refused", mode, r.status)
		}
		for _, repo := range []string{"team/app", "team/new"} {
			rs := pushAs(t, eve, repo, "v1", other.manifest, other.config, other.layer)
			if last := rs[len(rs)-1]; last.status < 400 {
				t.Errorf("%s: eve pushes %s in the adopted project: %d", mode, repo, last.status)
			}
		}
		if r := eve.do(t, http.MethodDelete, "/v2/team/app/manifests/"+auDigest(img.manifest), nil, nil); r.status < 400 {
			t.Errorf("%s: eve deletes the adopted manifest: %d", mode, r.status)
		}
	}
	if members, _ := m.Members(context.Background(), "team"); len(members) != 0 {
		t.Errorf("the adopted project gained members: %+v", members)
	}
	if !w.exists(t, "team/app", auDigest(img.manifest)) {
		t.Error("the adopted manifest is gone")
	}
	// Written at start, before the first request.
	if got, err := m.Audit(context.Background(), meta.AuditFilter{Action: "project.adopt", Resource: "team"}); err != nil || len(got) != 1 ||
		got[0].Actor != "berth" || got[0].ActorType != "system" {
		t.Errorf("audit entries of the adoption: %+v %v", got, err)
	}
}

// TestSecurityProjectDeleteRefused: a project with repositories is not deleted (the check
// is in the delete's transaction), so its repositories never become ownerless.
func TestSecurityProjectDeleteRefused(t *testing.T) {
	w := startAuthBerth(t, "")
	w.setup(t)
	img := newAuImage(t, "kept")
	w.seed(t, "team/app", "v1", img.manifest, img.config, img.layer)
	if r := w.admin(t, http.MethodDelete, "/api/v1/projects/team", nil, nil); r.status != http.StatusConflict {
		t.Errorf("delete of project team with a repository: %d %s, want 409", r.status, r.body)
	}
	if _, err := w.m.ProjectByName(context.Background(), "team"); err != nil {
		t.Errorf("project team after the refused delete: %v", err)
	}
}
