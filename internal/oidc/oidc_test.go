package oidc

// The login flow against a real provider (oidctest: zitadel's example OP on loopback),
// with the real session manager and auth service: first login, groups and admin groups
// at each login, refused states and replays, and names that must not be taken over.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oidc/oidctest"
	"github.com/berth-registry/berth/internal/session"
)

type rig struct {
	op    *oidctest.OP
	srv   *httptest.Server
	m     *meta.Store
	svc   *Service
	auth  *auth.Service
	store *session.Store
}

func newRig(t *testing.T, users ...oidctest.User) *rig {
	t.Helper()
	ctx := context.Background()
	m, err := meta.Open(ctx, meta.Options{Dialect: meta.SQLite, DSN: t.TempDir() + "/berth.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tokens, err := auth.NewTokens(ctx, m, auth.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	authSvc := auth.New(m, nil, tokens, auth.Options{}, log)
	t.Cleanup(authSvc.Close)
	op := oidctest.Start(t, users...)
	st := session.NewStore(m.DB())
	r := &rig{op: op, m: m, auth: authSvc, store: st}
	mux := http.NewServeMux()
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	op.RegisterClient("berth", "client-secret", r.srv.URL+CallbackPath)
	r.svc, err = New(Options{Issuer: op.Issuer, ClientID: "berth", ClientSecret: "client-secret", AdminGroups: []string{"sso-admins"}},
		m, authSvc, session.NewManager(st, session.Options{}), log)
	if err != nil {
		t.Fatal(err)
	}
	authSvc.SetExternalGroups(r.svc.Store())
	mux.Handle("/auth/oidc/", r.svc.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) { _, _ = io.WriteString(w, "home "+req.URL.Path) })
	return r
}

func (r *rig) sessions(t *testing.T, user string) int {
	t.Helper()
	l, err := r.store.List(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

var (
	alice = oidctest.User{ID: "sub-alice", Username: "Alice", Password: "alice-pw", Email: "alice@example.com", Groups: []string{"team-devs"}}
	boss  = oidctest.User{ID: "sub-boss", Username: "boss", Password: "boss-pw", Groups: []string{"sso-admins"}}
	admin = oidctest.User{ID: "sub-admin", Username: "admin", Password: "admin-pw"}
)

func TestFirstLoginCreatesUserAndSession(t *testing.T) {
	r := newRig(t, alice)
	ctx := context.Background()
	b := oidctest.NewBrowser(t)
	page := b.Login(t, r.srv.URL+r.svc.LoginURL("/projects/team"), alice.Username, alice.Password)
	if page.Status != http.StatusOK || page.Body != "home /projects/team" {
		t.Fatalf("after login: %d %q at %s", page.Status, page.Body, page.URL)
	}
	// PKCE and the nonce went to the provider.
	auth := b.Visited[1]
	if q := auth.Query(); q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("nonce") == "" || q.Get("state") == "" {
		t.Errorf("authorization request %s lacks PKCE S256, nonce or state", auth)
	}
	u, err := r.m.UserByName(ctx, "alice")
	if err != nil || u.Source != "oidc" || u.PasswordHash != "" || u.Email != "alice@example.com" || u.Admin {
		t.Fatalf("user alice = %+v, %v; want an oidc user without password", u, err)
	}
	if g, err := r.svc.Store().LastGroups(ctx, "alice"); err != nil || !slices.Equal(g, []string{"team-devs"}) {
		t.Fatalf("stored groups %v, %v", g, err)
	}
	if n := r.sessions(t, "alice"); n != 1 {
		t.Fatalf("alice has %d sessions, want 1", n)
	}
	// Groups change at the provider: the next login stores the new ones.
	r.op.SetGroups(alice.ID, "team-admins", "other")
	if page := oidctest.NewBrowser(t).Login(t, r.srv.URL+LoginPath, alice.Username, alice.Password); page.Body != "home /" {
		t.Fatalf("second login: %d %q", page.Status, page.Body)
	}
	if g, _ := r.svc.Store().LastGroups(ctx, "alice"); !slices.Equal(g, []string{"other", "team-admins"}) {
		t.Fatalf("groups after the second login: %v", g)
	}
	if p, err := r.auth.Principal(ctx, "user", "alice", nil); err != nil || !slices.Equal(p.Groups, []string{"other", "team-admins"}) {
		t.Fatalf("principal %+v, %v: want the stored groups", p, err)
	}
}

func TestAdminGroupsGrantAndTakeBack(t *testing.T) {
	r := newRig(t, boss)
	ctx := context.Background()
	login := func() {
		t.Helper()
		if page := oidctest.NewBrowser(t).Login(t, r.srv.URL+LoginPath, boss.Username, boss.Password); page.Body != "home /" {
			t.Fatalf("login: %d %q", page.Status, page.Body)
		}
	}
	login()
	if u, _ := r.m.UserByName(ctx, "boss"); !u.Admin {
		t.Fatal("a member of an admin group is not a system administrator")
	}
	r.op.SetGroups(boss.ID)
	login()
	if u, _ := r.m.UserByName(ctx, "boss"); u.Admin {
		t.Fatal("admin rights from a group outlived the group membership")
	}
	// Rights an administrator granted are not the groups' to take.
	u, _ := r.m.UserByName(ctx, "boss")
	u.Admin = true
	if err := r.m.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	login()
	if u, _ := r.m.UserByName(ctx, "boss"); !u.Admin {
		t.Fatal("a login without admin groups removed an administrator's grant")
	}
}

func TestLoginRefusals(t *testing.T) {
	r := newRig(t, alice, admin)
	ctx := context.Background()
	if _, err := r.m.CreateUser(ctx, meta.User{Name: "admin", PasswordHash: "x", Admin: true}); err != nil {
		t.Fatal(err)
	}

	t.Run("local account of the same name", func(t *testing.T) {
		page := oidctest.NewBrowser(t).Login(t, r.srv.URL+LoginPath, admin.Username, admin.Password)
		if page.Status != http.StatusForbidden || !strings.Contains(page.Body, "local account named &#34;admin&#34; already exists") {
			t.Fatalf("collision: %d %q", page.Status, page.Body)
		}
		if u, _ := r.m.UserByName(ctx, "admin"); u.Source != "local" {
			t.Fatalf("the local admin became %+v", u)
		}
		if n := r.sessions(t, "admin"); n != 0 {
			t.Fatalf("the refused login opened %d sessions", n)
		}
	})

	t.Run("replayed callback", func(t *testing.T) {
		b := oidctest.NewBrowser(t)
		b.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			b.Visited = append(b.Visited, req.URL)
			if req.URL.Path == CallbackPath {
				return http.ErrUseLastResponse
			}
			return nil
		}
		b.Login(t, r.srv.URL+LoginPath, alice.Username, alice.Password)
		cb := b.LastVisit(CallbackPath)
		if cb == nil {
			t.Fatal("no callback reached")
		}
		// Keep the state cookie, as an attacker who copied it would.
		cookies := b.Client.Jar.Cookies(cb)
		if len(cookies) != 1 || !strings.HasPrefix(cookies[0].Name, stateCookiePrefix) {
			t.Fatalf("state cookies %v", cookies)
		}
		if page := b.Get(t, cb.String()); page.Body != "home /" {
			t.Fatalf("first callback: %d %q", page.Status, page.Body)
		}
		before := r.sessions(t, "alice")
		req, _ := http.NewRequest(http.MethodGet, cb.String(), nil)
		req.AddCookie(cookies[0])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "already used") {
			t.Errorf("replay with the state cookie: %d %q", resp.StatusCode, body)
		}
		if n := r.sessions(t, "alice"); n != before {
			t.Errorf("replay opened a session (%d → %d)", before, n)
		}
	})

	t.Run("state from another browser", func(t *testing.T) {
		// The attacker starts a login and sends the victim the callback URL (login CSRF):
		// the victim's browser has no cookie for that state.
		attacker := oidctest.NewBrowser(t)
		attacker.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			attacker.Visited = append(attacker.Visited, req.URL)
			if req.URL.Path == CallbackPath {
				return http.ErrUseLastResponse // the attacker does not finish the login
			}
			return nil
		}
		attacker.Login(t, r.srv.URL+LoginPath, alice.Username, alice.Password)
		cb := attacker.LastVisit(CallbackPath)
		if cb == nil {
			t.Fatal("the attacker's login reached no callback")
		}
		callback := cb.String()
		if page := oidctest.NewBrowser(t).Get(t, callback); page.Status != http.StatusBadRequest || !strings.Contains(page.Body, "not started in this browser") {
			t.Errorf("foreign state: %d %q", page.Status, page.Body)
		}
	})

	t.Run("forged state", func(t *testing.T) {
		page := oidctest.NewBrowser(t).Get(t, r.srv.URL+CallbackPath+"?state=forged&code=x")
		if page.Status != http.StatusBadRequest {
			t.Errorf("forged state: %d %q", page.Status, page.Body)
		}
	})

	t.Run("wrong password at the provider", func(t *testing.T) {
		page := oidctest.NewBrowser(t).Login(t, r.srv.URL+LoginPath, alice.Username, "wrong")
		if page.URL.Path == "/" || !strings.Contains(page.Body, "<form") {
			t.Errorf("a wrong password got past the provider: %d at %s", page.Status, page.URL)
		}
	})
}

func TestNameOfAnotherSubjectRefused(t *testing.T) {
	imposter := oidctest.User{ID: "sub-other", Username: "alice", Password: "other-pw"}
	r := newRig(t, alice, imposter)
	if page := oidctest.NewBrowser(t).Login(t, r.srv.URL+LoginPath, alice.Username, alice.Password); page.Body != "home /" {
		t.Fatalf("alice: %d %q", page.Status, page.Body)
	}
	page := oidctest.NewBrowser(t).Login(t, r.srv.URL+LoginPath, imposter.Username, imposter.Password)
	if page.Status != http.StatusForbidden || !strings.Contains(page.Body, "belongs to another OpenID Connect identity") {
		t.Fatalf("another subject named alice: %d %q", page.Status, page.Body)
	}
}

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/projects/team?tab=tags", "/projects/team?tab=tags"},
		{"https://evil.example/", "/"},
		{"//evil.example/", "/"},
		{"/\\evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"projects", "/"},
		{"/a\nb", "/"},
		{"/" + strings.Repeat("a", 3000), "/"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIdentityClaims(t *testing.T) {
	s := &Service{opts: Options{UsernameClaim: "preferred_username", GroupsClaim: "groups"}}
	for _, tc := range []struct {
		name   string
		claims map[string]any
		user   string
		groups []string
		err    string
	}{
		{"username lower-cased", map[string]any{"preferred_username": "Bob"}, "bob", nil, ""},
		{"sub when no username", map[string]any{}, "sub-1", nil, ""},
		{"groups deduplicated and sorted", map[string]any{"preferred_username": "b", "groups": []any{"z", "a", "z", 3}}, "b", []string{"a", "z"}, ""},
		{"a single group as a string", map[string]any{"preferred_username": "b", "groups": "ops"}, "b", []string{"ops"}, ""},
		{"name with @", map[string]any{"preferred_username": "bob@example.com"}, "", nil, "not a valid Berth user name"},
		{"reserved name", map[string]any{"preferred_username": "me"}, "", nil, "not a valid Berth user name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := s.identity("https://issuer", "sub-1", tc.claims)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || id.username != tc.user || !slices.Equal(id.groups, tc.groups) {
				t.Fatalf("identity = %+v, %v; want %s %v", id, err, tc.user, tc.groups)
			}
		})
	}
}

// TestCallbackOnAnotherReplica: replicas share only the database, so a login started on
// one and finished on another must work (each Service discovers the provider itself and
// keeps nothing about logins in memory).
func TestCallbackOnAnotherReplica(t *testing.T) {
	r := newRig(t, alice)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	other, err := New(Options{Issuer: r.op.Issuer, ClientID: "berth", ClientSecret: "client-secret"},
		r.m, r.auth, session.NewManager(r.store, session.Options{}), log)
	if err != nil {
		t.Fatal(err)
	}
	replicas := []http.Handler{r.svc.Handler(), other.Handler()}
	var served []int
	n := 0
	mux := http.NewServeMux()
	mux.HandleFunc("/auth/oidc/", func(w http.ResponseWriter, req *http.Request) {
		i := n % 2 // round robin, as a load balancer would
		n++
		served = append(served, i)
		replicas[i].ServeHTTP(w, req)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) { _, _ = io.WriteString(w, "home") })
	lb := httptest.NewServer(mux)
	t.Cleanup(lb.Close)
	r.op.RegisterClient("berth", "client-secret", lb.URL+CallbackPath)
	page := oidctest.NewBrowser(t).Login(t, lb.URL+LoginPath, alice.Username, alice.Password)
	if page.Body != "home" || !slices.Equal(served, []int{0, 1}) {
		t.Fatalf("login across replicas: %d %q, served by %v", page.Status, page.Body, served)
	}
	if n := r.sessions(t, "alice"); n != 1 {
		t.Fatalf("alice has %d sessions, want 1", n)
	}
}

func TestLoginURL(t *testing.T) {
	s := &Service{}
	for _, tc := range []struct{ next, want string }{
		{"", LoginPath},
		{"/", LoginPath},
		{"/ui/projects?x=1", LoginPath + "?next=%2Fui%2Fprojects%3Fx%3D1"},
		{"https://evil.example/", LoginPath},
	} {
		if got := s.LoginURL(tc.next); got != tc.want {
			t.Errorf("LoginURL(%q) = %q, want %q", tc.next, got, tc.want)
		}
	}
}
