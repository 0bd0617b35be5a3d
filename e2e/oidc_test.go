package e2e

// OIDC logins end to end: berth with auth.oidc pointing at a real OpenID provider on
// loopback (internal/oidc/oidctest: zitadel/oidc's example OP, with a groups claim),
// logged into by a cookie-keeping Go client that fills the provider's login form. The
// OIDC users then use their CLI secret as the password of crane and helm. Projects are
// created by the administrator only (projectCreation: admins), so what alice may push
// comes from her group's mapping alone: team-devs → developer in project "team".

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/oidc/oidctest"
)

const (
	oidcAdminPass    = "local admin pw 1"
	oidcClientSecret = "berth-client-secret-e2e"
)

var (
	oidcCSRF        = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	oidcShownSecret = regexp.MustCompile(`<code id="cli-secret">(berth_cli_[A-Za-z0-9_-]+)</code>`)

	oidcAlice = oidctest.User{ID: "sub-alice", Username: "alice", Password: "alice-op-pw", Email: "alice@example.com", Groups: []string{"team-devs"}}
	oidcBob   = oidctest.User{ID: "sub-bob", Username: "bob", Password: "bob-op-pw", Groups: []string{"unmapped"}}
	// oidcAdmin's name collides with berth's local administrator.
	oidcAdmin = oidctest.User{ID: "sub-admin", Username: "admin", Password: "admin-op-pw", Groups: []string{"team-devs"}}
)

func oidcBerth(t *testing.T, op *oidctest.OP) *Berth {
	t.Helper()
	b := startBerth(t, BerthOptions{
		Env: []string{"BERTH_TEST_OIDC_CLIENT_SECRET=" + oidcClientSecret},
		Config: `auth:
  enabled: true
  projectCreation: admins
  admin:
    username: admin
    password: "` + oidcAdminPass + `"
  failedLogins:
    max: 1000
  oidc:
    enabled: true
    issuer: ` + op.Issuer + `
    clientID: berth
    clientSecretEnv: BERTH_TEST_OIDC_CLIENT_SECRET
    displayName: Test SSO
    groupRoles:
      - {group: team-devs, project: team, role: developer}
`})
	// The callback is derived from the request's Host: berth's address is known now.
	op.RegisterClient("berth", oidcClientSecret, b.URL("/auth/oidc/callback"))
	for _, p := range []string{"team", "other"} {
		r := ldapDo(t, http.MethodPost, b.URL("/api/v1/projects"), ldapBasic("admin", oidcAdminPass),
			map[string]string{"Content-Type": "application/json"}, []byte(`{"name":"`+p+`"}`))
		ldapWant(t, "create project "+p, r, http.StatusCreated, "")
	}
	return b
}

// oidcSecret makes (or rotates) a user's CLI secret through the admin API with authz.
func oidcSecret(t *testing.T, b *Berth, authz, path string) string {
	t.Helper()
	r := ldapDo(t, http.MethodPost, b.URL("/api/v1/users/"+path+"/cli-secret"), authz, nil, nil)
	var out struct{ Secret string }
	if r.status != http.StatusOK || json.Unmarshal(r.body, &out) != nil || !strings.HasPrefix(out.Secret, "berth_cli_") {
		t.Fatalf("POST /users/%s/cli-secret: %v", path, r)
	}
	return out.Secret
}

// oidcPushScope asks the token endpoint for pull,push on repo with Basic credentials and
// returns the granted actions (the endpoint grants less, never fails, for missing rights).
func oidcPushScope(t *testing.T, b *Berth, user, pass, repo string) (int, []string) {
	t.Helper()
	q := url.Values{"service": {"berth"}, "scope": {"repository:" + repo + ":pull,push"}}
	r := ldapDo(t, http.MethodGet, b.URL("/token?"+q.Encode()), ldapBasic(user, pass), nil, nil)
	if r.status != http.StatusOK {
		return r.status, nil
	}
	var tok struct{ Token string }
	if err := json.Unmarshal(r.body, &tok); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", tok.Token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Access []struct{ Actions []string } `json:"access"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if len(claims.Access) == 0 {
		return r.status, nil
	}
	return r.status, claims.Access[0].Actions
}

func TestOIDCLoginAndCLISecret(t *testing.T) {
	crane := requireTool(t, "crane")
	helm := requireTool(t, "helm")
	op := oidctest.Start(t, oidcAlice, oidcBob, oidcAdmin)
	b := oidcBerth(t, op)
	admin := ldapBasic("admin", oidcAdminPass)

	// First login: the user is created (source oidc) and a session started.
	browser := oidctest.NewBrowser(t)
	page := browser.Login(t, b.URL("/auth/oidc/login?next=/account"), oidcAlice.Username, oidcAlice.Password)
	if page.URL.Host != b.Addr || page.URL.Path != "/account" || page.Status != http.StatusOK || !strings.Contains(page.Body, "alice") {
		t.Fatalf("after login the browser is at %s (%d), want berth's /account as alice:\n%.300s", page.URL, page.Status, page.Body)
	}
	var session bool
	for _, c := range browser.Client.Jar.Cookies(page.URL) {
		session = session || c.Name == "berth_session" && c.Value != ""
	}
	if !session {
		t.Fatalf("no session cookie after login: %v", browser.Client.Jar.Cookies(page.URL))
	}
	r := ldapDo(t, http.MethodGet, b.URL("/api/v1/users/alice"), admin, nil, nil)
	var u struct {
		Source, Email string
		Admin         bool
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &u) != nil || u.Source != "oidc" || u.Email != "alice@example.com" || u.Admin {
		t.Fatalf("GET /users/alice: %v", r)
	}

	// Her CLI secret, made on her account page in the web UI (shown once).
	csrf := oidcCSRF.FindStringSubmatch(page.Body)
	if csrf == nil {
		t.Fatalf("no CSRF field on the account page:\n%.500s", page.Body)
	}
	page = browser.PostForm(t, b.URL("/account/cli-secret"), b.URL(""), url.Values{"csrf": {csrf[1]}})
	m := oidcShownSecret.FindStringSubmatch(page.Body)
	if page.Status != http.StatusOK || m == nil {
		t.Fatalf("POST /account/cli-secret: %d\n%.500s", page.Status, page.Body)
	}
	secret1 := m[1]
	r = ldapDo(t, http.MethodGet, b.URL("/api/v1/users/alice/cli-secret"), admin, nil, nil)
	var st struct{ Exists bool }
	if r.status != http.StatusOK || json.Unmarshal(r.body, &st) != nil || !st.Exists || strings.Contains(string(r.body), secret1) {
		t.Fatalf("GET /users/alice/cli-secret: %v", r)
	}

	// The group's mapping: developer in team, nothing in other.
	if status, got := oidcPushScope(t, b, "alice", secret1, "team/app"); status != http.StatusOK || strings.Join(got, ",") != "pull,push" {
		t.Errorf("token for team/app: %d %v, want pull,push", status, got)
	}
	if status, got := oidcPushScope(t, b, "alice", secret1, "other/app"); status != http.StatusOK || len(got) != 0 {
		t.Errorf("token for other/app: %d %v, want nothing", status, got)
	}

	dir := t.TempDir()
	craneEnv := toolEnv(t)
	// crane auth login only writes its config; the pushes below are what check.
	run(t, craneEnv, crane, "auth", "login", b.Addr, "-u", "alice", "-p", secret1)
	layer := admLayer(t, dir, "oidc")
	run(t, craneEnv, crane, "append", "-f", layer, "-t", b.Addr+"/team/app:v1")
	digest := strings.TrimSpace(run(t, craneEnv, crane, "digest", b.Addr+"/team/app:v1"))
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("crane digest: %q", digest)
	}
	run(t, craneEnv, crane, "pull", b.Addr+"/team/app:v1", filepath.Join(dir, "app.tar"))
	if out, err := runErr(craneEnv, crane, "append", "-f", layer, "-t", b.Addr+"/other/app:v1"); err == nil {
		t.Errorf("alice pushed to project other, which her groups do not reach:\n%s", out)
	}

	helmEnv := toolEnv(t)
	if out, err := runErrIn(dir, helmEnv, helm, "registry", "login", b.Addr, "-u", "alice", "-p", "not-the-secret", "--plain-http"); err == nil {
		t.Errorf("helm registry login with a wrong secret succeeded:\n%s", out)
	}
	helmRun := func(args ...string) {
		t.Helper()
		if out, err := runErrIn(dir, helmEnv, helm, args...); err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	helmRun("registry", "login", b.Addr, "-u", "alice", "-p", secret1, "--plain-http")
	helmRun("create", "demo")
	helmRun("package", "demo")
	helmRun("push", "demo-0.1.0.tgz", "oci://"+b.Addr+"/team/charts", "--plain-http")
	if err := os.MkdirAll(filepath.Join(dir, "pulled"), 0o755); err != nil {
		t.Fatal(err)
	}
	helmRun("pull", "oci://"+b.Addr+"/team/charts/demo", "--version", "0.1.0", "--plain-http", "-d", filepath.Join(dir, "pulled"))
	if _, err := os.Stat(filepath.Join(dir, "pulled", "demo-0.1.0.tgz")); err != nil {
		t.Errorf("helm pull: %v", err)
	}

	// Rotation by alice herself, authenticated by the current secret: the old one fails
	// at once (Basic on /v2/, the token endpoint, crane's stored login), the new one works.
	secret2 := oidcSecret(t, b, ldapBasic("alice", secret1), "me")
	if secret2 == secret1 {
		t.Fatal("rotation returned the same secret")
	}
	ldapWant(t, "GET /v2/ with the old secret", ldapDo(t, http.MethodGet, b.URL("/v2/"), ldapBasic("alice", secret1), nil, nil), http.StatusUnauthorized, "")
	if status, _ := oidcPushScope(t, b, "alice", secret1, "team/app"); status != http.StatusUnauthorized {
		t.Errorf("token with the old secret: %d, want 401", status)
	}
	if out, err := runErr(craneEnv, crane, "append", "-f", layer, "-t", b.Addr+"/team/app:v2"); err == nil {
		t.Errorf("crane pushed with the rotated-out secret:\n%s", out)
	}
	ldapWant(t, "GET /v2/ with the new secret", ldapDo(t, http.MethodGet, b.URL("/v2/"), ldapBasic("alice", secret2), nil, nil), http.StatusOK, "")
	run(t, craneEnv, crane, "auth", "login", b.Addr, "-u", "alice", "-p", secret2)
	run(t, craneEnv, crane, "append", "-f", layer, "-t", b.Addr+"/team/app:v2")
	helmRun("registry", "login", b.Addr, "-u", "alice", "-p", secret2, "--plain-http")

	// The groups of the latest login authorize: alice leaves team-devs at the provider and
	// logs in again; the same secret then reaches nothing in team.
	op.SetGroups(oidcAlice.ID)
	oidctest.NewBrowser(t).Login(t, b.URL("/auth/oidc/login"), oidcAlice.Username, oidcAlice.Password)
	if status, got := oidcPushScope(t, b, "alice", secret2, "team/app"); status != http.StatusOK || len(got) != 0 {
		t.Errorf("token for team/app after alice left team-devs: %d %v, want nothing", status, got)
	}

	// An administrator revokes it: nothing works until a new one is made.
	ldapWant(t, "revoke", ldapDo(t, http.MethodDelete, b.URL("/api/v1/users/alice/cli-secret"), admin, nil, nil), http.StatusNoContent, "")
	ldapWant(t, "GET /v2/ after revocation", ldapDo(t, http.MethodGet, b.URL("/v2/"), ldapBasic("alice", secret2), nil, nil), http.StatusUnauthorized, "")

	// A user whose groups map to nothing gets nothing, however authenticated.
	oidctest.NewBrowser(t).Login(t, b.URL("/auth/oidc/login"), oidcBob.Username, oidcBob.Password)
	// berth admin user cli-secret: the administrator's CLI for the same route.
	out, errOut, err := admCLI(b, []string{"BERTH_ADMIN_PASSWORD=" + oidcAdminPass}, "", "user", "cli-secret", "bob", "--json")
	var made struct{ Secret string }
	if err != nil || json.Unmarshal([]byte(out), &made) != nil || !strings.HasPrefix(made.Secret, "berth_cli_") || !strings.Contains(errOut, "WARNING") {
		t.Fatalf("berth admin user cli-secret bob: %v\n%s\n%s", err, out, errOut)
	}
	bobSecret := made.Secret
	ldapWant(t, "bob on /v2/ with his secret", ldapDo(t, http.MethodGet, b.URL("/v2/"), ldapBasic("bob", bobSecret), nil, nil), http.StatusOK, "")
	if status, got := oidcPushScope(t, b, "bob", bobSecret, "team/app"); status != http.StatusOK || len(got) != 0 {
		t.Errorf("bob's token for team/app: %d %v, want nothing", status, got)
	}
	// Local users have passwords, not CLI secrets.
	ldapWant(t, "CLI secret for the local admin", ldapDo(t, http.MethodPost, b.URL("/api/v1/users/admin/cli-secret"), admin, nil, nil), http.StatusBadRequest, "")
}

func TestOIDCRefusals(t *testing.T) {
	op := oidctest.Start(t, oidcAlice, oidcAdmin)
	b := oidcBerth(t, op)

	// The UI's login page offers the provider.
	if page := oidctest.NewBrowser(t).Get(t, b.URL("/login")); page.Status != http.StatusOK ||
		!strings.Contains(page.Body, `href="/auth/oidc/login`) || !strings.Contains(page.Body, "Log in with Test SSO") {
		t.Errorf("login page without the OIDC button: %d\n%.500s", page.Status, page.Body)
	}

	// A name that is a local account's is refused; the local account is untouched.
	page := oidctest.NewBrowser(t).Login(t, b.URL("/auth/oidc/login"), oidcAdmin.Username, oidcAdmin.Password)
	if page.Status != http.StatusForbidden || !strings.Contains(page.Body, "local account named") {
		t.Fatalf("OIDC login as the local admin's name: %d %.300s", page.Status, page.Body)
	}
	r := ldapDo(t, http.MethodGet, b.URL("/api/v1/users/me"), ldapBasic("admin", oidcAdminPass), nil, nil)
	var me struct {
		Source string
		Admin  bool
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &me) != nil || me.Source != "local" || !me.Admin {
		t.Fatalf("the local admin after the refused login: %v", r)
	}

	// A state the browser did not start.
	page = oidctest.NewBrowser(t).Get(t, b.URL("/auth/oidc/callback?state=forged&code=forged"))
	if page.Status != http.StatusBadRequest {
		t.Errorf("forged state: %d %.200s", page.Status, page.Body)
	}

	// A code used once, replayed: with its own state (used: refused by berth) and under a
	// fresh login's state (refused by the provider: codes are single-use and bound to
	// the PKCE challenge of their login).
	first := oidctest.NewBrowser(t)
	stopAt := func(br *oidctest.Browser, path string) {
		br.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			br.Visited = append(br.Visited, req.URL)
			if req.URL.Path == path {
				return http.ErrUseLastResponse
			}
			return nil
		}
	}
	stopAt(first, "/auth/oidc/callback")
	first.Login(t, b.URL("/auth/oidc/login"), oidcAlice.Username, oidcAlice.Password)
	cb := first.LastVisit("/auth/oidc/callback")
	if cb == nil {
		t.Fatal("the login reached no callback")
	}
	stateCookies := first.Client.Jar.Cookies(cb)
	if page := first.Get(t, cb.String()); page.Status != http.StatusOK || page.URL.Host != b.Addr || page.URL.Path == "/login" {
		t.Fatalf("the first callback did not log in: %d at %s", page.Status, page.URL)
	}
	req, _ := http.NewRequest(http.MethodGet, cb.String(), nil)
	for _, c := range stateCookies {
		req.AddCookie(c)
	}
	resp, err := ldapClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback: %d, want 400", resp.StatusCode)
	}

	second := oidctest.NewBrowser(t)
	stopAt(second, "/auth") // the provider's authorization endpoint: do not log in
	second.Get(t, b.URL("/auth/oidc/login"))
	authz := second.LastVisit("/auth")
	if authz == nil {
		t.Fatal("no redirect to the provider")
	}
	replay := *cb
	q := replay.Query()
	q.Set("state", authz.Query().Get("state"))
	replay.RawQuery = q.Encode()
	page = second.Get(t, replay.String())
	if page.Status != http.StatusUnauthorized || !strings.Contains(page.Body, "did not accept the login code") {
		t.Errorf("old code under a fresh state: %d %.300s", page.Status, page.Body)
	}
}
