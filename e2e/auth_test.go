package e2e

// Multi-tenant access control against a real berth with auth enabled: the role × action
// matrix over HTTP (Docker token flow and Basic), token scoping, escalation and forgery,
// failed-login rate limiting, real clients logging in through the token flow, and the
// audit trail of all of it. Identities are set up by opening berth's SQLite database
// directly (WAL lets the test write while berth runs).

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/meta"
)

const (
	auAdminPass  = "admin-password-e2e"
	auPass       = "user-password-e2e" // every test user's password
	auRobotPass  = "robot-secret-e2e-0123456789"
	auMTManifest = "application/vnd.oci.image.manifest.v1+json"
	auMTConfig   = "application/vnd.oci.image.config.v1+json"
	auMTLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	auMTEmpty    = "application/vnd.oci.empty.v1+json"
)

// auWorld is a berth with auth enabled and a handle on its database.
type auWorld struct {
	b *Berth
	m *meta.Store
}

// startAuthBerth starts berth with auth on; extra is appended under the auth: key.
func startAuthBerth(t *testing.T, extra string) *auWorld {
	t.Helper()
	cfg := "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + auAdminPass + "\n" + extra
	b := startBerth(t, BerthOptions{Config: cfg})
	m, err := meta.Open(context.Background(), meta.Options{Dialect: meta.SQLite, DSN: filepath.Join(b.Data, "berth.db")})
	if err != nil {
		t.Fatalf("open berth's database: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return &auWorld{b: b, m: m}
}

// auSetup is the identity model of the tests (all passwords auPass, robot secrets auRobotPass):
//
//	team   (private): gina guest, dave developer, mia maintainer, paul admin
//	other  (private): dave developer
//	pub    (public):  no members
//	secret (private): no members
//	olga: no memberships; dora: disabled; admin: system administrator (from the config)
//	robot$team+pull|push|delete: one permission each on team; robot$team+off: disabled;
//	robot$team+old: expired (both with every permission on team)
func (w *auWorld) setup(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	uh, err := auth.HashPassword(auPass)
	if err != nil {
		t.Fatal(err)
	}
	rh, err := auth.HashPassword(auRobotPass)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []meta.User{{Name: "gina"}, {Name: "dave"}, {Name: "mia"}, {Name: "paul"}, {Name: "olga"}, {Name: "dora", Disabled: true}} {
		u.PasswordHash = uh
		if _, err := w.m.CreateUser(ctx, u); err != nil {
			t.Fatalf("user %s: %v", u.Name, err)
		}
	}
	for _, p := range []meta.Project{{Name: "team"}, {Name: "other"}, {Name: "pub", Public: true}, {Name: "secret"}} {
		if _, err := w.m.CreateProject(ctx, p, "", ""); err != nil {
			t.Fatalf("project %s: %v", p.Name, err)
		}
	}
	for _, mb := range []meta.Member{
		{Project: "team", Principal: "user:gina", Role: "guest"},
		{Project: "team", Principal: "user:dave", Role: "developer"},
		{Project: "team", Principal: "user:mia", Role: "maintainer"},
		{Project: "team", Principal: "user:paul", Role: "admin"},
		{Project: "other", Principal: "user:dave", Role: "developer"},
	} {
		if err := w.m.SetMember(ctx, mb); err != nil {
			t.Fatal(err)
		}
	}
	every := `[{"project":"team","actions":["pull","push","delete"]}]`
	for _, r := range []meta.Robot{
		{Name: "robot$team+pull", Permissions: `[{"project":"team","actions":["pull"]}]`},
		{Name: "robot$team+push", Permissions: `[{"project":"team","actions":["push"]}]`},
		{Name: "robot$team+delete", Permissions: `[{"project":"team","actions":["delete"]}]`},
		{Name: "robot$team+off", Permissions: every, Disabled: true},
		{Name: "robot$team+old", Permissions: every, ExpiresAt: time.Now().Add(-time.Hour)},
	} {
		r.Project, r.SecretHash = "team", rh
		if _, err := w.m.CreateRobot(ctx, r); err != nil {
			t.Fatalf("robot %s: %v", r.Name, err)
		}
	}
}

// ---------------------------------------------------------------- HTTP

type auResp struct {
	status    int
	header    http.Header
	body      []byte
	fromToken bool   // the token endpoint refused; the registry was not asked again
	token     string // the Bearer token used, in token mode
}

func auDo(t testing.TB, method, u string, hdr map[string]string, body []byte) auResp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return auResp{status: resp.StatusCode, header: resp.Header, body: data}
}

func auBasic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func auWith(hdr map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range hdr {
		out[kk] = vv
	}
	return out
}

// auAdmin sends a request as the system administrator with Basic credentials.
func (w *auWorld) admin(t testing.TB, method, path string, hdr map[string]string, body []byte) auResp {
	t.Helper()
	return auDo(t, method, w.b.URL(path), auWith(hdr, "Authorization", auBasic("admin", auAdminPass)), body)
}

var auChallengeParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

// auChallenge parses a Bearer challenge; ok is false for any other scheme.
func auChallenge(h string) (map[string]string, bool) {
	if !strings.HasPrefix(h, "Bearer ") {
		return nil, false
	}
	out := map[string]string{}
	for _, m := range auChallengeParam.FindAllStringSubmatch(h, -1) {
		out[m[1]] = m[2]
	}
	return out, true
}

// auClient is a caller: user "" is anonymous. In "token" mode it does what Docker
// clients do (request, read the Bearer challenge, get a token for exactly the challenged
// scope from the realm, retry with it); in "basic" mode it sends Basic credentials.
type auClient struct {
	w          *auWorld
	user, pass string
	mode       string
}

func (c *auClient) do(t testing.TB, method, path string, hdr map[string]string, body []byte) auResp {
	t.Helper()
	u := c.w.b.URL(path)
	if c.mode == "basic" {
		if c.user != "" {
			hdr = auWith(hdr, "Authorization", auBasic(c.user, c.pass))
		}
		return auDo(t, method, u, hdr, body)
	}
	first := auDo(t, method, u, hdr, body)
	if first.status != http.StatusUnauthorized {
		return first
	}
	ch, ok := auChallenge(first.header.Get("WWW-Authenticate"))
	if !ok {
		t.Errorf("%s %s: 401 without a Bearer challenge: %q", method, path, first.header.Get("WWW-Authenticate"))
		return first
	}
	tok, tr := c.token(t, ch["realm"], ch["service"], ch["scope"])
	if tok == "" {
		tr.fromToken = true
		return tr
	}
	r := auDo(t, method, u, auWith(hdr, "Authorization", "Bearer "+tok), body)
	r.token = tok
	return r
}

// token asks the realm for a token (GET, Basic or anonymous); "" when refused.
func (c *auClient) token(t testing.TB, realm, service string, scopes ...string) (string, auResp) {
	t.Helper()
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range scopes {
		if s != "" {
			q.Add("scope", s)
		}
	}
	var hdr map[string]string
	if c.user != "" {
		hdr = map[string]string{"Authorization": auBasic(c.user, c.pass)}
	}
	r := auDo(t, http.MethodGet, realm+"?"+q.Encode(), hdr, nil)
	if r.status != http.StatusOK {
		return "", r
	}
	var tr struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}
	if err := json.Unmarshal(r.body, &tr); err != nil || tr.Token == "" || tr.Token != tr.AccessToken || tr.ExpiresIn <= 0 || tr.IssuedAt == "" {
		t.Fatalf("token response %s: %v", r.body, err)
	}
	return tr.Token, r
}

// auErrCode returns the code of an OCI error body ("" if it is not one).
func auErrCode(body []byte) string {
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 || e.Errors[0].Message == "" {
		return ""
	}
	return e.Errors[0].Code
}

// auClaims decodes a JWT's payload without verifying it.
type auClaims struct {
	Iss    string        `json:"iss"`
	Sub    string        `json:"sub"`
	Aud    any           `json:"aud"`
	Exp    int64         `json:"exp"`
	Nbf    int64         `json:"nbf"`
	Iat    int64         `json:"iat"`
	Jti    string        `json:"jti"`
	Access []auth.Access `json:"access"`
}

func auDecode(t testing.TB, tok string) auClaims {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c auClaims
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("JWT payload %s: %v", raw, err)
	}
	return c
}

// ---------------------------------------------------------------- content

func auDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return fmt.Sprintf("sha256:%x", sum)
}

type auDesc struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Digest       string            `json:"digest"`
	Size         int               `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

func auDescOf(mt string, b []byte) auDesc {
	return auDesc{MediaType: mt, Digest: auDigest(b), Size: len(b)}
}

func auManifest(config auDesc, layers []auDesc, subject *auDesc, artifactType string, ann map[string]string) []byte {
	m := map[string]any{"schemaVersion": 2, "mediaType": auMTManifest, "config": config, "layers": layers}
	if subject != nil {
		m["subject"] = subject
	}
	if artifactType != "" {
		m["artifactType"] = artifactType
	}
	if ann != nil {
		m["annotations"] = ann
	}
	out, _ := json.Marshal(m)
	return out
}

// auImage is a runnable-looking linux/amd64 image: one gzip layer with one file.
type auImage struct {
	config, layer, manifest []byte
}

func newAuImage(t testing.TB, content string) auImage {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	if err := tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte(content))
	_ = tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(tarBuf.Bytes())
	_ = zw.Close()
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/hello"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{auDigest(tarBuf.Bytes())}},
	})
	layer := gz.Bytes()
	return auImage{config: cfg, layer: layer,
		manifest: auManifest(auDescOf(auMTConfig, cfg), []auDesc{auDescOf(auMTLayer, layer)}, nil, "", nil)}
}

// pushAs pushes blobs (monolithic) and a manifest with a client; it returns the
// responses of every step.
func pushAs(t testing.TB, c *auClient, repo, ref string, manifest []byte, blobs ...[]byte) []auResp {
	t.Helper()
	var out []auResp
	for _, b := range blobs {
		out = append(out, c.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+auDigest(b),
			map[string]string{"Content-Type": "application/octet-stream"}, b))
	}
	return append(out, c.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, map[string]string{"Content-Type": auMTManifest}, manifest))
}

func (w *auWorld) adminClient() *auClient {
	return &auClient{w: w, user: "admin", pass: auAdminPass, mode: "basic"}
}

// seed pushes an image as the administrator.
func (w *auWorld) seed(t testing.TB, repo, ref string, manifest []byte, blobs ...[]byte) {
	t.Helper()
	for _, r := range pushAs(t, w.adminClient(), repo, ref, manifest, blobs...) {
		if r.status != http.StatusCreated {
			t.Fatalf("seed %s:%s: %d %s", repo, ref, r.status, r.body)
		}
	}
}

func (w *auWorld) exists(t testing.TB, repo, ref string) bool {
	t.Helper()
	r := w.admin(t, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, map[string]string{"Accept": auMTManifest}, nil)
	switch r.status {
	case http.StatusOK:
		return true
	case http.StatusNotFound:
		return false
	}
	t.Fatalf("admin GET %s:%s: %d %s", repo, ref, r.status, r.body)
	return false
}

// ---------------------------------------------------------------- matrix

type auPrincipal struct {
	name, user, pass string
	// valid: the credentials authenticate (anonymous counts as valid, it has none).
	valid bool
	// team: what it may do on team/app; catalog: the repositories it sees (nil: the
	// catalog is refused).
	pull, push, del bool
	catalog         []string
}

func auSlug(s string) string {
	return regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(s, "-")
}

// TestAuthMatrix drives every principal through every action on a private project, with
// the token flow and with Basic, then checks public-project reads, token scoping,
// escalation and forgeries, and the audit trail.
func TestAuthMatrix(t *testing.T) {
	start := time.Now()
	w := startAuthBerth(t, "  failedLogins:\n    max: 100000\n")
	w.setup(t)

	// Content: team/app:v1 (an image), a referrer of it, other/app:v1, pub/app:v1.
	img := newAuImage(t, "team app v1\n")
	w.seed(t, "team/app", "v1", img.manifest, img.config, img.layer)
	v1 := auDigest(img.manifest)
	empty := []byte("{}")
	emptyDesc := auDescOf(auMTEmpty, empty)
	subject := auDescOf(auMTManifest, img.manifest)
	sig := auManifest(emptyDesc, []auDesc{emptyDesc}, &subject, "application/vnd.e2e.signature", nil)
	w.seed(t, "team/app", auDigest(sig), sig, empty)
	for _, repo := range []string{"other/app", "pub/app"} {
		w.seed(t, repo, "v1", img.manifest, img.config, img.layer)
	}

	all := []string{"other/app", "pub/app", "team/app"}
	principals := []auPrincipal{
		{name: "anonymous", valid: true},
		{name: "guest", user: "gina", pass: auPass, valid: true, pull: true, catalog: []string{"pub/app", "team/app"}},
		{name: "developer", user: "dave", pass: auPass, valid: true, pull: true, push: true, catalog: all},
		{name: "maintainer", user: "mia", pass: auPass, valid: true, pull: true, push: true, del: true, catalog: []string{"pub/app", "team/app"}},
		{name: "project admin", user: "paul", pass: auPass, valid: true, pull: true, push: true, del: true, catalog: []string{"pub/app", "team/app"}},
		{name: "system admin", user: "admin", pass: auAdminPass, valid: true, pull: true, push: true, del: true, catalog: all},
		{name: "outsider", user: "olga", pass: auPass, valid: true, catalog: []string{"pub/app"}},
		{name: "wrong password", user: "dave", pass: "not-the-password"},
		{name: "disabled user", user: "dora", pass: auPass},
		{name: "robot pull", user: "robot$team+pull", pass: auRobotPass, valid: true, pull: true, catalog: []string{"pub/app", "team/app"}},
		{name: "robot push", user: "robot$team+push", pass: auRobotPass, valid: true, push: true, catalog: []string{"pub/app"}},
		{name: "robot delete", user: "robot$team+delete", pass: auRobotPass, valid: true, del: true, catalog: []string{"pub/app"}},
		{name: "disabled robot", user: "robot$team+off", pass: auRobotPass},
		{name: "expired robot", user: "robot$team+old", pass: auRobotPass},
	}
	modes := []string{"token", "basic"}

	// One deletable manifest per principal and mode, so that every allowed delete has
	// its own target and every denied one a target that must survive.
	delTarget := map[string]string{}
	for _, p := range principals {
		for _, mode := range modes {
			key := p.name + "/" + mode
			m := auManifest(auDescOf(auMTConfig, img.config), []auDesc{auDescOf(auMTLayer, img.layer)}, nil, "", map[string]string{"e2e.delete": key})
			tag := "del-" + auSlug(p.name) + "-" + mode
			w.seed(t, "team/app", tag, m)
			delTarget[key] = auDigest(m)
		}
	}

	for _, p := range principals {
		for _, mode := range modes {
			t.Run(mode+"/"+p.name, func(t *testing.T) {
				c := &auClient{w: w, user: p.user, pass: p.pass, mode: mode}
				authenticated := p.valid && p.user != ""
				// expect checks an allowed action's status, or a proper denial.
				expect := func(what string, allowed bool, r auResp, okStatus int, scope string) bool {
					t.Helper()
					if allowed {
						if r.status != okStatus {
							t.Errorf("%s: %d %s, want %d", what, r.status, r.body, okStatus)
							return false
						}
						return true
					}
					auExpectDenied(t, w, what, r, mode, authenticated, scope)
					return false
				}

				// Ping: any valid, authenticated caller.
				expect("GET /v2/", authenticated, c.do(t, http.MethodGet, "/v2/", nil, nil), http.StatusOK, "")

				// Pull: the manifest and a blob.
				r := c.do(t, http.MethodGet, "/v2/team/app/manifests/v1", map[string]string{"Accept": auMTManifest}, nil)
				if expect("pull manifest", p.pull, r, http.StatusOK, "repository:team/app:pull") && !bytes.Equal(r.body, img.manifest) {
					t.Errorf("pulled manifest differs: %s", r.body)
				}
				r = c.do(t, http.MethodGet, "/v2/team/app/blobs/"+auDigest(img.layer), nil, nil)
				if expect("pull blob", p.pull, r, http.StatusOK, "repository:team/app:pull") && !bytes.Equal(r.body, img.layer) {
					t.Error("pulled blob differs")
				}

				// Push: a new blob, then a manifest using it.
				layer := []byte("layer pushed by " + p.name + " with " + mode)
				tag := "push-" + auSlug(p.name) + "-" + mode
				m := auManifest(auDescOf(auMTConfig, img.config), []auDesc{auDescOf(auMTLayer, layer)}, nil, "", nil)
				steps := pushAs(t, c, "team/app", tag, m, layer)
				expect("push blob", p.push, steps[0], http.StatusCreated, "repository:team/app:push")
				if !p.push {
					// The manifest PUT is refused on its own too (its blobs all exist).
					m = auManifest(auDescOf(auMTConfig, img.config), []auDesc{auDescOf(auMTLayer, img.layer)}, nil, "", map[string]string{"by": p.name})
					steps[1] = c.do(t, http.MethodPut, "/v2/team/app/manifests/"+tag, map[string]string{"Content-Type": auMTManifest}, m)
				}
				expect("push manifest", p.push, steps[1], http.StatusCreated, "repository:team/app:push")
				if got := w.exists(t, "team/app", tag); got != p.push {
					t.Errorf("after the push, team/app:%s exists=%v, want %v", tag, got, p.push)
				}

				// Delete.
				target := delTarget[p.name+"/"+mode]
				r = c.do(t, http.MethodDelete, "/v2/team/app/manifests/"+target, nil, nil)
				expect("delete manifest", p.del, r, http.StatusAccepted, "repository:team/app:delete")
				if got := w.exists(t, "team/app", target); got == p.del {
					t.Errorf("after the delete, the manifest exists=%v", got)
				}

				// Tag list and referrers: readers only.
				r = c.do(t, http.MethodGet, "/v2/team/app/tags/list", nil, nil)
				if expect("tag list", p.pull, r, http.StatusOK, "repository:team/app:pull") {
					var tl struct{ Tags []string }
					if json.Unmarshal(r.body, &tl) != nil || !slices.Contains(tl.Tags, "v1") {
						t.Errorf("tag list %s lacks v1", r.body)
					}
				}
				r = c.do(t, http.MethodGet, "/v2/team/app/referrers/"+v1, nil, nil)
				if expect("referrers", p.pull, r, http.StatusOK, "repository:team/app:pull") {
					if !bytes.Contains(r.body, []byte(auDigest(sig))) {
						t.Errorf("referrers %s lack the signature", r.body)
					}
				}

				// Catalog: only what the caller may pull.
				r = c.do(t, http.MethodGet, "/v2/_catalog", nil, nil)
				if expect("catalog", p.catalog != nil, r, http.StatusOK, "registry:catalog:*") {
					var cl struct{ Repositories []string }
					if err := json.Unmarshal(r.body, &cl); err != nil {
						t.Fatalf("catalog %s: %v", r.body, err)
					}
					sort.Strings(cl.Repositories)
					if !slices.Equal(cl.Repositories, p.catalog) {
						t.Errorf("catalog lists %v, want %v", cl.Repositories, p.catalog)
					}
				}

				// A public project: every valid caller reads it, nobody else writes it.
				if p.valid {
					r = c.do(t, http.MethodGet, "/v2/pub/app/manifests/v1", map[string]string{"Accept": auMTManifest}, nil)
					expect("pull public", true, r, http.StatusOK, "")
					r = c.do(t, http.MethodGet, "/v2/pub/app/tags/list", nil, nil)
					expect("tag list public", true, r, http.StatusOK, "")
					if mode == "token" && p.user != "" {
						// Docker clients holding credentials always present a token, so
						// the token must carry the public pull too.
						tok, tr := c.token(t, w.b.URL("/token"), "berth", "repository:pub/app:pull")
						if tok == "" {
							t.Fatalf("token for pub/app: %d %s", tr.status, tr.body)
						}
						r = auDo(t, http.MethodGet, w.b.URL("/v2/pub/app/manifests/v1"), map[string]string{"Authorization": "Bearer " + tok, "Accept": auMTManifest}, nil)
						expect("pull public with a token", true, r, http.StatusOK, "")
					}
					if p.name != "system admin" {
						r = c.do(t, http.MethodPut, "/v2/pub/app/manifests/x-"+auSlug(p.name), map[string]string{"Content-Type": auMTManifest}, img.manifest)
						expect("push public", false, r, 0, "repository:pub/app:push")
						r = c.do(t, http.MethodDelete, "/v2/pub/app/manifests/"+v1, nil, nil)
						expect("delete public", false, r, 0, "repository:pub/app:delete")
					}
				}
			})
		}
	}
	if !w.exists(t, "pub/app", "v1") {
		t.Error("pub/app:v1 was deleted")
	}

	t.Run("tokens", func(t *testing.T) { auTokenChecks(t, w, img, v1) })
	t.Run("audit", func(t *testing.T) {
		auWaitAudit(t, w, []auAuditWant{
			{"login ok (token flow)", meta.AuditFilter{Action: "login", Actor: "dave", Result: "ok"}},
			{"login ok (robot)", meta.AuditFilter{Action: "login", Actor: "robot$team+push", Result: "ok"}},
			{"login failed (wrong password)", meta.AuditFilter{Action: "login", Actor: "dave", Result: "failed"}},
			{"login failed (disabled user)", meta.AuditFilter{Action: "login", Actor: "dora", Result: "failed"}},
			{"login failed (disabled robot)", meta.AuditFilter{Action: "login", Actor: "robot$team+off", Result: "failed"}},
			{"login failed (expired robot)", meta.AuditFilter{Action: "login", Actor: "robot$team+old", Result: "failed"}},
			{"push by token", meta.AuditFilter{Action: "push", Actor: "dave", Resource: "team/app:push-developer-token", Result: "ok"}},
			{"push by basic", meta.AuditFilter{Action: "push", Actor: "dave", Resource: "team/app:push-developer-basic", Result: "ok"}},
			{"push by robot", meta.AuditFilter{Action: "push", Actor: "robot$team+push", Resource: "team/app:push-robot-push-token", Result: "ok"}},
			{"pull", meta.AuditFilter{Action: "pull", Actor: "gina", Resource: "team/app:v1", Result: "ok"}},
			{"denied push (upload start)", meta.AuditFilter{Action: "push", Actor: "gina", Resource: "team/app", Result: "denied"}},
			{"anonymous pull", meta.AuditFilter{Action: "pull", Actor: "anonymous", Resource: "pub/app:v1", Result: "ok"}},
			{"delete", meta.AuditFilter{Action: "delete", Actor: "mia", Resource: "team/app:" + delTarget["maintainer/token"], Result: "ok"}},
			{"delete by robot", meta.AuditFilter{Action: "delete", Actor: "robot$team+delete", Resource: "team/app:" + delTarget["robot delete/basic"], Result: "ok"}},
		})
	})
	t.Logf("TestAuthMatrix took %s", time.Since(start).Round(time.Millisecond))
}

// auExpectDenied checks a denial: 401 with a Bearer challenge for the anonymous caller,
// bad credentials and tokens without the scope; 403 DENIED for Basic credentials that
// authenticate but lack the right; always an OCI error body.
func auExpectDenied(t *testing.T, w *auWorld, what string, r auResp, mode string, authenticated bool, scope string) {
	t.Helper()
	code := auErrCode(r.body)
	if r.fromToken {
		if r.status != http.StatusUnauthorized || code != "UNAUTHORIZED" {
			t.Errorf("%s: token endpoint answered %d %s, want 401 UNAUTHORIZED", what, r.status, r.body)
		}
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: error Content-Type %q", what, ct)
	}
	if mode == "basic" && authenticated {
		if r.status != http.StatusForbidden || code != "DENIED" {
			t.Errorf("%s: %d %s, want 403 DENIED", what, r.status, r.body)
		}
		return
	}
	if r.status != http.StatusUnauthorized || code != "UNAUTHORIZED" {
		t.Errorf("%s: %d %s, want 401 UNAUTHORIZED", what, r.status, r.body)
		return
	}
	h := r.header.Get("WWW-Authenticate")
	ch, ok := auChallenge(h)
	if !ok {
		t.Errorf("%s: 401 without a Bearer challenge: %q", what, h)
		return
	}
	if ch["realm"] != w.b.URL("/token") || ch["service"] != "berth" {
		t.Errorf("%s: challenge %q: want realm %s and service berth", what, h, w.b.URL("/token"))
	}
	if scope != "" && ch["scope"] != scope {
		t.Errorf("%s: challenge scope %q, want %q", what, ch["scope"], scope)
	}
	if r.token != "" && auDecode(t, r.token).Sub != "anonymous" && ch["error"] != "insufficient_scope" {
		t.Errorf("%s: a token without the scope is answered with %q, want error=\"insufficient_scope\"", what, h)
	}
}

// auTokenChecks: scopes are intersected with rights; a token is good for its repository
// only; refresh tokens; forged tokens.
func auTokenChecks(t *testing.T, w *auWorld, img auImage, v1 string) {
	realm := w.b.URL("/token")
	client := func(user, pass string) *auClient { return &auClient{w: w, user: user, pass: pass, mode: "token"} }
	access := func(tok string) map[string][]string {
		out := map[string][]string{}
		for _, a := range auDecode(t, tok).Access {
			out[a.Type+":"+a.Name] = a.Actions
		}
		return out
	}

	t.Run("escalation", func(t *testing.T) {
		cases := []struct {
			who, user, pass string
			scopes          []string
			want            map[string][]string
		}{
			{"developer", "dave", auPass, []string{
				"repository:team/app:pull,push,delete", "repository:other/app:pull,push,delete",
				"repository:secret/app:pull", "repository:pub/app:pull,push", "registry:catalog:*",
				"repository:newproject/app:pull,push",
			}, map[string][]string{
				"repository:team/app": {"pull", "push"}, "repository:other/app": {"pull", "push"},
				"repository:pub/app": {"pull"}, "registry:catalog": {"*"},
				"repository:newproject/app": {"pull", "push"}, // a user's first push creates a project
			}},
			{"guest", "gina", auPass, []string{"repository:team/app:pull,push,delete", "repository:other/app:pull"},
				map[string][]string{"repository:team/app": {"pull"}}},
			{"maintainer, one space-separated scope parameter", "mia", auPass, []string{"repository:team/app:delete,push repository:secret/x:delete"},
				map[string][]string{"repository:team/app": {"delete", "push"}}},
			{"robot", "robot$team+pull", auRobotPass, []string{"repository:team/app:pull,push,delete", "repository:other/app:pull", "repository:newproject/app:push"},
				map[string][]string{"repository:team/app": {"pull"}}},
			{"anonymous", "", "", []string{"repository:team/app:pull", "repository:pub/app:pull,push", "registry:catalog:*", "repository:newproject/app:push"},
				map[string][]string{"repository:pub/app": {"pull"}}},
		}
		for _, c := range cases {
			tok, r := client(c.user, c.pass).token(t, realm, "berth", c.scopes...)
			if tok == "" {
				t.Errorf("%s: token refused: %d %s", c.who, r.status, r.body)
				continue
			}
			cl := auDecode(t, tok)
			if got := access(tok); !maps2Equal(got, c.want) {
				t.Errorf("%s asked for %v: access %v, want %v", c.who, c.scopes, got, c.want)
			}
			wantSub := c.user
			if wantSub == "" {
				wantSub = "anonymous"
			}
			if cl.Iss != "berth" || cl.Sub != wantSub || cl.Exp <= time.Now().Unix() || cl.Nbf == 0 || cl.Jti == "" || fmt.Sprint(cl.Aud) != "[berth]" && fmt.Sprint(cl.Aud) != "berth" {
				t.Errorf("%s: claims %+v", c.who, cl)
			}
		}
		// The token's grants are what the registry honours: a guest's token that was
		// asked for push does not push.
		tok, _ := client("gina", auPass).token(t, realm, "berth", "repository:team/app:pull,push")
		r := auDo(t, http.MethodPut, w.b.URL("/v2/team/app/manifests/escalate"), map[string]string{"Authorization": "Bearer " + tok, "Content-Type": auMTManifest}, img.manifest)
		auExpectDenied(t, w, "guest push with a token asked for push", r, "token", true, "repository:team/app:push")
		// An unknown service is refused.
		if _, r := client("dave", auPass).token(t, realm, "other-registry", "repository:team/app:pull"); r.status == http.StatusOK {
			t.Errorf("token for another service issued: %s", r.body)
		}
	})

	t.Run("token for project A on project B", func(t *testing.T) {
		tok, _ := client("dave", auPass).token(t, realm, "berth", "repository:team/app:pull,push")
		bearer := map[string]string{"Authorization": "Bearer " + tok, "Accept": auMTManifest}
		if r := auDo(t, http.MethodGet, w.b.URL("/v2/team/app/manifests/v1"), bearer, nil); r.status != http.StatusOK {
			t.Fatalf("token on its own repository: %d %s", r.status, r.body)
		}
		// dave may pull and push other/app, but not with this token.
		for _, c := range []struct{ method, path, scope string }{
			{http.MethodGet, "/v2/other/app/manifests/v1", "repository:other/app:pull"},
			{http.MethodGet, "/v2/other/app/tags/list", "repository:other/app:pull"},
			{http.MethodGet, "/v2/other/app/blobs/" + auDigest(img.layer), "repository:other/app:pull"},
			{http.MethodPost, "/v2/other/app/blobs/uploads/", "repository:other/app:push"},
			{http.MethodGet, "/v2/team/app2/manifests/v1", "repository:team/app2:pull"}, // same project, other repository
			{http.MethodGet, "/v2/team/manifests/v1", "repository:team:pull"},
		} {
			r := auDo(t, c.method, w.b.URL(c.path), bearer, nil)
			auExpectDenied(t, w, c.method+" "+c.path+" with a team/app token", r, "token", true, c.scope)
		}
		// Cross-repository mount from a repository the token does not cover is not a
		// mount: the blob must not appear in team/app without a read of other/app.
		only := []byte("blob only in other/app")
		w.seed(t, "other/app", "only", auManifest(auDescOf(auMTConfig, img.config), []auDesc{auDescOf(auMTLayer, only)}, nil, "", nil), only)
		r := auDo(t, http.MethodPost, w.b.URL("/v2/team/app/blobs/uploads/?mount="+auDigest(only)+"&from=other/app"), bearer, nil)
		if r.status == http.StatusCreated {
			t.Errorf("mount from other/app with a token for team/app only: 201 (blob copied across projects)")
		}
		if h := w.admin(t, http.MethodHead, "/v2/team/app/blobs/"+auDigest(only), nil, nil); h.status != http.StatusNotFound {
			t.Errorf("blob of other/app reachable in team/app after a refused mount: %d", h.status)
		}
	})

	t.Run("no blob crosses projects", func(t *testing.T) {
		// olga owns a project of her own (the first push creates it); other/app holds a
		// blob she must not reach by digest, from her project or the public one.
		secret := []byte("private blob of other/app")
		sd := auDigest(secret)
		w.seed(t, "other/app", "private", auManifest(auDescOf(auMTConfig, img.config), []auDesc{auDescOf(auMTLayer, secret)}, nil, "", nil), secret)
		olga := &auClient{w: w, user: "olga", pass: auPass, mode: "basic"}
		mine := []byte("olga's own blob")
		if r := pushAs(t, olga, "olgas/app", "mine", auManifest(auDescOf(auMTConfig, img.config), []auDesc{auDescOf(auMTLayer, mine)}, nil, "", nil), img.config, mine); r[len(r)-1].status != http.StatusCreated {
			t.Fatalf("olga's first push into her own project: %d %s", r[len(r)-1].status, r[len(r)-1].body)
		}
		anon := &auClient{w: w, mode: "basic"}
		for _, c := range []struct {
			who          *auClient
			method, path string
			body         []byte
			refuse       func(int) bool
			what         string
		}{
			{anon, http.MethodGet, "/v2/pub/app/blobs/" + sd, nil, auNot2xx, "anonymous GET of a private blob through a public repository"},
			{anon, http.MethodHead, "/v2/pub/app/blobs/" + sd, nil, auNot2xx, "anonymous HEAD of a private blob through a public repository"},
			{olga, http.MethodGet, "/v2/olgas/app/blobs/" + sd, nil, auNot2xx, "GET of a private blob through her own repository"},
			{olga, http.MethodPost, "/v2/olgas/app/blobs/uploads/?mount=" + sd + "&from=other/app", nil, auNot201, "mount from a private repository"},
			{olga, http.MethodPost, "/v2/olgas/app/blobs/uploads/?mount=" + sd + "&from=pub/app", nil, auNot201, "mount through a public repository"},
			{olga, http.MethodPost, "/v2/olgas/app/blobs/uploads/?mount=" + sd, nil, auNot201, "mount without from"},
			{olga, http.MethodPost, "/v2/olgas/app/blobs/uploads/?digest=" + sd, []byte("not the bytes"), auNot201, "monolithic upload of a known digest with other bytes"},
			{olga, http.MethodPut, "/v2/olgas/app/manifests/steal", auManifest(auDescOf(auMTConfig, img.config), []auDesc{auDescOf(auMTLayer, secret)}, nil, "", nil), auNot2xx, "manifest naming a blob she never uploaded"},
		} {
			hdr := map[string]string{}
			if c.method == http.MethodPut {
				hdr["Content-Type"] = auMTManifest
			}
			r := c.who.do(t, c.method, c.path, hdr, c.body)
			if !c.refuse(r.status) {
				t.Errorf("%s: %d %s", c.what, r.status, r.body)
			}
		}
		// ...and without any bytes (Content-Length: 0).
		if st, err := auTry(http.MethodPost, w.b.URL("/v2/olgas/app/blobs/uploads/?digest="+sd), auBasic("olga", auPass), nil); err != nil {
			t.Errorf("monolithic upload of a known digest with an empty body: %v (berth dropped the connection)", err)
		} else if st == http.StatusCreated {
			t.Errorf("monolithic upload of a known digest with an empty body: 201")
		}
		if h := w.admin(t, http.MethodHead, "/v2/olgas/app/blobs/"+sd, nil, nil); h.status != http.StatusNotFound {
			t.Errorf("the private blob is linked into olgas/app: HEAD %d", h.status)
		}
		// An upload session belongs to its repository: dave's session in team/app is
		// neither usable from olga's project nor by olga in team/app.
		dave := &auClient{w: w, user: "dave", pass: auPass, mode: "basic"}
		r := dave.do(t, http.MethodPost, "/v2/team/app/blobs/uploads/", nil, nil)
		loc := r.header.Get("Location")
		if r.status != http.StatusAccepted || !strings.Contains(loc, "/v2/team/app/blobs/uploads/") {
			t.Fatalf("dave starts an upload: %d %q", r.status, loc)
		}
		if lu, err := url.Parse(loc); err == nil {
			loc = lu.Path
		}
		id := loc[strings.LastIndex(loc, "/")+1:]
		data := []byte("olga's data in dave's session")
		r = olga.do(t, http.MethodPut, "/v2/olgas/app/blobs/uploads/"+id+"?digest="+auDigest(data), map[string]string{"Content-Type": "application/octet-stream"}, data)
		if r.status < 400 {
			t.Errorf("olga completed dave's team/app upload session from her project: %d", r.status)
		}
		r = olga.do(t, http.MethodPut, "/v2/team/app/blobs/uploads/"+id+"?digest="+auDigest(data), map[string]string{"Content-Type": "application/octet-stream"}, data)
		auExpectDenied(t, w, "olga completes dave's upload in team/app", r, "basic", true, "repository:team/app:push")
	})

	t.Run("empty blob", func(t *testing.T) {
		// The 0-byte blob pushed monolithically, as a developer may.
		emptyBlob := auDigest(nil)
		st, err := auTry(http.MethodPost, w.b.URL("/v2/team/app/blobs/uploads/?digest="+emptyBlob), auBasic("dave", auPass), nil)
		if err != nil || st != http.StatusCreated {
			t.Errorf("POST ?digest=%s with an empty body: status %d, error %v; want 201", emptyBlob, st, err)
		}
	})

	t.Run("refresh tokens", func(t *testing.T) {
		form := url.Values{"grant_type": {"password"}, "username": {"dave"}, "password": {auPass}, "service": {"berth"},
			"scope": {"repository:team/app:pull"}, "offline_token": {"true"}, "client_id": {"e2e"}}
		r := auDo(t, http.MethodPost, realm, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
		var tr struct {
			Token        string `json:"token"`
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &tr) != nil || tr.AccessToken == "" || tr.RefreshToken == "" {
			t.Fatalf("POST /token password grant: %d %s", r.status, r.body)
		}
		// The refresh token is not an access token.
		for _, path := range []string{"/v2/", "/v2/team/app/manifests/v1"} {
			r := auDo(t, http.MethodGet, w.b.URL(path), map[string]string{"Authorization": "Bearer " + tr.RefreshToken}, nil)
			if r.status != http.StatusUnauthorized || auErrCode(r.body) != "UNAUTHORIZED" {
				t.Errorf("refresh token as a Bearer token on %s: %d %s", path, r.status, r.body)
			}
		}
		// It buys an access token (scoped by current rights).
		form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "service": {"berth"},
			"scope": {"repository:team/app:pull,push,delete"}, "client_id": {"e2e"}}
		r = auDo(t, http.MethodPost, realm, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
		var tr2 struct {
			AccessToken string `json:"access_token"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &tr2) != nil || tr2.AccessToken == "" {
			t.Fatalf("POST /token refresh grant: %d %s", r.status, r.body)
		}
		if got := access(tr2.AccessToken); !maps2Equal(got, map[string][]string{"repository:team/app": {"pull", "push"}}) {
			t.Errorf("refreshed access %v, want team/app pull,push", got)
		}
		// An access token is not a refresh token; garbage is refused; a wrong password too.
		for name, f := range map[string]url.Values{
			"access token as refresh token": {"grant_type": {"refresh_token"}, "refresh_token": {tr.AccessToken}},
			"garbage refresh token":         {"grant_type": {"refresh_token"}, "refresh_token": {"x.y.z"}},
			"wrong password":                {"grant_type": {"password"}, "username": {"dave"}, "password": {"wrong-password"}},
			"disabled robot":                {"grant_type": {"password"}, "username": {"robot$team+off"}, "password": {auRobotPass}},
		} {
			r := auDo(t, http.MethodPost, realm, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, []byte(f.Encode()))
			if r.status != http.StatusUnauthorized || auErrCode(r.body) != "UNAUTHORIZED" {
				t.Errorf("%s: %d %s, want 401 UNAUTHORIZED", name, r.status, r.body)
			}
		}
	})

	t.Run("forged tokens", func(t *testing.T) {
		ctx := context.Background()
		_, keyPEM, err := w.m.SigningKey(ctx, func() (string, string, error) { return "", "", fmt.Errorf("berth has no key yet") })
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode([]byte(keyPEM))
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		pubDER, _ := x509.MarshalPKIXPublicKey(&k.(*ecdsa.PrivateKey).PublicKey)
		pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
		now := time.Now().Unix()
		claims := map[string]any{"iss": "berth", "sub": "olga", "aud": "berth", "exp": now + 300, "nbf": now, "iat": now, "jti": "forged",
			"berth_kind": "user", "access": []map[string]any{{"type": "repository", "name": "team/app", "actions": []string{"pull", "push", "delete"}}}}
		enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
		payload := enc(claims)
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		es256 := func(key *ecdsa.PrivateKey) string {
			in := enc(map[string]string{"alg": "ES256", "typ": "JWT"}) + "." + payload
			sum := sha256.Sum256([]byte(in))
			r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
			if err != nil {
				t.Fatal(err)
			}
			sig := make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
			return in + "." + base64.RawURLEncoding.EncodeToString(sig)
		}
		hs := func(secret []byte) string {
			in := enc(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." + payload
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(in))
			return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		}
		// A genuine token of olga's (no rights on team) with its access rewritten.
		olgaTok, _ := client("olga", auPass).token(t, realm, "berth", "repository:team/app:pull")
		parts := strings.Split(olgaTok, ".")
		var op map[string]any
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(raw, &op)
		op["access"] = claims["access"]
		tampered := parts[0] + "." + enc(op) + "." + parts[2]

		forged := map[string]string{
			"alg none":                        enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + payload + ".",
			"HS256 keyed with the public key": hs(pubPEM),
			"ES256 with another key":          es256(other),
			"tampered access claim":           tampered,
		}
		// Control: the same claims signed with berth's own key are honoured, so the
		// refusals below are about the forgery, not the claims.
		if r := auDo(t, http.MethodGet, w.b.URL("/v2/team/app/manifests/v1"), map[string]string{"Authorization": "Bearer " + es256(k.(*ecdsa.PrivateKey)), "Accept": auMTManifest}, nil); r.status != http.StatusOK {
			t.Fatalf("control token signed with berth's key: %d %s", r.status, r.body)
		}
		for name, tok := range forged {
			for _, c := range []struct{ method, path string }{
				{http.MethodGet, "/v2/team/app/manifests/v1"},
				{http.MethodDelete, "/v2/team/app/manifests/" + v1},
			} {
				r := auDo(t, c.method, w.b.URL(c.path), map[string]string{"Authorization": "Bearer " + tok, "Accept": auMTManifest}, nil)
				if r.status != http.StatusUnauthorized || auErrCode(r.body) != "UNAUTHORIZED" {
					t.Errorf("%s: %s %s: %d %s, want 401 UNAUTHORIZED", name, c.method, c.path, r.status, r.body)
				}
				if _, ok := auChallenge(r.header.Get("WWW-Authenticate")); !ok {
					t.Errorf("%s: no Bearer challenge", name)
				}
			}
		}
		if !w.exists(t, "team/app", "v1") {
			t.Fatal("team/app:v1 was deleted by a forged token")
		}
	})
}

// auTry sends one request and reports a transport error instead of failing.
func auTry(method, u, authz string, body []byte) (int, error) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func auNot2xx(status int) bool { return status < 200 || status > 299 }
func auNot201(status int) bool { return status != http.StatusCreated }

func maps2Equal(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

type auAuditWant struct {
	what   string
	filter meta.AuditFilter
}

// auWaitAudit waits (the trail is written in batches) for an entry matching each filter.
func auWaitAudit(t *testing.T, w *auWorld, wants []auAuditWant) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for _, want := range wants {
		for {
			got, err := w.m.Audit(ctx, want.filter)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > 0 {
				e := got[0]
				if e.Remote != "127.0.0.1" || e.At.IsZero() || time.Since(e.At) > 10*time.Minute || e.ActorType == "" {
					t.Errorf("audit %s: entry %+v lacks who/when/where", want.what, e)
				}
				break
			}
			if time.Now().After(deadline) {
				recent, _ := w.m.Audit(ctx, meta.AuditFilter{Actor: want.filter.Actor, Limit: 20})
				t.Errorf("audit: no entry for %s (%+v); recent entries of %q: %+v", want.what, want.filter, want.filter.Actor, recent)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// ---------------------------------------------------------------- rate limit

// TestAuthRateLimit: failed logins lock the user out of the client address, and enough
// of them over several accounts lock the address out, over Basic and over the token
// endpoint, with 429 TOOMANYREQUESTS; the lockouts are audited. (Other addresses:
// TestSecurityAuthLockoutOtherAddress.)
func TestAuthRateLimit(t *testing.T) {
	w := startAuthBerth(t, "  failedLogins:\n    max: 3\n    maxPerAddress: 4\n    window: 1h\n")
	w.setup(t)
	basic := func(user, pass string) auResp {
		return auDo(t, http.MethodGet, w.b.URL("/v2/"), map[string]string{"Authorization": auBasic(user, pass)}, nil)
	}
	// The administrator logs in once first: verified credentials are cached.
	if r := basic("admin", auAdminPass); r.status != http.StatusOK {
		t.Fatalf("admin: %d %s", r.status, r.body)
	}
	for i := range 3 {
		if r := basic("dave", fmt.Sprintf("wrong-password-%d", i)); r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i, r.status, r.body)
		}
	}
	r := basic("dave", auPass)
	if r.status != http.StatusTooManyRequests || auErrCode(r.body) != "TOOMANYREQUESTS" {
		t.Errorf("correct password after 3 failures: %d %s, want 429 TOOMANYREQUESTS", r.status, r.body)
	}
	tr := auDo(t, http.MethodGet, w.b.URL("/token?service=berth&scope=repository:team/app:pull"), map[string]string{"Authorization": auBasic("dave", auPass)}, nil)
	if tr.status != http.StatusTooManyRequests || auErrCode(tr.body) != "TOOMANYREQUESTS" {
		t.Errorf("token endpoint after 3 failures: %d %s, want 429 TOOMANYREQUESTS", tr.status, tr.body)
	}
	// A fourth failure, for another account, reaches maxPerAddress: the address is
	// locked for accounts that never logged in from it...
	if r := basic("olga", "wrong-password-olga"); r.status != http.StatusUnauthorized {
		t.Fatalf("olga's failure: %d %s", r.status, r.body)
	}
	if r := basic("mia", auPass); r.status != http.StatusTooManyRequests {
		t.Errorf("another user from the locked address: %d %s, want 429", r.status, r.body)
	}
	// ...but credentials verified before the lockout stay valid until the cache expires.
	if r := basic("admin", auAdminPass); r.status != http.StatusOK {
		t.Errorf("cached admin credentials: %d %s", r.status, r.body)
	}
	auWaitAudit(t, w, []auAuditWant{
		{"rate-limited login", meta.AuditFilter{Action: "login", Actor: "dave", Result: "denied"}},
		{"failed login", meta.AuditFilter{Action: "login", Actor: "dave", Result: "failed"}},
	})
}

// ---------------------------------------------------------------- real clients

func auRunIn(t *testing.T, dir string, env []string, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func auMust(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := auRunIn(t, dir, env, "", name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// TestAuthClients: real clients log in as a developer through the token flow and push
// and pull; a wrong password is refused.
func TestAuthClients(t *testing.T) {
	start := time.Now()
	w := startAuthBerth(t, "  failedLogins:\n    max: 100000\n")
	w.setup(t)
	proxy := newAuProxy(t, w.b.URL(""))
	addr := proxy.addr()
	img := newAuImage(t, "base image\n")
	w.seed(t, "team/base", "1", img.manifest, img.config, img.layer)
	baseDigest := auDigest(img.manifest)
	clientRun := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			proxy.mark(name)
			f(t)
			if name != "docker+crane" {
				proxy.checkTokenFlow(t, name)
			}
		})
	}
	pushed := func(t *testing.T, repo, ref string) {
		t.Helper()
		if !w.exists(t, repo, ref) {
			t.Errorf("%s:%s is not in berth after the push", repo, ref)
		}
	}

	clientRun("docker+crane", func(t *testing.T) {
		requireTool(t, "docker")
		requireTool(t, "crane")
		env := toolEnv(t)
		dir := t.TempDir()
		out, err := auRunIn(t, dir, env, "wrong-password\n", "docker", "login", addr, "-u", "dave", "--password-stdin")
		if err == nil {
			t.Fatalf("docker login with a wrong password succeeded:\n%s", out)
		}
		if !strings.Contains(strings.ToLower(out), "unauthorized") {
			t.Errorf("docker login failure does not say unauthorized:\n%s", out)
		}
		out, err = auRunIn(t, dir, env, auPass+"\n", "docker", "login", addr, "-u", "dave", "--password-stdin")
		if err != nil || !strings.Contains(out, "Login Succeeded") {
			t.Fatalf("docker login: %v\n%s", err, out)
		}
		var cfg struct {
			Auths map[string]map[string]string `json:"auths"`
		}
		raw, _ := os.ReadFile(filepath.Join(auEnv(env, "DOCKER_CONFIG"), "config.json"))
		if json.Unmarshal(raw, &cfg) != nil || cfg.Auths[addr] == nil {
			t.Fatalf("docker config after login: %s", raw)
		}
		proxy.checkTokenFlow(t, "docker+crane")
		proxy.mark("crane")
		// crane uses the credentials docker stored.
		layerTar := filepath.Join(dir, "layer.tar")
		auWriteTar(t, layerTar, "crane.txt", "pushed by crane\n")
		auMust(t, dir, env, "crane", "append", "--oci-empty-base", "-f", layerTar, "-t", addr+"/team/crane:1")
		pushed(t, "team/crane", "1")
		auMust(t, dir, env, "crane", "pull", "--format", "oci", addr+"/team/crane:1", filepath.Join(dir, "pulled"))
		if tags := auMust(t, dir, env, "crane", "ls", addr+"/team/base"); strings.TrimSpace(tags) != "1" {
			t.Errorf("crane ls team/base: %q", tags)
		}
		if d := strings.TrimSpace(auMust(t, dir, env, "crane", "digest", addr+"/team/base:1")); d != baseDigest {
			t.Errorf("crane digest %s, want %s", d, baseDigest)
		}
		proxy.checkTokenFlow(t, "crane")
		// crane auth login as a guest: reads work, pushes are refused.
		genv := toolEnv(t)
		auMust(t, dir, genv, "crane", "auth", "login", addr, "-u", "gina", "-p", auPass)
		auMust(t, dir, genv, "crane", "manifest", addr+"/team/crane:1")
		out, err = auRunIn(t, dir, genv, "", "crane", "append", "--oci-empty-base", "-f", layerTar, "-t", addr+"/team/crane:guest")
		if err == nil {
			t.Errorf("a guest pushed with crane:\n%s", out)
		} else if !strings.Contains(out, "UNAUTHORIZED") && !strings.Contains(out, "DENIED") {
			t.Errorf("guest push refused without an OCI error code:\n%s", out)
		}
	})

	clientRun("skopeo", func(t *testing.T) {
		requireTool(t, "skopeo")
		env := toolEnv(t)
		dir := t.TempDir()
		creds := "dave:" + auPass
		auMust(t, dir, env, "skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", creds, "--dest-creds", creds,
			"docker://"+addr+"/team/base:1", "docker://"+addr+"/team/skopeo:1")
		pushed(t, "team/skopeo", "1")
		out := auMust(t, dir, env, "skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", creds, "docker://"+addr+"/team/skopeo:1")
		if auDigest([]byte(out)) != baseDigest {
			t.Errorf("skopeo inspect --raw: %s", out)
		}
		auMust(t, dir, env, "skopeo", "copy", "--src-tls-verify=false", "--src-creds", creds, "docker://"+addr+"/team/skopeo:1", "oci:"+filepath.Join(dir, "layout")+":x")
		if _, err := os.Stat(filepath.Join(dir, "layout", "blobs", "sha256", strings.TrimPrefix(auDigest(img.layer), "sha256:"))); err != nil {
			t.Errorf("skopeo did not pull the layer: %v", err)
		}
		if out, err := auRunIn(t, dir, env, "", "skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", "dave:wrong-password", "docker://"+addr+"/team/skopeo:1"); err == nil {
			t.Errorf("skopeo with a wrong password succeeded:\n%s", out)
		}
	})

	clientRun("oras", func(t *testing.T) {
		requireTool(t, "oras")
		env := toolEnv(t)
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from oras\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		auMust(t, dir, env, "oras", "push", "--plain-http", "-u", "dave", "-p", auPass, addr+"/team/oras:v1", "hello.txt:text/plain")
		pushed(t, "team/oras", "v1")
		auMust(t, dir, env, "oras", "pull", "--plain-http", "-u", "dave", "-p", auPass, "-o", filepath.Join(dir, "out"), addr+"/team/oras:v1")
		if got, _ := os.ReadFile(filepath.Join(dir, "out", "hello.txt")); string(got) != "hello from oras\n" {
			t.Errorf("oras pulled %q", got)
		}
		if out, err := auRunIn(t, dir, env, "", "oras", "pull", "--plain-http", "-u", "dave", "-p", "wrong-password", "-o", filepath.Join(dir, "out2"), addr+"/team/oras:v1"); err == nil {
			t.Errorf("oras with a wrong password succeeded:\n%s", out)
		}
	})

	clientRun("regctl", func(t *testing.T) {
		requireTool(t, "regctl")
		env := toolEnv(t)
		dir := t.TempDir()
		// set checks connectivity without credentials, and /v2/ rightly answers 401.
		auMust(t, dir, env, "regctl", "registry", "set", "--tls", "disabled", "--skip-check", addr)
		if out, err := auRunIn(t, dir, env, "", "regctl", "registry", "login", addr, "-u", "dave", "-p", "wrong-password"); err == nil {
			t.Errorf("regctl registry login with a wrong password succeeded:\n%s", out)
		}
		auMust(t, dir, env, "regctl", "registry", "login", addr, "-u", "dave", "-p", auPass)
		auMust(t, dir, env, "regctl", "image", "copy", addr+"/team/base:1", addr+"/team/regctl:1")
		pushed(t, "team/regctl", "1")
		if tags := auMust(t, dir, env, "regctl", "tag", "ls", addr+"/team/regctl"); strings.TrimSpace(tags) != "1" {
			t.Errorf("regctl tag ls: %q", tags)
		}
		if d := strings.TrimSpace(auMust(t, dir, env, "regctl", "image", "digest", addr+"/team/regctl:1")); d != baseDigest {
			t.Errorf("regctl image digest %s, want %s", d, baseDigest)
		}
	})

	clientRun("helm", func(t *testing.T) {
		requireTool(t, "helm")
		env := toolEnv(t)
		dir := t.TempDir()
		auMust(t, dir, env, "helm", "create", "demo")
		auMust(t, dir, env, "helm", "package", "demo")
		if out, err := auRunIn(t, dir, env, "", "helm", "registry", "login", addr, "-u", "dave", "-p", "wrong-password", "--plain-http"); err == nil {
			t.Errorf("helm registry login with a wrong password succeeded:\n%s", out)
		}
		auMust(t, dir, env, "helm", "registry", "login", addr, "-u", "dave", "-p", auPass, "--plain-http")
		auMust(t, dir, env, "helm", "push", "demo-0.1.0.tgz", "oci://"+addr+"/team/charts", "--plain-http")
		pushed(t, "team/charts/demo", "0.1.0")
		if err := os.MkdirAll(filepath.Join(dir, "pulled"), 0o755); err != nil {
			t.Fatal(err)
		}
		auMust(t, dir, env, "helm", "pull", "oci://"+addr+"/team/charts/demo", "--version", "0.1.0", "--plain-http", "-d", filepath.Join(dir, "pulled"))
		if _, err := os.Stat(filepath.Join(dir, "pulled", "demo-0.1.0.tgz")); err != nil {
			t.Errorf("helm pull: %v", err)
		}
	})

	clientRun("podman", func(t *testing.T) {
		requireTool(t, "podman") // fails in CI, skips with the reason locally
		if _, err := exec.LookPath("podman"); err != nil {
			// Not in .ci/install-tools.sh yet: skipped even in CI until it is.
			t.Skip("podman is not installed (apt-get install podman)")
		}
		env := toolEnv(t)
		dir := t.TempDir()
		p := func(args ...string) (string, error) {
			base := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs",
				"--events-backend", "none", "--cgroup-manager", "cgroupfs", "--tmpdir", filepath.Join(dir, "tmp")}
			return auRunIn(t, dir, env, "", "podman", append(base, args...)...)
		}
		must := func(args ...string) {
			t.Helper()
			if out, err := p(args...); err != nil {
				t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		if out, err := p("login", "--tls-verify=false", "-u", "dave", "-p", "wrong-password", addr); err == nil {
			t.Errorf("podman login with a wrong password succeeded:\n%s", out)
		}
		must("login", "--tls-verify=false", "-u", "dave", "-p", auPass, addr)
		must("pull", "--tls-verify=false", addr+"/team/base:1")
		must("tag", addr+"/team/base:1", addr+"/team/podman:1")
		must("push", "--tls-verify=false", addr+"/team/podman:1")
		pushed(t, "team/podman", "1")
	})

	clientRun("containerd", func(t *testing.T) {
		c := miStartContainerd(t)
		ref := addr + "/team/base:1"
		if out, err := c.ctr("image", "pull", "--plain-http", "-u", "dave:wrong-password", ref); err == nil {
			t.Errorf("ctr pull with a wrong password succeeded:\n%s", out)
		}
		c.mustCtr(t, "image", "pull", "--plain-http", "-u", "dave:"+auPass, ref)
		if ls := c.mustCtr(t, "image", "ls", "-q"); !strings.Contains(ls, ref) {
			t.Errorf("ctr image ls after the pull: %s", ls)
		}
		c.mustCtr(t, "image", "tag", ref, addr+"/team/ctr:1")
		c.mustCtr(t, "image", "push", "--plain-http", "-u", "dave:"+auPass, addr+"/team/ctr:1")
		pushed(t, "team/ctr", "1")
	})

	auWaitAudit(t, w, []auAuditWant{
		{"failed login (docker, wrong password)", meta.AuditFilter{Action: "login", Actor: "dave", Result: "failed"}},
		{"login", meta.AuditFilter{Action: "login", Actor: "dave", Result: "ok"}},
		{"push by a client", meta.AuditFilter{Action: "push", Actor: "dave", Resource: "team/crane:1", Result: "ok"}},
		{"pull by a client", meta.AuditFilter{Action: "pull", Actor: "dave", Result: "ok"}},
	})
	t.Logf("TestAuthClients took %s", time.Since(start).Round(time.Millisecond))
}

// auProxy sits between the clients and berth and records each request's method, path,
// Authorization scheme and status, so a test can tell that a client used the token
// flow. It keeps the Host header, so berth's challenge sends clients to its /token.
type auProxy struct {
	srv   *httptest.Server
	mu    sync.Mutex
	label string
	hits  []auHit
}

type auHit struct {
	label, method, path, scheme, agent string
	status                             int
}

func newAuProxy(t *testing.T, target string) *auProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &auProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &auStatus{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(rec, r)
		scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		p.mu.Lock()
		p.hits = append(p.hits, auHit{p.label, r.Method, r.URL.Path, scheme, r.UserAgent(), rec.status})
		p.mu.Unlock()
	}))
	t.Cleanup(p.srv.Close)
	return p
}

type auStatus struct {
	http.ResponseWriter
	status int
}

func (s *auStatus) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

func (p *auProxy) addr() string { return strings.TrimPrefix(p.srv.URL, "http://") }

func (p *auProxy) mark(label string) {
	p.mu.Lock()
	p.label = label
	p.mu.Unlock()
}

// checkTokenFlow asserts the requests made under label got a token from /token, used
// Bearer tokens on /v2/ successfully, and never sent Basic credentials to /v2/.
func (p *auProxy) checkTokenFlow(t *testing.T, label string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var tokens, bearer, basic int
	var seen []string
	for _, h := range p.hits {
		if h.label != label {
			continue
		}
		seen = append(seen, fmt.Sprintf("%s %s [%s] %d", h.method, h.path, h.scheme, h.status))
		switch {
		case h.path == "/token" && h.status == http.StatusOK:
			tokens++
		case strings.HasPrefix(h.path, "/v2/") && h.scheme == "Bearer" && h.status < 300:
			bearer++
		case strings.HasPrefix(h.path, "/v2/") && h.scheme == "Basic":
			basic++
		}
	}
	if tokens == 0 || bearer == 0 || basic > 0 {
		t.Errorf("%s did not use the token flow (%d tokens issued, %d Bearer requests, %d Basic requests):\n%s",
			label, tokens, bearer, basic, strings.Join(seen, "\n"))
	}
}

func auWriteTar(t *testing.T, path, name, content string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte(content))
	_ = tw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// auEnv returns a variable of a toolEnv environment.
func auEnv(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}
