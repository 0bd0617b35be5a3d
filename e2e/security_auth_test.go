package e2e

// Regression tests of issue 20's access-control findings against a real berth with auth
// on: the catalog walk through Link cursors, the anonymous audit flood, account lockout
// from another address, the token endpoint on invalid names, trickled token requests,
// /metrics access, and the audit of blob GETs and manifest HEADs.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// saFrom returns a client whose connections come from the loopback address ip
// (127.0.0.0/8 is all loopback on Linux): berth sees another client address.
func saFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func saDo(t *testing.T, c *http.Client, method, u, authz string) auResp {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %.80s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return auResp{status: resp.StatusCode, header: resp.Header, body: body}
}

var saLinkLast = regexp.MustCompile(`[?&]last=([^&>]*)`)

// TestSecurityAuthCatalogWalk: a user walking the catalog one repository a page never
// learns a private repository's name, from a page or from a Link cursor, and still
// reaches every repository it may pull.
func TestSecurityAuthCatalogWalk(t *testing.T) {
	w := startAuthBerth(t, "")
	w.setup(t)
	img := newAuImage(t, "catalog walk")
	hidden := map[string]bool{}
	for _, repo := range []string{"secret/a", "secret/b", "secret/c", "secret/z/deep"} {
		w.seed(t, repo, "v1", img.manifest, img.config, img.layer)
		hidden[repo] = true
	}
	visible := []string{"other/x", "pub/app", "team/app", "team/tool"}
	for _, repo := range visible {
		w.seed(t, repo, "v1", img.manifest, img.config, img.layer)
	}
	dave := &auClient{w: w, user: "dave", pass: auPass, mode: "token"}
	for _, n := range []int{1, 2, 5} {
		var seen []string
		next := fmt.Sprintf("/v2/_catalog?n=%d", n)
		for pages := 0; next != ""; pages++ {
			if pages > 20 {
				t.Fatalf("n=%d: the walk does not end", n)
			}
			r := dave.do(t, http.MethodGet, next, nil, nil)
			if r.status != http.StatusOK {
				t.Fatalf("n=%d GET %s: %d %s", n, next, r.status, r.body)
			}
			var page struct {
				Repositories []string `json:"repositories"`
			}
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatal(err)
			}
			seen = append(seen, page.Repositories...)
			next = ""
			if link := r.header.Get("Link"); link != "" {
				m := saLinkLast.FindStringSubmatch(link)
				if m == nil {
					t.Fatalf("Link without last: %q", link)
				}
				last, _ := url.QueryUnescape(m[1])
				if hidden[last] {
					t.Errorf("n=%d: Link cursor reveals private %q", n, last)
				}
				next = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			}
		}
		for _, name := range seen {
			if hidden[name] {
				t.Errorf("n=%d: page lists private %q", n, name)
			}
		}
		if strings.Join(seen, " ") != strings.Join(visible, " ") {
			t.Errorf("n=%d: the walk saw %v, want %v", n, seen, visible)
		}
	}
}

// saAudit measures the audit trail: rows and bytes of stored text.
func saAudit(t *testing.T, w *auWorld) (rows, bytes int64) {
	t.Helper()
	entries, err := w.m.Audit(context.Background(), meta.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		bytes += int64(len(e.Actor) + len(e.ActorType) + len(e.Action) + len(e.Resource) + len(e.Result) + len(e.Remote) + len(e.Detail))
	}
	return int64(len(entries)), bytes
}

// saDBSize is the database's size on disk: the file and its write-ahead log.
func saDBSize(t *testing.T, w *auWorld) int64 {
	t.Helper()
	var n int64
	for _, f := range []string{"berth.db", "berth.db-wal"} {
		if fi, err := os.Stat(filepath.Join(w.b.Data, f)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// saSettle waits until the audit trail stops growing (it is written in batches).
func saSettle(t *testing.T, w *auWorld) {
	t.Helper()
	last := int64(-1)
	for range 50 {
		rows, _ := saAudit(t, w)
		if rows == last {
			return
		}
		last = rows
		time.Sleep(300 * time.Millisecond)
	}
}

// saMetric reads a sample of berth's /metrics as the administrator.
func saMetric(t *testing.T, w *auWorld, name string) float64 {
	t.Helper()
	r := w.admin(t, http.MethodGet, "/metrics", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics as admin: %d %s", r.status, r.body)
	}
	for line := range strings.SplitSeq(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("/metrics lacks %s", name)
	return 0
}

// TestSecurityAuthAuditFlood: 300 anonymous requests with a 60 KB reference grew the
// database by ~19 MB. Bounds now: identical refusals collapse into a first row and one
// counting row, an invalid reference is stored as a fixed marker, so the 300 requests
// add at most 2 rows of under 1 KB and the database (file + WAL) at most 512 KiB. Even
// 300 distinct valid references — nothing to collapse — stay under 300 rows, 600 bytes
// a row, and 2 MiB on disk. Nothing is dropped.
func TestSecurityAuthAuditFlood(t *testing.T) {
	w := startAuthBerth(t, "")
	w.setup(t)
	saSettle(t, w)
	rows0, bytes0 := saAudit(t, w)
	size0 := saDBSize(t, w)
	huge := strings.Repeat("a", 60<<10)
	anon := saFrom("127.0.0.1")
	for i := range 300 {
		r := saDo(t, anon, http.MethodGet, w.b.URL("/v2/secret/app/manifests/"+huge), "")
		if r.status != http.StatusUnauthorized {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	saSettle(t, w)
	rows1, bytes1 := saAudit(t, w)
	size1 := saDBSize(t, w)
	t.Logf("300 requests with a 60 KB reference: +%d rows, +%d bytes stored, database +%d bytes", rows1-rows0, bytes1-bytes0, size1-size0)
	if rows1-rows0 > 2 || bytes1-bytes0 > 1024 {
		t.Errorf("300 identical anonymous requests added %d rows / %d bytes, want at most 2 rows under 1 KB", rows1-rows0, bytes1-bytes0)
	}
	if size1-size0 > 512<<10 {
		t.Errorf("database grew by %d bytes, want at most 512 KiB", size1-size0)
	}
	got, _ := w.m.Audit(context.Background(), meta.AuditFilter{Actor: "anonymous", Limit: 1000})
	verbatim := 0
	for _, e := range got {
		if e.Resource != "secret/app:<invalid reference>" {
			verbatim++
		}
	}
	if verbatim > 0 {
		t.Errorf("%d rows hold the invalid reference verbatim (%.60q…), want the marker", verbatim, got[0].Resource)
	}

	for i := range 300 {
		r := saDo(t, anon, http.MethodGet, w.b.URL(fmt.Sprintf("/v2/secret/app/manifests/tag-%03d-%s", i, strings.Repeat("x", 100))), "")
		if r.status != http.StatusUnauthorized {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	saSettle(t, w)
	rows2, bytes2 := saAudit(t, w)
	size2 := saDBSize(t, w)
	t.Logf("300 distinct valid references: +%d rows, +%d bytes stored, database +%d bytes", rows2-rows1, bytes2-bytes1, size2-size1)
	if rows2-rows1 > 300 || bytes2-bytes1 > 300*600 || size2-size1 > 2<<20 {
		t.Errorf("300 distinct anonymous requests added %d rows / %d bytes, database +%d bytes", rows2-rows1, bytes2-bytes1, size2-size1)
	}
	if d := saMetric(t, w, "berth_audit_entries_dropped_total"); d != 0 {
		t.Errorf("%v audit entries dropped", d)
	}
	if c := saMetric(t, w, "berth_audit_entries_collapsed_total"); c < 299 {
		t.Errorf("berth_audit_entries_collapsed_total = %v, want the 299 repeats", c)
	}
}

// TestSecurityAuthLockoutOtherAddress: failing logins for an account from one address
// (what anyone can do, robots' names being predictable) locks it out of that address
// only; its owner logs in from another address, by Basic and by token. A pasted secret
// as a username never reaches the audit trail.
func TestSecurityAuthLockoutOtherAddress(t *testing.T) {
	w := startAuthBerth(t, "  failedLogins:\n    max: 3\n    window: 1h\n")
	w.setup(t)
	attacker, owner := saFrom("127.0.0.2"), saFrom("127.0.0.1")
	for _, acct := range []struct{ name, secret string }{{"dave", auPass}, {"robot$team+pull", auRobotPass}} {
		for i := range 6 {
			r := saDo(t, attacker, http.MethodGet, w.b.URL("/v2/"), auBasic(acct.name, fmt.Sprintf("guess-%d-wrong", i)))
			want := http.StatusUnauthorized
			if i >= 3 {
				want = http.StatusTooManyRequests
			}
			if r.status != want {
				t.Fatalf("%s: attacker's attempt %d: %d %s, want %d", acct.name, i, r.status, r.body, want)
			}
		}
		if r := saDo(t, attacker, http.MethodGet, w.b.URL("/v2/"), auBasic(acct.name, acct.secret)); r.status != http.StatusTooManyRequests || auErrCode(r.body) != "TOOMANYREQUESTS" {
			t.Errorf("%s: the right secret from the attacker's address: %d %s, want 429 TOOMANYREQUESTS", acct.name, r.status, r.body)
		}
		if r := saDo(t, owner, http.MethodGet, w.b.URL("/v2/"), auBasic(acct.name, acct.secret)); r.status != http.StatusOK {
			t.Errorf("%s: from its own address after the attack: %d %s, want 200", acct.name, r.status, r.body)
		}
		tok := saDo(t, owner, http.MethodGet, w.b.URL("/token?service=berth&scope=repository:team/app:pull"), auBasic(acct.name, acct.secret))
		if tok.status != http.StatusOK {
			t.Errorf("%s: token from its own address: %d %s", acct.name, tok.status, tok.body)
		}
	}
	const pasted = "ghp_R2d2C3p0xY7wQ9zL4mN8vB1kJ6hG5fD3s"
	if r := saDo(t, owner, http.MethodGet, w.b.URL("/v2/"), auBasic(pasted, "")); r.status != http.StatusUnauthorized {
		t.Errorf("a token as username: %d", r.status)
	}
	saSettle(t, w)
	entries, _ := w.m.Audit(context.Background(), meta.AuditFilter{Action: "login", Limit: 1000})
	marked := false
	for _, e := range entries {
		if strings.Contains(e.Actor, "R2d2") {
			t.Errorf("audit keeps a pasted secret: %+v", e)
		}
		marked = marked || strings.HasPrefix(e.Actor, "<redacted ")
	}
	if !marked {
		t.Error("the failed login with a pasted secret is not in the audit trail as a marker")
	}
	for _, want := range []meta.AuditFilter{
		{Action: "login", Actor: "dave", Result: "denied"},
		{Action: "login", Actor: "robot$team+pull", Result: "denied"},
	} {
		if got, err := w.m.Audit(context.Background(), want); err != nil || len(got) == 0 || got[0].Remote != "127.0.0.2" {
			t.Errorf("audit %+v: %+v %v, want the lockout from 127.0.0.2", want, got, err)
		}
	}
	auWaitAudit(t, w, []auAuditWant{{"the owner's login", meta.AuditFilter{Action: "login", Actor: "dave", Result: "ok"}}})
}

// TestSecurityAuthTokenInvalidNames: the token endpoint grants nothing on names the
// registry would refuse — not even to a system administrator.
func TestSecurityAuthTokenInvalidNames(t *testing.T) {
	w := startAuthBerth(t, "")
	w.setup(t)
	admin := &auClient{w: w, user: "admin", pass: auAdminPass}
	for _, sc := range []string{"repository:*:pull", "repository:*:*", "repository:Team/App:pull,push",
		"repository::pull", "repository:team//app:pull", "repository:/team:pull", "repository:team/app:metrics"} {
		tok, r := admin.token(t, w.b.URL("/token"), "berth", sc)
		if tok == "" {
			t.Fatalf("%s: %d %s", sc, r.status, r.body)
		}
		if c := auDecode(t, tok); len(c.Access) != 0 {
			t.Errorf("scope %q granted %+v, want nothing", sc, c.Access)
		}
	}
	tok, _ := admin.token(t, w.b.URL("/token"), "berth", "repository:team/app:pull,bogus")
	if c := auDecode(t, tok); len(c.Access) != 1 || c.Access[0].Name != "team/app" || strings.Join(c.Access[0].Actions, ",") != "pull" {
		t.Errorf("valid scope with a bogus action granted %+v, want team/app pull", c.Access)
	}
}

// TestSecurityAuthTokenBodyDeadline: a POST /token whose body trickles in is cut off
// after the 10 s body deadline instead of holding its connection (it stayed open 50 s).
func TestSecurityAuthTokenBodyDeadline(t *testing.T) {
	w := startAuthBerth(t, "")
	conn, err := net.Dial("tcp", w.b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=password", w.b.Addr)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(500 * time.Millisecond):
				if _, err := conn.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(40 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	d := time.Since(start)
	t.Logf("trickled POST /token answered after %s: %q", d.Round(time.Millisecond), strings.TrimSpace(line))
	if d > 15*time.Second {
		t.Errorf("a trickled POST /token was held %s, want it cut off at about 10s", d)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 408") {
		t.Errorf("answer %q, want 408", line)
	}
}

// TestSecurityAuthMetrics: with auth on, /metrics is for system administrators and
// robots with the metrics permission; metrics.public: true opens it again.
func TestSecurityAuthMetrics(t *testing.T) {
	w := startAuthBerth(t, "")
	w.setup(t)
	create := w.admin(t, http.MethodPost, "/api/v1/robots", map[string]string{"Content-Type": "application/json"},
		[]byte(`{"name":"prometheus","permissions":[{"project":"*","actions":["metrics"]}]}`))
	if create.status != http.StatusCreated {
		t.Fatalf("create the metrics robot: %d %s", create.status, create.body)
	}
	var robot struct {
		Name   string `json:"name"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(create.body, &robot); err != nil || robot.Secret == "" {
		t.Fatalf("robot: %s %v", create.body, err)
	}
	refused := w.admin(t, http.MethodPost, "/api/v1/projects/team/robots", map[string]string{"Content-Type": "application/json"},
		[]byte(`{"name":"peek","permissions":[{"actions":["metrics"]}]}`))
	if refused.status != http.StatusBadRequest {
		t.Errorf("a project robot with the metrics permission: %d %s, want 400", refused.status, refused.body)
	}
	for _, c := range []struct {
		who, authz string
		status     int
	}{
		{"anonymous", "", http.StatusUnauthorized},
		{"a user", auBasic("dave", auPass), http.StatusForbidden},
		{"a robot that pulls", auBasic("robot$team+pull", auRobotPass), http.StatusForbidden},
		{"the administrator", auBasic("admin", auAdminPass), http.StatusOK},
		{"the metrics robot", auBasic(robot.Name, robot.Secret), http.StatusOK},
	} {
		r := saDo(t, http.DefaultClient, http.MethodGet, w.b.URL("/metrics"), c.authz)
		if r.status != c.status {
			t.Errorf("/metrics as %s: %d %s, want %d", c.who, r.status, r.body, c.status)
		}
		if c.status == http.StatusOK && !strings.Contains(string(r.body), "berth_audit_entries_dropped_total") {
			t.Errorf("/metrics as %s lacks the audit counters", c.who)
		}
	}
	// The metrics robot opens no project.
	if r := saDo(t, http.DefaultClient, http.MethodGet, w.b.URL("/api/v1/projects"), auBasic(robot.Name, robot.Secret)); r.status != http.StatusOK || strings.Contains(string(r.body), `"secret"`) {
		t.Errorf("the metrics robot lists projects: %d %s", r.status, r.body)
	}

	open := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + auAdminPass + "\nmetrics:\n  public: true\n"})
	if r := saDo(t, http.DefaultClient, http.MethodGet, open.URL("/metrics"), ""); r.status != http.StatusOK {
		t.Errorf("/metrics with metrics.public: true: %d", r.status)
	}
}

// TestSecurityAuthAuditPulls: the README promises pulls in the audit trail; blob GETs
// and manifest HEADs are pulls too.
func TestSecurityAuthAuditPulls(t *testing.T) {
	w := startAuthBerth(t, "")
	w.setup(t)
	img := newAuImage(t, "audited pulls")
	w.seed(t, "team/app", "v1", img.manifest, img.config, img.layer)
	gina := &auClient{w: w, user: "gina", pass: auPass, mode: "token"}
	layer := auDigest(img.layer)
	if r := gina.do(t, http.MethodGet, "/v2/team/app/blobs/"+layer, nil, nil); r.status != http.StatusOK {
		t.Fatalf("blob GET: %d", r.status)
	}
	if r := gina.do(t, http.MethodHead, "/v2/team/app/manifests/v1", map[string]string{"Accept": auMTManifest}, nil); r.status != http.StatusOK {
		t.Fatalf("manifest HEAD: %d", r.status)
	}
	auWaitAudit(t, w, []auAuditWant{
		{"blob GET", meta.AuditFilter{Action: "pull", Actor: "gina", Resource: "team/app:" + layer, Result: "ok"}},
		{"manifest HEAD", meta.AuditFilter{Action: "pull", Actor: "gina", Resource: "team/app:v1", Result: "ok"}},
	})
}
