package adminapi_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/internal/adminapi"
	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/distribution"
	"github.com/berth-registry/berth/internal/inventory"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/passwd"
	"github.com/berth-registry/berth/internal/registry"
)

// world is a Berth with auth on: /token, /v2/ and /api/v1 over a real SQLite store,
// with fixture accounts:
//
//	root  system administrator
//	alice admin of project team
//	bob   developer in team
//	carol no role anywhere
//	robot$sys      system robot, pull on every project
//	robot$team+bot project robot, pull on team
//
// and projects team (private), open (public), other (private).
type world struct {
	t    *testing.T
	srv  *httptest.Server
	meta *meta.Store
	svc  *auth.Service
}

type cred struct{ user, pass string }

var (
	root  = cred{"root", "root-password"}
	alice = cred{"alice", "alice-password"}
	bob   = cred{"bob", "bob-password"}
	carol = cred{"carol", "carol-password"}
	sys   = cred{"robot$sys", "sys-robot-secret"}
	tbot  = cred{"robot$team+bot", "team-robot-secret"}
	anon  = cred{}
)

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	m, err := meta.Open(ctx, meta.Options{Dialect: meta.SQLite, DSN: filepath.Join(dir, "berth.db")})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tokens, err := auth.NewTokens(ctx, m, auth.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Many deliberate failures come from one address: no lockout here.
	svc := auth.New(m, nil, tokens, auth.Options{MaxFailures: 1 << 20, BasicCacheTTL: time.Minute}, log)
	blobs, err := blobstore.NewFilesystem(filepath.Join(dir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(m, blobs, registry.Options{}, log)
	v2 := distribution.New(reg, distribution.Options{Guard: distribution.NewGuard(svc, "")}, log)
	mux := http.NewServeMux()
	mux.Handle("/token", distribution.TokenHandler(svc))
	mux.Handle("/api/v1/", adminapi.New(svc, m, log).WithRepositories(reg, inventory.NewStore(m.DB())))
	mux.Handle("/v2/", v2)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		svc.Close()
		m.Close()
	})
	w := &world{t: t, srv: srv, meta: m, svc: svc}

	hash := func(pw string) string {
		h, err := passwd.HashCost(pw, 10_000) // cheap: tests log in often
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, u := range []cred{root, alice, bob, carol} {
		if _, err := m.CreateUser(ctx, meta.User{Name: u.user, PasswordHash: hash(u.pass), Admin: u == root}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []meta.Project{{Name: "team"}, {Name: "open", Public: true}, {Name: "other"}} {
		if _, err := m.CreateProject(ctx, p, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, mb := range []meta.Member{{Project: "team", Principal: "user:alice", Role: "admin"}, {Project: "team", Principal: "user:bob", Role: "developer"}} {
		if err := m.SetMember(ctx, mb); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []meta.Robot{
		{Name: sys.user, SecretHash: hash(sys.pass), Permissions: `[{"project":"*","actions":["pull"]}]`},
		{Name: tbot.user, Project: "team", SecretHash: hash(tbot.pass), Permissions: `[{"project":"team","actions":["pull"]}]`},
	} {
		if _, err := m.CreateRobot(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) code() string {
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(r.body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

func (r resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// call sends a request; body is JSON-encoded unless it is a string (sent as is).
func (w *world) call(c cred, method, path string, body any, hdr ...string) resp {
	w.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			w.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(raw), "application/json"
	}
	req, err := http.NewRequest(method, w.srv.URL+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: data}
}

func (w *world) expect(c cred, method, path string, body any, want int, hdr ...string) resp {
	w.t.Helper()
	r := w.call(c, method, path, body, hdr...)
	if r.status != want {
		w.t.Fatalf("%s %s as %q: %d, want %d: %s", method, path, c.user, r.status, want, r.body)
	}
	return r
}

// TestAccess drives every route as allowed and as refused callers, in order (later
// rows see the effects of earlier ones).
func TestAccess(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	type row struct {
		who    cred
		method string
		path   string
		body   any
		want   int
		code   string // expected error code, when failing
	}
	rows := []row{
		// Authentication.
		{anon, "GET", "/api/v1/users/me", nil, 401, "UNAUTHORIZED"},
		{cred{"root", "wrong"}, "GET", "/api/v1/users/me", nil, 401, "UNAUTHORIZED"},
		{cred{"nobody", "whatever1"}, "GET", "/api/v1/projects", nil, 401, "UNAUTHORIZED"},
		{cred{"robot$sys", "wrong"}, "GET", "/api/v1/users/me", nil, 401, "UNAUTHORIZED"},
		{anon, "GET", "/api/v1/openapi.json", nil, 200, ""},
		{carol, "GET", "/api/v1/users/me", nil, 200, ""},
		{sys, "GET", "/api/v1/users/me", nil, 200, ""},

		// CLI secrets are for OIDC users (auth's tests cover them); others are refused.
		{carol, "GET", "/api/v1/users/me/cli-secret", nil, 200, ""},
		{carol, "POST", "/api/v1/users/me/cli-secret", nil, 400, "INVALID_REQUEST"},
		{sys, "POST", "/api/v1/users/me/cli-secret", nil, 403, "DENIED"},
		{alice, "POST", "/api/v1/users/carol/cli-secret", nil, 403, "DENIED"},
		{alice, "DELETE", "/api/v1/users/carol/cli-secret", nil, 403, "DENIED"},
		{root, "POST", "/api/v1/users/carol/cli-secret", nil, 400, "INVALID_REQUEST"},
		{root, "POST", "/api/v1/users/nobody/cli-secret", nil, 404, "NOT_FOUND"},
		{root, "GET", "/api/v1/users/carol/cli-secret", nil, 200, ""},
		{root, "DELETE", "/api/v1/users/carol/cli-secret", nil, 204, ""},

		// Projects.
		{anon, "GET", "/api/v1/projects", nil, 401, "UNAUTHORIZED"},
		{carol, "GET", "/api/v1/projects", nil, 200, ""},
		{root, "POST", "/api/v1/projects", map[string]any{"name": "made", "public": false}, 201, ""},
		{alice, "POST", "/api/v1/projects", map[string]any{"name": "mine"}, 403, "DENIED"},
		{tbot, "POST", "/api/v1/projects", map[string]any{"name": "mine"}, 403, "DENIED"},
		{root, "POST", "/api/v1/projects", map[string]any{"name": "made"}, 409, "CONFLICT"},
		{root, "POST", "/api/v1/projects", map[string]any{"name": "Bad"}, 400, "INVALID_REQUEST"},
		{root, "POST", "/api/v1/projects", map[string]any{"name": "a/b"}, 400, "INVALID_REQUEST"},
		{root, "POST", "/api/v1/projects", map[string]any{"name": ""}, 400, "INVALID_REQUEST"},
		{root, "GET", "/api/v1/projects/team", nil, 200, ""},
		{bob, "GET", "/api/v1/projects/team", nil, 200, ""},
		{tbot, "GET", "/api/v1/projects/team", nil, 200, ""},
		{carol, "GET", "/api/v1/projects/open", nil, 200, ""},
		{carol, "GET", "/api/v1/projects/team", nil, 403, "DENIED"},
		{carol, "GET", "/api/v1/projects/nope", nil, 403, "DENIED"}, // no existence oracle
		{root, "GET", "/api/v1/projects/nope", nil, 404, "NOT_FOUND"},
		{root, "GET", "/api/v1/projects/NOPE", nil, 400, "INVALID_REQUEST"},
		{alice, "PATCH", "/api/v1/projects/team", map[string]any{"public": false}, 200, ""},
		{bob, "PATCH", "/api/v1/projects/team", map[string]any{"public": true}, 403, "DENIED"},
		{alice, "PATCH", "/api/v1/projects/other", map[string]any{"public": true}, 403, "DENIED"},
		{alice, "PATCH", "/api/v1/projects/team", map[string]any{}, 400, "INVALID_REQUEST"},
		{root, "PATCH", "/api/v1/projects/nope", map[string]any{"public": true}, 404, "NOT_FOUND"},
		{alice, "DELETE", "/api/v1/projects/team", nil, 403, "DENIED"},
		{root, "DELETE", "/api/v1/projects/made", nil, 204, ""},
		{root, "DELETE", "/api/v1/projects/made", nil, 404, "NOT_FOUND"},

		// Members.
		{alice, "GET", "/api/v1/projects/team/members", nil, 200, ""},
		{root, "GET", "/api/v1/projects/team/members", nil, 200, ""},
		{bob, "GET", "/api/v1/projects/team/members", nil, 403, "DENIED"},
		{tbot, "GET", "/api/v1/projects/team/members", nil, 403, "DENIED"},
		{alice, "GET", "/api/v1/projects/other/members", nil, 403, "DENIED"},
		{root, "GET", "/api/v1/projects/nope/members", nil, 404, "NOT_FOUND"},
		{alice, "PUT", "/api/v1/projects/team/members", map[string]any{"principal": "user:carol", "role": "guest"}, 200, ""},
		{alice, "PUT", "/api/v1/projects/team/members", map[string]any{"principal": "group:devs", "role": "maintainer"}, 200, ""},
		{bob, "PUT", "/api/v1/projects/team/members", map[string]any{"principal": "user:bob", "role": "admin"}, 403, "DENIED"},
		{alice, "PUT", "/api/v1/projects/team/members", map[string]any{"principal": "user:carol", "role": "owner"}, 400, "INVALID_REQUEST"},
		{alice, "PUT", "/api/v1/projects/team/members", map[string]any{"principal": "carol", "role": "guest"}, 400, "INVALID_REQUEST"},
		{alice, "PUT", "/api/v1/projects/team/members", map[string]any{"principal": "user:ghost", "role": "guest"}, 400, "INVALID_REQUEST"},
		{alice, "PUT", "/api/v1/projects/team/members", map[string]any{"principal": "user:robot$sys", "role": "guest"}, 400, "INVALID_REQUEST"},
		{root, "PUT", "/api/v1/projects/nope/members", map[string]any{"principal": "user:carol", "role": "guest"}, 404, "NOT_FOUND"},
		{carol, "GET", "/api/v1/projects/team", nil, 200, ""}, // a guest now
		{bob, "DELETE", "/api/v1/projects/team/members/user:carol", nil, 403, "DENIED"},
		{alice, "DELETE", "/api/v1/projects/team/members/user:carol", nil, 204, ""},
		{alice, "DELETE", "/api/v1/projects/team/members/user:carol", nil, 404, "NOT_FOUND"},
		{alice, "DELETE", "/api/v1/projects/team/members/nobody", nil, 400, "INVALID_REQUEST"},
		{carol, "GET", "/api/v1/projects/team", nil, 403, "DENIED"},

		// Users.
		{root, "GET", "/api/v1/users", nil, 200, ""},
		{alice, "GET", "/api/v1/users", nil, 403, "DENIED"},
		{sys, "GET", "/api/v1/users", nil, 403, "DENIED"},
		{root, "POST", "/api/v1/users", map[string]any{"name": "dave", "password": "dave-password", "email": "dave@example.com"}, 201, ""},
		{alice, "POST", "/api/v1/users", map[string]any{"name": "eve", "password": "eve-password"}, 403, "DENIED"},
		{root, "POST", "/api/v1/users", map[string]any{"name": "dave", "password": "dave-password"}, 409, "CONFLICT"},
		{root, "POST", "/api/v1/users", map[string]any{"name": "eve", "password": "short"}, 400, "INVALID_REQUEST"},
		{root, "POST", "/api/v1/users", map[string]any{"name": "Eve", "password": "eve-password"}, 400, "INVALID_REQUEST"},
		{root, "POST", "/api/v1/users", map[string]any{"name": "me", "password": "eve-password"}, 400, "INVALID_REQUEST"},
		{root, "POST", "/api/v1/users", map[string]any{"name": "robot$x", "password": "eve-password"}, 400, "INVALID_REQUEST"},
		{root, "POST", "/api/v1/users", map[string]any{"name": "eve", "password": "eve-password", "email": "Eve <eve@x>"}, 400, "INVALID_REQUEST"},
		{root, "GET", "/api/v1/users/dave", nil, 200, ""},
		{alice, "GET", "/api/v1/users/dave", nil, 403, "DENIED"},
		{root, "GET", "/api/v1/users/ghost", nil, 404, "NOT_FOUND"},
		{root, "PATCH", "/api/v1/users/dave", map[string]any{"email": "d@example.com", "admin": true}, 200, ""},
		{alice, "PATCH", "/api/v1/users/dave", map[string]any{"disabled": true}, 403, "DENIED"},
		{root, "PATCH", "/api/v1/users/dave", map[string]any{}, 400, "INVALID_REQUEST"},
		{root, "PATCH", "/api/v1/users/root", map[string]any{"admin": false}, 409, "CONFLICT"},
		{root, "PATCH", "/api/v1/users/root", map[string]any{"disabled": true}, 409, "CONFLICT"},
		{root, "PATCH", "/api/v1/users/ghost", map[string]any{"disabled": true}, 404, "NOT_FOUND"},
		{cred{"dave", "dave-password"}, "GET", "/api/v1/users", nil, 200, ""}, // an admin now
		{root, "DELETE", "/api/v1/users/root", nil, 409, "CONFLICT"},
		{alice, "DELETE", "/api/v1/users/dave", nil, 403, "DENIED"},
		{root, "DELETE", "/api/v1/users/dave", nil, 204, ""},
		{root, "DELETE", "/api/v1/users/dave", nil, 404, "NOT_FOUND"},
		{cred{"dave", "dave-password"}, "GET", "/api/v1/users/me", nil, 401, "UNAUTHORIZED"}, // deleted: cache forgotten

		// Robots.
		{alice, "POST", "/api/v1/projects/team/robots", map[string]any{"name": "ci", "permissions": []any{map[string]any{"actions": []string{"pull", "push"}}}}, 201, ""},
		{bob, "POST", "/api/v1/projects/team/robots", map[string]any{"name": "ci2", "permissions": []any{map[string]any{"actions": []string{"pull"}}}}, 403, "DENIED"},
		{alice, "POST", "/api/v1/projects/other/robots", map[string]any{"name": "ci", "permissions": []any{map[string]any{"actions": []string{"pull"}}}}, 403, "DENIED"},
		{alice, "POST", "/api/v1/projects/team/robots", map[string]any{"name": "ci", "permissions": []any{map[string]any{"actions": []string{"pull"}}}}, 409, "CONFLICT"},
		{alice, "POST", "/api/v1/projects/team/robots", map[string]any{"name": "x", "permissions": []any{}}, 400, "INVALID_REQUEST"},
		{alice, "POST", "/api/v1/projects/team/robots", map[string]any{"name": "x", "permissions": []any{map[string]any{"actions": []string{"admin"}}}}, 400, "INVALID_REQUEST"},
		{alice, "POST", "/api/v1/projects/team/robots", map[string]any{"name": "x", "permissions": []any{map[string]any{"project": "other", "actions": []string{"pull"}}}}, 400, "INVALID_REQUEST"},
		{alice, "POST", "/api/v1/projects/team/robots", map[string]any{"name": "robot$team+x", "permissions": []any{map[string]any{"actions": []string{"pull"}}}}, 400, "INVALID_REQUEST"},
		{alice, "POST", "/api/v1/projects/team/robots", map[string]any{"name": "x", "expiresIn": "1h", "expiresAt": "2099-01-01T00:00:00Z", "permissions": []any{map[string]any{"actions": []string{"pull"}}}}, 400, "INVALID_REQUEST"},
		{alice, "POST", "/api/v1/projects/team/robots", map[string]any{"name": "x", "expiresAt": "2001-01-01T00:00:00Z", "permissions": []any{map[string]any{"actions": []string{"pull"}}}}, 400, "INVALID_REQUEST"},
		{alice, "POST", "/api/v1/projects/team/robots", map[string]any{"name": "x", "expiresIn": "soon", "permissions": []any{map[string]any{"actions": []string{"pull"}}}}, 400, "INVALID_REQUEST"},
		{alice, "POST", "/api/v1/robots", map[string]any{"name": "global", "permissions": []any{map[string]any{"project": "*", "actions": []string{"pull"}}}}, 403, "DENIED"},
		{root, "POST", "/api/v1/robots", map[string]any{"name": "global", "expiresIn": "30d", "permissions": []any{map[string]any{"project": "*", "actions": []string{"pull"}}}}, 201, ""},
		{root, "POST", "/api/v1/robots", map[string]any{"name": "bad", "permissions": []any{map[string]any{"project": "No", "actions": []string{"pull"}}}}, 400, "INVALID_REQUEST"},
		{root, "POST", "/api/v1/robots", map[string]any{"name": "bad", "permissions": []any{map[string]any{"actions": []string{"pull"}}}}, 400, "INVALID_REQUEST"},
		{root, "POST", "/api/v1/projects/nope/robots", map[string]any{"name": "ci", "permissions": []any{map[string]any{"actions": []string{"pull"}}}}, 404, "NOT_FOUND"},
		{alice, "GET", "/api/v1/projects/team/robots", nil, 200, ""},
		{bob, "GET", "/api/v1/projects/team/robots", nil, 403, "DENIED"},
		{root, "GET", "/api/v1/robots", nil, 200, ""},
		{alice, "GET", "/api/v1/robots", nil, 403, "DENIED"},
		{alice, "GET", "/api/v1/projects/team/robots/ci", nil, 200, ""},
		{alice, "GET", "/api/v1/projects/team/robots/robot$team+ci", nil, 200, ""},
		{root, "GET", "/api/v1/projects/other/robots/robot$team+ci", nil, 404, "NOT_FOUND"},
		{root, "GET", "/api/v1/robots/robot$team+ci", nil, 404, "NOT_FOUND"},
		{root, "GET", "/api/v1/robots/global", nil, 200, ""},
		{root, "GET", "/api/v1/robots/ghost", nil, 404, "NOT_FOUND"},
		{alice, "PATCH", "/api/v1/projects/team/robots/ci", map[string]any{"permissions": []any{map[string]any{"actions": []string{"pull", "push", "delete"}}}}, 200, ""},
		{bob, "PATCH", "/api/v1/projects/team/robots/ci", map[string]any{"disabled": true}, 403, "DENIED"},
		{alice, "PATCH", "/api/v1/projects/team/robots/ci", map[string]any{}, 400, "INVALID_REQUEST"},
		{alice, "PATCH", "/api/v1/projects/team/robots/ci", map[string]any{"secret": "mine"}, 400, "INVALID_REQUEST"},
		{alice, "POST", "/api/v1/projects/team/robots/ci/rotate", nil, 200, ""},
		{bob, "POST", "/api/v1/projects/team/robots/ci/rotate", nil, 403, "DENIED"},
		{alice, "POST", "/api/v1/robots/global/rotate", nil, 403, "DENIED"},
		{root, "POST", "/api/v1/robots/global/rotate", nil, 200, ""},
		{root, "PATCH", "/api/v1/robots/global", map[string]any{"disabled": true}, 200, ""},
		{bob, "DELETE", "/api/v1/projects/team/robots/ci", nil, 403, "DENIED"},
		{alice, "DELETE", "/api/v1/projects/team/robots/ci", nil, 204, ""},
		{alice, "DELETE", "/api/v1/projects/team/robots/ci", nil, 404, "NOT_FOUND"},
		{root, "DELETE", "/api/v1/robots/global", nil, 204, ""},

		// Audit.
		{root, "GET", "/api/v1/audit", nil, 200, ""},
		{alice, "GET", "/api/v1/audit", nil, 200, ""},
		{bob, "GET", "/api/v1/audit", nil, 403, "DENIED"},
		{sys, "GET", "/api/v1/audit", nil, 403, "DENIED"},
		{root, "GET", "/api/v1/audit?limit=1001", nil, 400, "INVALID_REQUEST"},
		{root, "GET", "/api/v1/audit?since=yesterday", nil, 400, "INVALID_REQUEST"},
		{root, "GET", "/api/v1/audit?before=x", nil, 400, "INVALID_REQUEST"},
		{root, "GET", "/api/v1/audit?actr=root", nil, 400, "INVALID_REQUEST"},

		// Routing.
		{root, "PUT", "/api/v1/projects", map[string]any{}, 405, "UNSUPPORTED"},
		{root, "GET", "/api/v1/nothing", nil, 404, "NOT_FOUND"},
		{root, "GET", "/api/v1/users?n=0", nil, 400, "INVALID_REQUEST"},
	}
	for _, tt := range rows {
		r := w.call(tt.who, tt.method, tt.path, tt.body)
		if r.status != tt.want || (tt.code != "" && r.code() != tt.code) {
			t.Errorf("%s %s as %q: %d %s, want %d %s: %s", tt.method, tt.path, tt.who.user, r.status, r.code(), tt.want, tt.code, r.body)
			continue
		}
		if r.status == 401 && r.header.Get("WWW-Authenticate") != `Basic realm="berth"` {
			t.Errorf("%s %s: 401 without the Basic challenge: %q", tt.method, tt.path, r.header.Get("WWW-Authenticate"))
		}
		if r.status >= 400 && r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: error with Content-Type %q", tt.method, tt.path, r.header.Get("Content-Type"))
		}
		if tt.method == "PUT" && r.status == 405 && r.header.Get("Allow") != "GET, POST" {
			t.Errorf("405 Allow %q", r.header.Get("Allow"))
		}
	}
}

func TestBodies(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	big := `{"name": "` + strings.Repeat("a", 1<<20) + `"}`
	for _, tt := range []struct {
		name string
		body any
		ct   string
		want int
	}{
		{"unknown field", `{"name": "x", "owner": "me"}`, "application/json", 400},
		{"trailing data", `{"name": "x"} {"name": "y"}`, "application/json", 400},
		{"not JSON", `name=x`, "application/json", 400},
		{"empty", ``, "application/json", 400},
		{"wrong type", `{"name": 7}`, "application/json", 400},
		{"form content type", `{"name": "x"}`, "application/x-www-form-urlencoded", 400},
		{"no content type", []byte(`{"name": "x"}`), "", 400},
		{"too large", big, "application/json", 413},
		{"json with charset", `{"name": "okay"}`, "application/json; charset=utf-8", 201},
	} {
		var hdr []string
		if tt.ct != "" {
			hdr = []string{"Content-Type", tt.ct}
		}
		r := w.call(root, "POST", "/api/v1/projects", tt.body, hdr...)
		if r.status != tt.want {
			t.Errorf("%s: %d, want %d: %.200s", tt.name, r.status, tt.want, r.body)
		}
	}
}

func TestListings(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	names := func(r resp, key string) []string {
		var v map[string][]struct{ Name string }
		r.decode(t, &v)
		var out []string
		for _, x := range v[key] {
			out = append(out, x.Name)
		}
		return out
	}
	for _, tt := range []struct {
		who  cred
		want []string
	}{
		{root, []string{"open", "other", "team"}},
		{alice, []string{"open", "team"}},
		{carol, []string{"open"}},
		{sys, []string{"open", "other", "team"}},
		{tbot, []string{"open", "team"}},
	} {
		if got := names(w.expect(tt.who, "GET", "/api/v1/projects", nil, 200), "projects"); !slices.Equal(got, tt.want) {
			t.Errorf("projects of %s: %v, want %v", tt.who.user, got, tt.want)
		}
	}
	// Pagination by name with a Link header.
	r := w.expect(alice, "GET", "/api/v1/projects?n=1", nil, 200)
	if got := names(r, "projects"); !slices.Equal(got, []string{"open"}) {
		t.Fatalf("first page %v", got)
	}
	link := r.header.Get("Link")
	if link != `</api/v1/projects?last=open&n=1>; rel="next"` {
		t.Fatalf("Link %q", link)
	}
	r = w.expect(alice, "GET", "/api/v1/projects?last=open&n=1", nil, 200)
	if got := names(r, "projects"); !slices.Equal(got, []string{"team"}) {
		t.Fatalf("second page %v", got)
	}
	r = w.expect(root, "GET", "/api/v1/users?n=2", nil, 200)
	if got := names(r, "users"); !slices.Equal(got, []string{"alice", "bob"}) || r.header.Get("Link") == "" {
		t.Fatalf("users page %v, Link %q", got, r.header.Get("Link"))
	}
	// Members.
	var ms struct {
		Members []struct{ Principal, Role string }
	}
	w.expect(alice, "GET", "/api/v1/projects/team/members", nil, 200).decode(t, &ms)
	if len(ms.Members) != 2 || ms.Members[0].Principal != "user:alice" || ms.Members[0].Role != "admin" {
		t.Fatalf("members %+v", ms)
	}
	// Who am I.
	var me map[string]any
	w.expect(tbot, "GET", "/api/v1/users/me", nil, 200).decode(t, &me)
	if me["kind"] != "robot" || me["name"] != "robot$team+bot" || me["permissions"] == nil {
		t.Fatalf("me as robot: %v", me)
	}
	w.expect(root, "GET", "/api/v1/users/me", nil, 200).decode(t, &me)
	if me["kind"] != "user" || me["admin"] != true {
		t.Fatalf("me as root: %v", me)
	}
	// Users never show password hashes.
	for _, path := range []string{"/api/v1/users", "/api/v1/users/alice", "/api/v1/users/me"} {
		if r := w.expect(root, "GET", path, nil, 200); bytes.Contains(r.body, []byte("$2a$")) || bytes.Contains(r.body, []byte("password")) {
			t.Fatalf("GET %s leaks a password hash: %s", path, r.body)
		}
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	token := func(c cred, offline bool) map[string]any {
		u := w.srv.URL + "/token?service=berth"
		if offline {
			u += "&offline_token=true"
		}
		req, _ := http.NewRequest("GET", u, nil)
		req.SetBasicAuth(c.user, c.pass)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v map[string]any
		if err := json.NewDecoder(res.Body).Decode(&v); err != nil || res.StatusCode != 200 {
			t.Fatalf("token: %d %v", res.StatusCode, err)
		}
		return v
	}
	tok := token(alice, true)
	r := w.expect(anon, "GET", "/api/v1/users/me", nil, 200, "Authorization", "Bearer "+tok["token"].(string))
	var me struct{ Name string }
	r.decode(t, &me)
	if me.Name != "alice" {
		t.Fatalf("me %+v", me)
	}
	w.expect(anon, "PATCH", "/api/v1/projects/team", map[string]any{"public": true}, 200, "Authorization", "Bearer "+tok["token"].(string))
	w.expect(anon, "GET", "/api/v1/users", nil, 403, "Authorization", "Bearer "+tok["token"].(string))
	w.expect(anon, "GET", "/api/v1/users/me", nil, 401, "Authorization", "Bearer "+tok["refresh_token"].(string))
	w.expect(anon, "GET", "/api/v1/users/me", nil, 401, "Authorization", "Bearer not.a.token")
	w.expect(anon, "GET", "/api/v1/users/me", nil, 401, "Authorization", "Digest x")
	// An anonymous token identifies nobody.
	res, err := http.Get(w.srv.URL + "/token?service=berth")
	if err != nil {
		t.Fatal(err)
	}
	var at map[string]any
	_ = json.NewDecoder(res.Body).Decode(&at)
	res.Body.Close()
	w.expect(anon, "GET", "/api/v1/users/me", nil, 401, "Authorization", "Bearer "+at["token"].(string))
	// A token outlives nothing: a disabled account's token is refused at once here.
	w.expect(root, "PATCH", "/api/v1/users/alice", map[string]any{"disabled": true}, 200)
	w.expect(anon, "GET", "/api/v1/users/me", nil, 401, "Authorization", "Bearer "+tok["token"].(string))
}

func TestPasswordChange(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.expect(bob, "GET", "/api/v1/users/me", nil, 200) // cached now
	w.expect(root, "PATCH", "/api/v1/users/bob", map[string]any{"password": "new-bob-password"}, 200)
	w.expect(bob, "GET", "/api/v1/users/me", nil, 401)
	w.expect(cred{"bob", "new-bob-password"}, "GET", "/api/v1/users/me", nil, 200)
	w.expect(root, "PATCH", "/api/v1/users/bob", map[string]any{"disabled": true}, 200)
	w.expect(cred{"bob", "new-bob-password"}, "GET", "/api/v1/users/me", nil, 401)
	w.expect(root, "PATCH", "/api/v1/users/bob", map[string]any{"password": "short"}, 400)
	if _, err := w.meta.CreateUser(t.Context(), meta.User{Name: "dir", Source: "ldap"}); err != nil {
		t.Fatal(err)
	}
	if r := w.expect(root, "PATCH", "/api/v1/users/dir", map[string]any{"password": "some-password"}, 400); !strings.Contains(string(r.body), "directory") {
		t.Fatalf("LDAP password change: %s", r.body)
	}
	w.expect(root, "PATCH", "/api/v1/users/dir", map[string]any{"admin": true}, 200)
}

// v2 pushes a blob to repo (monolithic upload) as c and returns the status; then HEADs it.
func (w *world) pushBlob(c cred, repo string, data []byte) int {
	w.t.Helper()
	sum := sha256.Sum256(data)
	dg := "sha256:" + hex.EncodeToString(sum[:])
	req, _ := http.NewRequest("POST", w.srv.URL+"/v2/"+repo+"/blobs/uploads/?digest="+url.QueryEscape(dg), bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.SetBasicAuth(c.user, c.pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func (w *world) headBlob(c cred, repo string, data []byte) int {
	w.t.Helper()
	sum := sha256.Sum256(data)
	req, _ := http.NewRequest("HEAD", w.srv.URL+"/v2/"+repo+"/blobs/sha256:"+hex.EncodeToString(sum[:]), nil)
	req.SetBasicAuth(c.user, c.pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

type robotOut struct {
	Name        string
	Project     string
	Secret      string
	Expired     bool
	Disabled    bool
	ExpiresAt   *time.Time
	Permissions []auth.RobotPermission
}

// TestRobotSecrets: the secret works on /v2/ right after creation, is shown once, and
// stops working after rotation, disabling, deletion and expiry.
func TestRobotSecrets(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var rb robotOut
	r := w.expect(alice, "POST", "/api/v1/projects/team/robots", map[string]any{"name": "ci",
		"permissions": []any{map[string]any{"project": "team", "actions": []string{"push", "pull", "push"}}}}, 201)
	r.decode(t, &rb)
	if rb.Name != "robot$team+ci" || rb.Project != "team" || len(rb.Secret) != 43 || rb.ExpiresAt != nil {
		t.Fatalf("created %+v", rb)
	}
	if !slices.Equal(rb.Permissions[0].Actions, []auth.Action{"push", "pull"}) {
		t.Fatalf("actions not deduplicated: %+v", rb.Permissions)
	}
	if r.header.Get("Location") != "/api/v1/projects/team/robots/robot$team+ci" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", r.header)
	}
	ci := cred{rb.Name, rb.Secret}
	blob := []byte("layer bytes")
	if got := w.pushBlob(ci, "team/app", blob); got != 201 {
		t.Fatalf("push with a fresh robot secret: %d", got)
	}
	if got := w.headBlob(ci, "team/app", blob); got != 200 {
		t.Fatalf("pull with the robot secret: %d", got)
	}
	if got := w.pushBlob(ci, "other/app", blob); got != 403 {
		t.Fatalf("push to another project: %d, want 403", got)
	}
	if got := w.headBlob(cred{rb.Name, rb.Secret + "x"}, "team/app", blob); got != 401 {
		t.Fatalf("wrong secret: %d", got)
	}

	// Listings and reads never carry a secret (nor its hash).
	for _, c := range []struct {
		who  cred
		path string
	}{{alice, "/api/v1/projects/team/robots"}, {alice, "/api/v1/projects/team/robots/ci"}, {root, "/api/v1/robots"}, {ci, "/api/v1/users/me"}} {
		r := w.expect(c.who, "GET", c.path, nil, 200)
		if bytes.Contains(r.body, []byte(rb.Secret)) || bytes.Contains(r.body, []byte(`"secret"`)) || bytes.Contains(r.body, []byte("$2a$")) {
			t.Fatalf("GET %s shows a secret: %s", c.path, r.body)
		}
	}

	// Rotation: the old secret stops at once (the verified-login cache is dropped).
	var rotated robotOut
	w.expect(alice, "POST", "/api/v1/projects/team/robots/robot$team+ci/rotate", nil, 200).decode(t, &rotated)
	if rotated.Secret == "" || rotated.Secret == rb.Secret || rotated.Name != rb.Name {
		t.Fatalf("rotated %+v", rotated)
	}
	if got := w.headBlob(ci, "team/app", blob); got != 401 {
		t.Fatalf("old secret after rotate: %d, want 401", got)
	}
	ci = cred{rb.Name, rotated.Secret}
	if got := w.headBlob(ci, "team/app", blob); got != 200 {
		t.Fatalf("new secret after rotate: %d", got)
	}

	// Permissions change at once too.
	w.expect(alice, "PATCH", "/api/v1/projects/team/robots/ci", map[string]any{"permissions": []any{map[string]any{"actions": []string{"pull"}}}}, 200)
	if got := w.pushBlob(ci, "team/app", []byte("more")); got != 403 {
		t.Fatalf("push after losing push: %d, want 403", got)
	}

	// Disable, enable.
	var patched robotOut
	w.expect(alice, "PATCH", "/api/v1/projects/team/robots/ci", map[string]any{"disabled": true}, 200).decode(t, &patched)
	if !patched.Disabled {
		t.Fatalf("patched %+v", patched)
	}
	if got := w.headBlob(ci, "team/app", blob); got != 401 {
		t.Fatalf("disabled robot: %d, want 401", got)
	}
	w.expect(alice, "PATCH", "/api/v1/projects/team/robots/ci", map[string]any{"disabled": false}, 200)
	if got := w.headBlob(ci, "team/app", blob); got != 200 {
		t.Fatalf("re-enabled robot: %d", got)
	}

	// The project has a repository now: it cannot be deleted.
	if r := w.expect(root, "DELETE", "/api/v1/projects/team", nil, 409); r.code() != "CONFLICT" {
		t.Fatalf("delete project with repositories: %s", r.body)
	}

	// Delete.
	w.expect(alice, "DELETE", "/api/v1/projects/team/robots/ci", nil, 204)
	if got := w.headBlob(ci, "team/app", blob); got != 401 {
		t.Fatalf("deleted robot: %d, want 401", got)
	}

	// Expiry: a working secret stops when the robot expires, even if cached.
	var short robotOut
	w.expect(root, "POST", "/api/v1/robots", map[string]any{"name": "brief", "expiresIn": "10s",
		"permissions": []any{map[string]any{"project": "team", "actions": []string{"pull"}}}}, 201).decode(t, &short)
	if short.Name != "robot$brief" || short.ExpiresAt == nil || short.Expired {
		t.Fatalf("short-lived %+v", short)
	}
	sc := cred{short.Name, short.Secret}
	// Under -race on a loaded machine the hashing alone can take seconds: a refusal
	// that comes after the expiry is the right answer, not a failure.
	if got := w.headBlob(sc, "team/app", blob); got != 200 && time.Now().Before(*short.ExpiresAt) {
		t.Fatalf("before expiry: %d", got)
	}
	time.Sleep(time.Until(*short.ExpiresAt) + 50*time.Millisecond)
	if got := w.headBlob(sc, "team/app", blob); got != 401 {
		t.Fatalf("after expiry: %d, want 401", got)
	}
	w.expect(root, "GET", "/api/v1/robots/brief", nil, 200).decode(t, &short)
	if !short.Expired {
		t.Fatalf("expired robot listed as %+v", short)
	}
}

type auditRow struct {
	ID                                                 int64
	Actor, ActorType, Action, Resource, Result, Detail string
}

type auditOut struct{ Entries []auditRow }

// waitAudit polls the audit trail (written asynchronously) until ok accepts a page.
func (w *world) waitAudit(c cred, query string, ok func(auditOut) bool) auditOut {
	w.t.Helper()
	var out auditOut
	for deadline := time.Now().Add(5 * time.Second); ; {
		out = auditOut{}
		w.expect(c, "GET", "/api/v1/audit"+query, nil, 200).decode(w.t, &out)
		if ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("audit%s never matched: %+v", query, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAudit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.expect(root, "POST", "/api/v1/users", map[string]any{"name": "dave", "password": "dave-password"}, 201)
	w.expect(alice, "PUT", "/api/v1/projects/team/members", map[string]any{"principal": "user:dave", "role": "developer"}, 200)
	var rb robotOut
	w.expect(alice, "POST", "/api/v1/projects/team/robots", map[string]any{"name": "ci", "permissions": []any{map[string]any{"actions": []string{"pull", "push"}}}}, 201).decode(t, &rb)
	w.expect(alice, "POST", "/api/v1/projects/team/robots/ci/rotate", nil, 200)
	w.expect(bob, "PATCH", "/api/v1/projects/team", map[string]any{"public": true}, 403)
	w.expect(root, "PATCH", "/api/v1/projects/other", map[string]any{"public": true}, 200)

	has := func(out auditOut, action, resource, result string) bool {
		return slices.ContainsFunc(out.Entries, func(e auditRow) bool {
			return e.Action == action && e.Resource == resource && e.Result == result
		})
	}
	all := w.waitAudit(root, "?limit=1000", func(o auditOut) bool {
		return has(o, "user.create", "user$dave", "ok") && has(o, "member.set", "team", "ok") && has(o, "robot.create", "robot$team+ci", "ok") &&
			has(o, "robot.rotate", "robot$team+ci", "ok") && has(o, "project.update", "team", "denied") && has(o, "project.update", "other", "ok")
	})
	for _, e := range all.Entries {
		if strings.Contains(e.Detail, rb.Secret) {
			t.Fatalf("audit entry carries a secret: %+v", e)
		}
	}
	// A project admin sees their project's entries only.
	mine := w.waitAudit(alice, "", func(o auditOut) bool { return has(o, "robot.rotate", "robot$team+ci", "ok") })
	for _, e := range mine.Entries {
		if e.Resource != "team" && !strings.HasPrefix(e.Resource, "team/") && !strings.HasPrefix(e.Resource, "robot$team+") {
			t.Fatalf("alice sees %+v", e)
		}
	}
	if !has(mine, "project.update", "team", "denied") || has(mine, "project.update", "other", "ok") || has(mine, "user.create", "user$dave", "ok") {
		t.Fatalf("alice's view: %+v", mine)
	}
	// Filters.
	only := w.waitAudit(root, "?action=robot.create&actor=alice&result=ok", func(o auditOut) bool { return len(o.Entries) == 1 })
	if only.Entries[0].Resource != "robot$team+ci" || !strings.Contains(only.Entries[0].Detail, "team:pull,push") {
		t.Fatalf("filtered %+v", only)
	}
	future := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))
	w.waitAudit(root, "?since="+future, func(o auditOut) bool { return len(o.Entries) == 0 })
	w.waitAudit(root, "?until="+future+"&resource=team", func(o auditOut) bool { return len(o.Entries) >= 2 })

	// Keyset pagination: pages of 2 follow the Link header to the end, without overlap.
	seen := map[int64]bool{}
	next := "/api/v1/audit?limit=2"
	pages := 0
	for next != "" {
		r := w.expect(root, "GET", next, nil, 200)
		var o auditOut
		r.decode(t, &o)
		for _, e := range o.Entries {
			if seen[e.ID] {
				t.Fatalf("entry %d on two pages", e.ID)
			}
			seen[e.ID] = true
		}
		next = ""
		if l := r.header.Get("Link"); l != "" {
			next = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
		if pages++; pages > 100 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) < len(all.Entries) {
		t.Fatalf("paged through %d entries, listed %d", len(seen), len(all.Entries))
	}
}

func TestHtpasswdImport(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	hash := func(pw string) string {
		h, _ := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		return "$2y$" + string(h[4:]) // as htpasswd -B writes them
	}
	file := "# team accounts\nfrank:" + hash("frank-password") + "\r\n\ngina:" + hash("gina-password") + "\nalice:" + hash("other-password") + "\n"
	r := w.expect(root, "POST", "/api/v1/users/import", []byte(file), 200, "Content-Type", "text/plain")
	var res struct {
		Created []string
		Skipped []struct{ Name, Reason string }
	}
	r.decode(t, &res)
	if !slices.Equal(res.Created, []string{"frank", "gina"}) || len(res.Skipped) != 1 || res.Skipped[0].Name != "alice" {
		t.Fatalf("import %+v", res)
	}
	w.expect(cred{"frank", "frank-password"}, "GET", "/api/v1/users/me", nil, 200)
	w.expect(alice, "GET", "/api/v1/users/me", nil, 200) // unchanged

	bad := "henry:" + hash("henry-password") + "\nivan:$apr1$abcdefgh$0123456789abcdefghijkl\njudy:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\nkim:plain\nnocolon\n"
	r = w.expect(root, "POST", "/api/v1/users/import", []byte(bad), 400, "Content-Type", "text/plain; charset=utf-8")
	var e struct {
		Errors []struct {
			Code, Message string
			Detail        []struct {
				Line        int
				User, Error string
			}
		}
	}
	r.decode(t, &e)
	if e.Errors[0].Code != "INVALID_REQUEST" || len(e.Errors[0].Detail) != 4 || !strings.Contains(e.Errors[0].Detail[0].Error, "MD5") ||
		e.Errors[0].Detail[0].Line != 2 || !strings.Contains(e.Errors[0].Detail[1].Error, "SHA-1") {
		t.Fatalf("rejection %s", r.body)
	}
	w.expect(root, "GET", "/api/v1/users/henry", nil, 404) // nothing imported
	w.expect(root, "POST", "/api/v1/users/import", []byte(file), 400, "Content-Type", "application/json")
	w.expect(alice, "POST", "/api/v1/users/import", []byte(file), 403, "Content-Type", "text/plain")
	w.expect(root, "POST", "/api/v1/users/import", []byte("# nothing\n"), 400, "Content-Type", "text/plain")
	w.waitAudit(root, "?action=user.import&result=ok", func(o auditOut) bool { return len(o.Entries) == 2 })
}

// TestProjectDeleteDropsRobots: deleting a project deletes its robots, whose secrets
// stop working at once.
func TestProjectDeleteDropsRobots(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.expect(root, "POST", "/api/v1/projects", map[string]any{"name": "tmp"}, 201)
	var rb robotOut
	w.expect(root, "POST", "/api/v1/projects/tmp/robots", map[string]any{"name": "ci", "permissions": []any{map[string]any{"actions": []string{"pull"}}}}, 201).decode(t, &rb)
	w.expect(cred{rb.Name, rb.Secret}, "GET", "/api/v1/users/me", nil, 200)
	w.expect(root, "DELETE", "/api/v1/projects/tmp", nil, 204)
	w.expect(cred{rb.Name, rb.Secret}, "GET", "/api/v1/users/me", nil, 401)
	w.expect(root, "GET", "/api/v1/robots/"+url.PathEscape(rb.Name), nil, 404)
}
