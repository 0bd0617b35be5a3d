package e2e

// LDAP logins end to end: berth with auth on, a local admin and auth.ldap pointing at a
// real slapd (internal/ldapauth/ldaptest), driven over raw HTTP (Basic on /v2/ and the
// token flow) and with crane. Directory groups give roles in project "team" through
// auth.ldap.groupRoles: team-devs (alice, dave) developer, team-admins (bob) admin;
// carol is in no group.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/ldapauth/ldaptest"
)

const (
	ldapAdmin     = "admin"
	ldapAdminPass = "local admin pw 1"
)

// ldapBerthConfig is berth's configuration for a directory at ldapURL (ldap:// or
// ldaps://; ca is the CA file for ldaps, or "").
func ldapBerthConfig(ldapURL, ca string, timeout time.Duration) string {
	caLine := ""
	if ca != "" {
		caLine = fmt.Sprintf("    ca: %q\n", ca)
	}
	return fmt.Sprintf(`auth:
  enabled: true
  admin:
    username: %q
    password: %q
  failedLogins:
    max: 1000
  ldap:
    enabled: true
    url: %q
%s    bindDN: %q
    bindPassword: %q
    userBaseDN: %q
    userFilter: %q
    groupBaseDN: %q
    groupFilter: %q
    timeout: %s
    groupRoles:
      - {group: %s, project: team, role: developer}
      - {group: %s, project: team, role: admin}
`, ldapAdmin, ldapAdminPass, ldapURL, caLine, ldaptest.ServiceDN, ldaptest.ServicePassword,
		ldaptest.PeopleDN, ldaptest.UserFilter, ldaptest.GroupsDN, ldaptest.GroupFilter,
		timeout, ldaptest.GroupTeamDevs, ldaptest.GroupTeamAdmins)
}

func ldapBasic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// ldapClient bounds every request: a login that hangs fails the test instead of it.
var ldapClient = &http.Client{Timeout: 60 * time.Second}

type ldapResp struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

// code is the first OCI error code of the body ("" if none).
func (r ldapResp) code() string {
	var e struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(r.body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

func (r ldapResp) String() string {
	body := bytes.TrimSpace(r.body)
	if len(body) > 200 {
		body = append(body[:200:200], "…"...)
	}
	return fmt.Sprintf("%d %s (after %v)", r.status, body, r.took.Round(time.Millisecond))
}

// ldapDo sends one request with the Authorization header authz ("" for none).
func ldapDo(t testing.TB, method, u, authz string, headers map[string]string, body []byte) ldapResp {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := ldapClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v (after %v)", method, u, err, time.Since(start))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, u, err)
	}
	return ldapResp{status: resp.StatusCode, header: resp.Header, body: data, took: time.Since(start)}
}

// ldapWant fails unless r has the status (and, when code is set, the OCI error code).
func ldapWant(t testing.TB, what string, r ldapResp, status int, code string) {
	t.Helper()
	if r.status != status || (code != "" && r.code() != code) {
		want := fmt.Sprint(status)
		if code != "" {
			want += " " + code
		}
		t.Errorf("%s: got %v, want %s", what, r, want)
	}
}

// ldapImage is a small single-layer image, distinct per name.
type ldapImage struct {
	blobs    map[string][]byte // digest → bytes
	manifest []byte
	digest   string // of the manifest
}

func ldapDigest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func newLDAPImage(name string) ldapImage {
	layer := []byte("layer of " + name)
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Labels":{"name":%q}},"rootfs":{"type":"layers","diff_ids":[%q]}}`, name, ldapDigest(layer)))
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		clMTManifest, ldapDigest(config), len(config), ldapDigest(layer), len(layer)))
	return ldapImage{blobs: map[string][]byte{ldapDigest(config): config, ldapDigest(layer): layer}, manifest: manifest, digest: ldapDigest(manifest)}
}

// tryPush uploads the image's blobs (monolithic POST) and PUTs its manifest as repo:tag
// with authz; it returns the first response that is not a success, or the manifest PUT.
func (img ldapImage) tryPush(t testing.TB, b *Berth, authz, repo, tag string) ldapResp {
	t.Helper()
	for d, data := range img.blobs {
		r := ldapDo(t, http.MethodPost, b.URL("/v2/"+repo+"/blobs/uploads/?digest="+d), authz,
			map[string]string{"Content-Type": "application/octet-stream"}, data)
		if r.status != http.StatusCreated {
			return r
		}
	}
	return ldapDo(t, http.MethodPut, b.URL("/v2/"+repo+"/manifests/"+tag), authz, map[string]string{"Content-Type": clMTManifest}, img.manifest)
}

// push is tryPush that must succeed.
func (img ldapImage) push(t testing.TB, b *Berth, authz, repo, tag string) {
	t.Helper()
	r := img.tryPush(t, b, authz, repo, tag)
	if r.status != http.StatusCreated || r.header.Get("Docker-Content-Digest") != img.digest {
		t.Fatalf("push %s:%s: %v, Docker-Content-Digest %q, want 201 %s", repo, tag, r, r.header.Get("Docker-Content-Digest"), img.digest)
	}
}

// pull GETs the manifest and every blob of the image from repo:ref and checks the bytes.
func (img ldapImage) pull(t testing.TB, b *Berth, authz, repo, ref string) {
	t.Helper()
	r := ldapDo(t, http.MethodGet, b.URL("/v2/"+repo+"/manifests/"+ref), authz, map[string]string{"Accept": clMTManifest}, nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, img.manifest) {
		t.Fatalf("pull %s:%s: %v", repo, ref, r)
	}
	for d, want := range img.blobs {
		r := ldapDo(t, http.MethodGet, b.URL("/v2/"+repo+"/blobs/"+d), authz, nil, nil)
		if r.status != http.StatusOK || !bytes.Equal(r.body, want) {
			t.Fatalf("pull blob %s of %s: %v", d, repo, r)
		}
	}
}

// ldapToken runs the token flow's first step: GET /token with Basic credentials and a
// scope. It returns the response and, on 200, the token and its claims.
func ldapToken(t testing.TB, b *Berth, user, pass, scope string) (ldapResp, string, ldapClaims) {
	t.Helper()
	q := url.Values{"service": {"berth"}}
	if scope != "" {
		q.Set("scope", scope)
	}
	r := ldapDo(t, http.MethodGet, b.URL("/token?"+q.Encode()), ldapBasic(user, pass), nil, nil)
	if r.status != http.StatusOK {
		return r, "", ldapClaims{}
	}
	var tr struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(r.body, &tr); err != nil || tr.Token == "" {
		t.Fatalf("token response %v: %v", r, err)
	}
	parts := strings.Split(tr.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", tr.Token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token payload: %v", err)
	}
	var c ldapClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("token claims %s: %v", payload, err)
	}
	return r, tr.Token, c
}

type ldapClaims struct {
	Subject string `json:"sub"`
	Access  []struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	} `json:"access"`
}

// actions are the sorted actions granted on repository repo.
func (c ldapClaims) actions(repo string) []string {
	var out []string
	for _, a := range c.Access {
		if a.Type == "repository" && a.Name == repo {
			out = append(out, a.Actions...)
		}
	}
	slices.Sort(out)
	return out
}

// ldapBlackhole accepts TCP connections and never answers: a directory that hangs.
func ldapBlackhole(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestLDAP(t *testing.T) {
	dir := ldaptest.Start(t) // private: the outage case stops it
	const timeout = 3 * time.Second
	b := startBerth(t, BerthOptions{Config: ldapBerthConfig(dir.URL, "", timeout)})
	admin := ldapBasic(ldapAdmin, ldapAdminPass)
	alice := ldapBasic(ldaptest.Alice, ldaptest.AlicePassword)
	bob := ldapBasic(ldaptest.Bob, ldaptest.BobPassword)
	carol := ldapBasic(ldaptest.Carol, ldaptest.CarolPassword)
	dave := ldapBasic(ldaptest.Dave, ldaptest.DavePassword)

	// The local admin creates project "team" (a first push would otherwise make its
	// pusher the project's admin), so LDAP users' rights there come from groupRoles alone.
	base := newLDAPImage("base")
	base.push(t, b, admin, "team/base", "v1")
	ldapWant(t, "anonymous GET /v2/", ldapDo(t, http.MethodGet, b.URL("/v2/"), "", nil, nil), http.StatusUnauthorized, "UNAUTHORIZED")

	t.Run("valid users log in", func(t *testing.T) {
		for name, authz := range map[string]string{"alice": alice, "bob": bob, "carol (no group)": carol, "dave (DN with metacharacters)": dave} {
			ldapWant(t, name+": Basic GET /v2/", ldapDo(t, http.MethodGet, b.URL("/v2/"), authz, nil, nil), http.StatusOK, "")
		}
		r, _, c := ldapToken(t, b, ldaptest.Alice, ldaptest.AlicePassword, "")
		if r.status != http.StatusOK || c.Subject != "alice" {
			t.Errorf("alice: GET /token: %v, sub %q", r, c.Subject)
		}
		// The web UI's login form takes directory accounts too.
		web, _ := uiLogin(t, b.URL(""), ldaptest.Alice, ldaptest.AlicePassword)
		if page := uiGet(t, web, b.URL("/account")); !strings.Contains(page, "<dd>ldap</dd>") {
			t.Errorf("alice's account page after a UI login does not say ldap")
		}
		// Directories match names case-insensitively: ALICE is alice's one account.
		r, _, c = ldapToken(t, b, "ALICE", ldaptest.AlicePassword, "repository:team/base:pull")
		if r.status != http.StatusOK || c.Subject != "alice" || !slices.Equal(c.actions("team/base"), []string{"pull"}) {
			t.Errorf("ALICE: GET /token: %v, claims %+v; want alice with pull on team/base", r, c)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		for _, pw := range []string{"wrong", ldaptest.BobPassword, strings.ToUpper(ldaptest.AlicePassword), ldaptest.ServicePassword} {
			ldapWant(t, "Basic GET /v2/", ldapDo(t, http.MethodGet, b.URL("/v2/"), ldapBasic(ldaptest.Alice, pw), nil, nil), http.StatusUnauthorized, "UNAUTHORIZED")
			r, _, _ := ldapToken(t, b, ldaptest.Alice, pw, "repository:team/base:pull")
			ldapWant(t, "GET /token", r, http.StatusUnauthorized, "UNAUTHORIZED")
		}
		r := ldapDo(t, http.MethodGet, b.URL("/v2/team/base/manifests/v1"), ldapBasic(ldaptest.Alice, "wrong"), map[string]string{"Accept": clMTManifest}, nil)
		ldapWant(t, "pull with a wrong password", r, http.StatusUnauthorized, "UNAUTHORIZED")
	})

	t.Run("unknown user", func(t *testing.T) {
		// twin is ambiguous (two entries): never a login, even with the right password.
		for user, pw := range map[string]string{"mallory": ldaptest.AlicePassword, "berth-svc": ldaptest.ServicePassword, ldaptest.Twin: ldaptest.TwinPassword, "alice*": ldaptest.AlicePassword} {
			ldapWant(t, user+": Basic GET /v2/", ldapDo(t, http.MethodGet, b.URL("/v2/"), ldapBasic(user, pw), nil, nil), http.StatusUnauthorized, "UNAUTHORIZED")
			r, _, _ := ldapToken(t, b, user, pw, "repository:team/base:pull")
			ldapWant(t, user+": GET /token", r, http.StatusUnauthorized, "UNAUTHORIZED")
		}
	})

	aliceImg, daveImg := newLDAPImage("alice"), newLDAPImage("dave")
	t.Run("group-mapped developer pushes", func(t *testing.T) {
		aliceImg.push(t, b, alice, "team/app", "alice")
		aliceImg.pull(t, b, alice, "team/app", "alice")
		base.pull(t, b, alice, "team/base", "v1")
		daveImg.push(t, b, dave, "team/app", "dave")
		// Developers push but do not delete.
		r := ldapDo(t, http.MethodDelete, b.URL("/v2/team/app/manifests/"+aliceImg.digest), alice, nil, nil)
		ldapWant(t, "developer alice deletes", r, http.StatusForbidden, "DENIED")
	})

	t.Run("user without the group is denied", func(t *testing.T) {
		r := newLDAPImage("carol").tryPush(t, b, carol, "team/app", "carol")
		ldapWant(t, "carol pushes to team", r, http.StatusForbidden, "DENIED")
		r = ldapDo(t, http.MethodGet, b.URL("/v2/team/base/manifests/v1"), carol, map[string]string{"Accept": clMTManifest}, nil)
		ldapWant(t, "carol pulls from team", r, http.StatusForbidden, "DENIED")
		// all-staff has no mapping: bob's rights come from team-admins alone, alice's from team-devs.
	})

	t.Run("token flow", func(t *testing.T) {
		r, tok, c := ldapToken(t, b, ldaptest.Alice, ldaptest.AlicePassword, "repository:team/app:pull,push,delete")
		if r.status != http.StatusOK || !slices.Equal(c.actions("team/app"), []string{"pull", "push"}) {
			t.Fatalf("alice asks for pull,push,delete on team/app: %v, granted %v; want [pull push]", r, c.actions("team/app"))
		}
		img := newLDAPImage("alice-token")
		img.push(t, b, "Bearer "+tok, "team/app", "alice-token")
		img.pull(t, b, "Bearer "+tok, "team/app", "alice-token")

		r, tok, c = ldapToken(t, b, ldaptest.Carol, ldaptest.CarolPassword, "repository:team/app:pull,push")
		if r.status != http.StatusOK || len(c.actions("team/app")) != 0 {
			t.Fatalf("carol asks for pull,push on team/app: %v, granted %v; want a token granting nothing", r, c.actions("team/app"))
		}
		r = newLDAPImage("carol-token").tryPush(t, b, "Bearer "+tok, "team/app", "carol-token")
		ldapWant(t, "carol pushes with her token", r, http.StatusUnauthorized, "UNAUTHORIZED")
		if h := r.header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) {
			t.Errorf("carol's push: WWW-Authenticate %q, want insufficient_scope", h)
		}

		r, tok, c = ldapToken(t, b, ldaptest.Bob, ldaptest.BobPassword, "repository:team/app:pull,push,delete")
		if r.status != http.StatusOK || !slices.Equal(c.actions("team/app"), []string{"delete", "pull", "push"}) {
			t.Fatalf("bob asks for pull,push,delete on team/app: %v, granted %v", r, c.actions("team/app"))
		}
		r = ldapDo(t, http.MethodDelete, b.URL("/v2/team/app/manifests/"+img.digest), "Bearer "+tok, nil, nil)
		ldapWant(t, "bob deletes with his token", r, http.StatusAccepted, "")
	})

	t.Run("team-admins member deletes", func(t *testing.T) {
		r := ldapDo(t, http.MethodDelete, b.URL("/v2/team/app/manifests/"+daveImg.digest), bob, nil, nil)
		ldapWant(t, "bob deletes", r, http.StatusAccepted, "")
		r = ldapDo(t, http.MethodGet, b.URL("/v2/team/app/manifests/dave"), bob, map[string]string{"Accept": clMTManifest}, nil)
		ldapWant(t, "GET after delete", r, http.StatusNotFound, "MANIFEST_UNKNOWN")
		aliceImg.pull(t, b, bob, "team/app", "alice") // the rest is untouched
	})

	t.Run("crane through the token flow", func(t *testing.T) {
		requireTool(t, "crane")
		env := toolEnv(t)
		home := strings.TrimPrefix(env[0], "HOME=")
		layer := ldapLayerTar(t, filepath.Join(home, "layer.tar"))
		ref := b.Addr + "/team/crane:1"

		run(t, env, "crane", "auth", "login", b.Addr, "-u", ldaptest.Alice, "-p", ldaptest.AlicePassword)
		cfg, err := os.ReadFile(filepath.Join(home, ".docker", "config.json"))
		if err != nil || !strings.Contains(string(cfg), b.Addr) {
			t.Fatalf("crane auth login did not write config.json: %v\n%s", err, cfg)
		}
		run(t, env, "crane", "append", "--new_layer", layer, "--new_tag", ref)
		d := strings.TrimSpace(run(t, env, "crane", "digest", ref))
		if got := clLines(run(t, env, "crane", "ls", b.Addr+"/team/crane")); !slices.Equal(got, []string{"1"}) {
			t.Errorf("crane ls team/crane = %v, want [1]", got)
		}
		// The same through raw HTTP as bob, and crane's pull as alice.
		if r := ldapDo(t, http.MethodHead, b.URL("/v2/team/crane/manifests/1"), bob, map[string]string{"Accept": clManifestAccept}, nil); r.status != http.StatusOK || r.header.Get("Docker-Content-Digest") != d {
			t.Errorf("HEAD team/crane:1 as bob: %v, digest %q, want %s", r, r.header.Get("Docker-Content-Digest"), d)
		}
		run(t, env, "crane", "pull", "--format", "oci", ref, filepath.Join(home, "pulled"))
		out, err := runErr(env, "crane", "delete", b.Addr+"/team/crane@"+d)
		if err == nil || !craneDenied(out) {
			t.Errorf("crane delete as developer alice: err %v, want a denial; output:\n%s", err, out)
		}

		// carol's credentials, written the way docker login would: login works, push is denied.
		auth := base64.StdEncoding.EncodeToString([]byte(ldaptest.Carol + ":" + ldaptest.CarolPassword))
		if err := os.WriteFile(filepath.Join(home, ".docker", "config.json"), fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, b.Addr, auth), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err = runErr(env, "crane", "append", "--new_layer", layer, "--new_tag", b.Addr+"/team/crane:carol")
		if err == nil || !craneDenied(out) {
			t.Errorf("crane push as carol: err %v, want a denial; output:\n%s", err, out)
		}
		// bob (team-admins) deletes with crane.
		auth = base64.StdEncoding.EncodeToString([]byte(ldaptest.Bob + ":" + ldaptest.BobPassword))
		if err := os.WriteFile(filepath.Join(home, ".docker", "config.json"), fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, b.Addr, auth), 0o600); err != nil {
			t.Fatal(err)
		}
		run(t, env, "crane", "delete", b.Addr+"/team/crane@"+d)
	})

	// A local account whose name is a directory user's (here the local admin is named
	// carol) belongs to the local password only: the directory user may not log into it,
	// in any letter case.
	t.Run("directory user cannot use a local account", func(t *testing.T) {
		cfg := strings.Replace(ldapBerthConfig(dir.URL, "", timeout), fmt.Sprintf("username: %q", ldapAdmin), fmt.Sprintf("username: %q", ldaptest.Carol), 1)
		b3 := startBerth(t, BerthOptions{Config: cfg})
		ldapWant(t, "local carol", ldapDo(t, http.MethodGet, b3.URL("/v2/"), ldapBasic(ldaptest.Carol, ldapAdminPass), nil, nil), http.StatusOK, "")
		for _, user := range []string{ldaptest.Carol, "CAROL", "Carol"} {
			r := ldapDo(t, http.MethodGet, b3.URL("/v2/"), ldapBasic(user, ldaptest.CarolPassword), nil, nil)
			ldapWant(t, user+" with the directory password", r, http.StatusUnauthorized, "UNAUTHORIZED")
			r, _, c := ldapToken(t, b3, user, ldaptest.CarolPassword, "repository:team/base:pull,push,delete")
			ldapWant(t, user+" with the directory password: GET /token", r, http.StatusUnauthorized, "UNAUTHORIZED")
			if len(c.Access) > 0 {
				t.Errorf("%s with the directory password was granted %+v", user, c.Access)
			}
		}
	})

	t.Run("ldaps", func(t *testing.T) {
		b2 := startBerth(t, BerthOptions{Config: ldapBerthConfig(dir.LDAPSURL, dir.CAFile, timeout)})
		ldapWant(t, "alice over ldaps", ldapDo(t, http.MethodGet, b2.URL("/v2/"), alice, nil, nil), http.StatusOK, "")
		ldapWant(t, "wrong password over ldaps", ldapDo(t, http.MethodGet, b2.URL("/v2/"), ldapBasic(ldaptest.Alice, "wrong"), nil, nil), http.StatusUnauthorized, "UNAUTHORIZED")
	})

	// The directory is down: LDAP logins get 503 UNAVAILABLE (not 401: the password was
	// never checked) within the configured timeout, and the local admin still works.
	downChecks := func(t *testing.T, b *Berth, timeout time.Duration) {
		t.Helper()
		within := timeout + 2*time.Second
		for name, authz := range map[string]string{
			"dave": dave, "alice wrong password": ldapBasic(ldaptest.Alice, "wrong"), "unknown user": ldapBasic("mallory", "x"),
		} {
			r := ldapDo(t, http.MethodGet, b.URL("/v2/"), authz, nil, nil)
			ldapWant(t, name+": Basic GET /v2/", r, http.StatusServiceUnavailable, "UNAVAILABLE")
			if r.took > within {
				t.Errorf("%s: Basic GET /v2/ took %v, want under %v", name, r.took, within)
			}
			r = ldapDo(t, http.MethodPost, b.URL("/v2/team/app/blobs/uploads/"), authz, nil, nil)
			ldapWant(t, name+": POST upload", r, http.StatusServiceUnavailable, "UNAVAILABLE")
		}
		r, _, _ := ldapToken(t, b, ldaptest.Dave, ldaptest.DavePassword, "repository:team/app:pull,push")
		ldapWant(t, "dave: GET /token", r, http.StatusServiceUnavailable, "UNAVAILABLE")
		if r.took > within {
			t.Errorf("GET /token took %v, want under %v", r.took, within)
		}
		t.Logf("LDAP login while the directory is down: %v", r)

		img := newLDAPImage("admin-during-outage-" + b.Addr)
		img.push(t, b, admin, "team/outage", "1")
		img.pull(t, b, admin, "team/outage", "1")
		r, tok, c := ldapToken(t, b, ldapAdmin, ldapAdminPass, "repository:team/outage:pull")
		if r.status != http.StatusOK || !slices.Equal(c.actions("team/outage"), []string{"pull"}) {
			t.Fatalf("admin token during the outage: %v, granted %v", r, c.actions("team/outage"))
		}
		img.pull(t, b, "Bearer "+tok, "team/outage", "1")
	}

	t.Run("directory hangs", func(t *testing.T) {
		const short = time.Second
		b2 := startBerth(t, BerthOptions{Config: ldapBerthConfig("ldap://"+ldapBlackhole(t), "", short)})
		base.push(t, b2, admin, "team/base", "v1")
		downChecks(t, b2, short)
	})

	t.Run("directory stopped", func(t *testing.T) {
		dir.Stop()
		// A new process: no login is remembered (the verified-credential cache), and
		// alice, bob, carol and dave now have local accounts from their first logins.
		b.Restart()
		downChecks(t, b, timeout)
		r := ldapDo(t, http.MethodGet, b.URL("/v2/"), alice, nil, nil)
		ldapWant(t, "alice (known account) while the directory is down", r, http.StatusServiceUnavailable, "UNAVAILABLE")
		aliceImg.pull(t, b, admin, "team/app", "alice")
	})
}

// craneDenied tells whether crane's output reports a 401 or 403 (HEAD answers have no
// body, so only the status may be shown).
func craneDenied(out string) bool {
	for _, s := range []string{"DENIED", "UNAUTHORIZED", "401 Unauthorized", "403 Forbidden"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// ldapLayerTar writes a one-file layer tarball for crane append and returns its path.
func ldapLayerTar(t testing.TB, path string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	content := []byte("pushed by an LDAP user\n")
	if err := tw.WriteHeader(&tar.Header{Name: "ldap.txt", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	tw.Write(content)
	tw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
