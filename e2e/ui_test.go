package e2e

// The web UI in a real headless Chromium: logging in, browsing a project down to a
// platform manifest's layers, the referrers tree with a cosign signature (and its
// verdict) and an SBOM attached with oras, copy commands, robots with a secret shown
// once, roles, deleting a tag, what a guest is offered and what the server refuses when
// a guest forges it, CSRF, cookie flags, rendering hostile label and annotation values
// inert, and logout (here and everywhere). Screenshots of the main pages are saved as
// artifacts (see browser.screenshot).

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/berth-registry/berth/internal/meta"
)

// uiXSS are hostile values pushed as an image label and annotation: rendered as text,
// they must never run (window.__xss stays undefined).
const (
	uiXSSLabel      = `<img src=x onerror=window.__xss=1>`
	uiXSSAnnotation = `<script>window.__xss=2</script>`
)

type uiWorld struct {
	*auWorld
	env            []string // client tools logged in as the administrator
	amd, arm, full string   // digests: the amd64 and arm64 images, the index
	old            string   // the digest of tag old, deleted by the tests
}

func startUIWorld(t *testing.T) *uiWorld {
	t.Helper()
	for _, tool := range []string{"crane", "oras", "cosign", "helm", "chromium"} {
		requireTool(t, tool)
	}
	up := startBerth(t, BerthOptions{}) // the mirrored upstream
	seedPause(t, up, "pause", "3.10")
	b := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword + "\n" +
		"mirror:\n  upstreams:\n    - name: registry.k8s.io\n      url: " + up.URL("") + "\n"})
	m, err := meta.Open(context.Background(), meta.Options{Dialect: meta.SQLite, DSN: filepath.Join(b.Data, "berth.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	w := &uiWorld{auWorld: &auWorld{b: b, m: m}, env: append(toolEnv(t), "COSIGN_PASSWORD=ui-key-pass")}
	w.setup(t) // team: gina guest, dave developer, paul admin (password auPass)
	run(t, w.env, "crane", "auth", "login", b.Addr, "-u", "admin", "-p", admPassword)

	dir := t.TempDir()
	img := func(tag, content string, mutate ...string) string {
		run(t, w.env, "crane", "append", "--oci-empty-base", "-f", admLayer(t, dir, content), "-t", b.Addr+"/team/app:"+tag)
		out := run(t, w.env, "crane", append(append([]string{"mutate"}, mutate...), "-t", b.Addr+"/team/app:"+tag, b.Addr+"/team/app:"+tag)...)
		return trDigestRef.FindStringSubmatch(out)[1]
	}
	w.amd = img("amd64", "amd64 layer", "--set-platform", "linux/amd64", "--entrypoint", "/pause", "--env", "GREETING=hello",
		"--label", "org.example.note="+uiXSSLabel, "--annotation", "org.opencontainers.image.description="+uiXSSAnnotation)
	w.arm = img("arm64", "arm64 layer", "--set-platform", "linux/arm64", "--entrypoint", "/pause")
	w.old = img("old", "to be deleted", "--set-platform", "linux/amd64")
	out := run(t, w.env, "crane", "index", "append", "-m", b.Addr+"/team/app@"+w.amd, "-m", b.Addr+"/team/app@"+w.arm, "-t", b.Addr+"/team/app:multi")
	w.full = trDigestRef.FindStringSubmatch(out)[1]

	// A cosign signature (checked by a warn-mode policy on team) and an SBOM.
	if out, err := runErrIn(dir, w.env, "cosign", "generate-key-pair", "--output-key-prefix", "ui"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	run(t, w.env, "cosign", "sign", "--key", filepath.Join(dir, "ui.key"), "--tlog-upload=false", "--use-signing-config=false",
		"--allow-http-registry", "-y", b.Addr+"/team/app@"+w.amd)
	admOK(t, b, "", "policy", "set", "ui", "--project", "team", "--mode", "warn", "--cosign-key", filepath.Join(dir, "ui.pub"))
	sbom := filepath.Join(dir, "sbom.spdx.json")
	if err := os.WriteFile(sbom, []byte(`{"spdxVersion":"SPDX-2.3","name":"app"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runErrIn(dir, w.env, "oras", "attach", "--plain-http", "--artifact-type", "application/spdx+json",
		b.Addr+"/team/app@"+w.amd, "sbom.spdx.json:application/spdx+json"); err != nil {
		t.Fatalf("oras attach: %v\n%s", err, out)
	}
	// A Helm chart.
	run(t, w.env, "helm", "registry", "login", b.Addr, "-u", "admin", "-p", admPassword, "--plain-http")
	run(t, w.env, "helm", "create", filepath.Join(dir, "demo"))
	run(t, w.env, "helm", "package", filepath.Join(dir, "demo"), "-d", dir)
	run(t, w.env, "helm", "push", filepath.Join(dir, "demo-0.1.0.tgz"), "oci://"+b.Addr+"/team/charts", "--plain-http")
	return w
}

func TestWebUI(t *testing.T) {
	t.Parallel()
	w := startUIWorld(t)
	base := w.b.URL("")
	br := newBrowser(t, base)

	t.Run("wrong password", func(t *testing.T) {
		br := br.in(t)
		br.open("/login", "#username")
		br.do("fill in a wrong password", chromedp.SendKeys(chromedp.ID("username"), "paul"), chromedp.SendKeys(chromedp.ID("password"), "not-the-password"))
		br.submit("wrong login", chromedp.Click(chromedp.ID("login")), "#login-error")
		if got := br.text("#login-error"); !strings.Contains(got, "Wrong username or password") {
			t.Fatalf("login error %q", got)
		}
		br.screenshot("login")
	})

	br.login("paul", auPass)

	t.Run("browse to a platform's layers", func(t *testing.T) {
		br := br.in(t)
		br.open("/projects", "table")
		if !strings.Contains(br.body(), "team") {
			t.Fatalf("projects page lacks team:\n%s", br.body())
		}
		br.screenshot("projects")
		br.submit("open team", chromedp.Click(chromedp.CSS(`a[href="/projects/team"]`)), "table.repos")
		br.submit("open team/app", chromedp.Click(chromedp.CSS(`a[href="/r/team/app"]`)), "table.tags")
		for _, tag := range []string{"multi", "amd64", "arm64", "old"} {
			if n := evalIn[int](br, `document.querySelectorAll('tr[data-tag="`+tag+`"]').length`); n != 1 {
				t.Fatalf("tag %s listed %d times", tag, n)
			}
		}
		br.screenshot("repository")
		br.submit("open tag multi", chromedp.Click(chromedp.CSS(`tr[data-tag="multi"] a.tag`)), "#platforms")
		if got := br.text("#platforms"); !strings.Contains(got, "linux/amd64") || !strings.Contains(got, "linux/arm64") {
			t.Fatalf("platforms of the index: %q", got)
		}
		if got := br.text("#digest"); got != w.full {
			t.Fatalf("index page digest %q, want %s", got, w.full)
		}
		br.screenshot("index")
		// Copy commands carry the registry's host, by tag and by digest.
		cmds := evalIn[[]string](br, `[...document.querySelectorAll('.commands code')].map(e => e.textContent)`)
		joined := strings.Join(cmds, "\n")
		for _, want := range []string{"docker pull " + w.b.Addr + "/team/app:multi", "docker pull " + w.b.Addr + "/team/app@" + w.full,
			"crane pull " + w.b.Addr + "/team/app:multi", "cric pull " + w.b.Addr + "/team/app@" + w.full, "ctr image pull --plain-http " + w.b.Addr + "/team/app:multi"} {
			if !strings.Contains(joined, want) {
				t.Errorf("copy commands lack %q:\n%s", want, joined)
			}
		}
		if n := evalIn[int](br, `document.querySelectorAll('.commands button.copy[data-copy]').length`); n != len(cmds) {
			t.Errorf("%d copy buttons for %d commands", n, len(cmds))
		}
		br.submit("open linux/arm64", chromedp.Click(chromedp.CSS(`a.platform[href$="`+w.arm+`"]`)), "#layers")
		if got := br.text("#platform"); got != "linux/arm64" {
			t.Fatalf("platform manifest shows %q, want linux/arm64", got)
		}
		if n := evalIn[int](br, `document.querySelectorAll('#layers tbody tr').length`); n != 1 {
			t.Fatalf("arm64 image shows %d layers, want 1", n)
		}
	})

	t.Run("referrers tree and hostile values", func(t *testing.T) {
		br := br.in(t)
		br.open("/r/team/app@"+w.amd, "ul.tree")
		sig := evalIn[string](br, `(document.querySelector('li.referrer[data-kind="signature"] .verdict') || {}).textContent || ''`)
		if sig != "verified" {
			t.Fatalf("signature verdict %q, want verified; referrers:\n%s", sig, br.text("ul.tree"))
		}
		if got := br.text(`li.referrer[data-kind="sbom"] .atype`); got != "application/spdx+json" {
			t.Fatalf("SBOM referrer type %q", got)
		}
		if got := br.text("#labels"); !strings.Contains(got, uiXSSLabel) {
			t.Fatalf("label not shown as text: %q", got)
		}
		if got := br.text("#annotations"); !strings.Contains(got, uiXSSAnnotation) {
			t.Fatalf("annotation not shown as text: %q", got)
		}
		if v := evalIn[string](br, `String(window.__xss)`); v != "undefined" {
			t.Fatalf("a hostile value ran as script: window.__xss = %s", v)
		}
		if n := evalIn[int](br, `document.querySelectorAll('main img, main script').length`); n != 0 {
			t.Fatalf("hostile markup became %d elements", n)
		}
		br.screenshot("manifest")
	})

	t.Run("helm chart", func(t *testing.T) {
		br := br.in(t)
		br.open("/r/team/charts/demo:0.1.0", "#chart")
		chart := br.text("#chart")
		for _, want := range []string{"demo", "0.1.0", "1.16.0"} { // helm create's appVersion
			if !strings.Contains(chart, want) {
				t.Errorf("chart facts %q lack %q", chart, want)
			}
		}
		if got := br.text(".commands code"); got != "helm pull oci://"+w.b.Addr+"/team/charts/demo --version 0.1.0 --plain-http" {
			t.Errorf("chart pull command %q", got)
		}
		br.screenshot("helm-chart")
	})

	t.Run("phone and keyboard", func(t *testing.T) {
		br := br.in(t)
		br.do("phone viewport", chromedp.EmulateViewport(390, 844))
		defer br.do("desktop viewport", chromedp.ResetViewport())
		for _, path := range []string{"/projects", "/r/team/app", "/r/team/app@" + w.amd} {
			br.open(path, "h1")
			// Wide tables scroll inside their box; the page itself must not.
			if wide := evalIn[bool](br, `document.documentElement.scrollWidth > window.innerWidth + 1`); wide {
				wider := evalIn[[]string](br, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !(e.parentElement && e.parentElement.closest('.scroll'))).slice(0, 8).map(e => e.tagName + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right))`)
				t.Errorf("%s is wider than a phone's screen (%d px): %v", path, evalIn[int](br, `document.documentElement.scrollWidth`), wider)
			}
		}
		br.screenshot("phone-manifest")
		// The first Tab lands on the skip link, which leads to the content.
		br.open("/projects", "h1")
		br.do("tab", chromedp.KeyEvent("\t"))
		if got := evalIn[string](br, `document.activeElement.getAttribute('href') || ''`); got != "#main" {
			t.Errorf("first Tab focuses %q, want the skip link to #main", got)
		}
	})

	t.Run("robot secret shown once", func(t *testing.T) {
		br := br.in(t)
		br.open("/projects/team/robots", "#robot-name")
		br.do("fill the robot form", chromedp.SendKeys(chromedp.ID("robot-name"), "ci"), chromedp.Click(chromedp.CSS(`input[name="push"]`)))
		br.submit("create robot", chromedp.Click(chromedp.ID("create-robot")), "#robot-secret")
		secret := br.text("#robot-secret")
		if len(secret) < 20 {
			t.Fatalf("robot secret %q", secret)
		}
		br.screenshot("robot-created")
		robotEnv := toolEnv(t)
		run(t, robotEnv, "crane", "auth", "login", w.b.Addr, "-u", "robot$team+ci", "-p", secret)
		run(t, robotEnv, "crane", "manifest", w.b.Addr+"/team/app:multi") // the secret works
		br.open("/projects/team/robots", "#robots")
		if strings.Contains(br.body(), secret) {
			t.Fatal("the robot secret is shown again")
		}
		if !strings.Contains(br.text("#robots"), "robot$team+ci") {
			t.Fatalf("robot list lacks robot$team+ci: %s", br.text("#robots"))
		}
	})

	t.Run("change a member's role", func(t *testing.T) {
		br := br.in(t)
		br.open("/projects/team/members", "#members")
		br.do("choose maintainer for dave", chromedp.SetValue(chromedp.CSS(`tr[data-member="user:dave"] select`), "maintainer"))
		br.submit("set dave maintainer", chromedp.Click(chromedp.CSS(`tr[data-member="user:dave"] button.set-role`)), "#members")
		if got := evalIn[string](br, `document.querySelector('tr[data-member="user:dave"] select').value`); got != "maintainer" {
			t.Fatalf("after the change the page shows dave as %s", got)
		}
		ms, err := w.m.Members(context.Background(), "team")
		if err != nil {
			t.Fatal(err)
		}
		for _, mb := range ms {
			if mb.Principal == "user:dave" && mb.Role != "maintainer" {
				t.Fatalf("dave's role is %s, want maintainer", mb.Role)
			}
		}
		br.screenshot("members")
	})

	t.Run("policies", func(t *testing.T) {
		br := br.in(t)
		br.open("/projects/team/settings", "#imm-tags")
		br.do("fill the immutable rule", chromedp.SendKeys(chromedp.ID("imm-tags"), "v*"))
		br.submit("make v* immutable", chromedp.Click(chromedp.ID("add-immutable")), "#immutable")
		if got := br.text("#immutable"); !strings.Contains(got, "v*") {
			t.Fatalf("immutable rules %q", got)
		}
		const policy = `{"rules":[{"repositories":{"match":"**"},"tags":{"match":"**"},"keep":"latestPushed","count":5}]}`
		br.do("write a retention policy", chromedp.SetValue(chromedp.ID("retention"), policy))
		br.submit("save the retention policy", chromedp.Click(chromedp.ID("save-retention")), "#retention")
		if got := evalIn[string](br, `document.getElementById('retention').value`); !strings.Contains(got, `"latestPushed"`) || !strings.Contains(got, `"count": 5`) {
			t.Fatalf("stored retention policy:\n%s", got)
		}
		br.do("write a broken policy", chromedp.SetValue(chromedp.ID("retention"), `{"rules":[{"keep":"sometimes"}]}`))
		br.submit("save the broken policy", chromedp.Click(chromedp.ID("save-retention")), "h1")
		if got := br.text("h1"); !strings.HasPrefix(got, "400") {
			t.Fatalf("a retention policy the API refuses: page %q", got)
		}
		br.open("/projects/team/settings", "#immutable")
		br.submit("remove the immutable rule", chromedp.Click(chromedp.CSS(`#immutable button`)), "h1")
		if n := evalIn[int](br, `document.querySelectorAll('#immutable tr[data-rule]').length`); n != 0 {
			t.Fatalf("%d immutable rules left", n)
		}
		br.do("clear the retention policy", chromedp.Evaluate[chromedp.Void](`void (document.getElementById('retention').value = '')`))
		br.submit("delete the retention policy", chromedp.Click(chromedp.ID("save-retention")), "#retention")
	})

	t.Run("delete a tag", func(t *testing.T) {
		br := br.in(t)
		br.open("/r/team/app", "table.tags")
		br.do("open the delete confirmation", chromedp.Click(chromedp.CSS(`tr[data-tag="old"] summary`)))
		br.submit("delete tag old", chromedp.Click(chromedp.CSS(`tr[data-tag="old"] button.delete-tag`)), "table.tags")
		if n := evalIn[int](br, `document.querySelectorAll('tr[data-tag="old"]').length`); n != 0 {
			t.Fatal("the deleted tag is still listed")
		}
		if br.location() != "/r/team/app" {
			t.Fatalf("after delete at %s", br.location())
		}
		if code := uiStatus(t, w.b.URL("/v2/team/app/manifests/old"), "admin", admPassword); code != http.StatusNotFound {
			t.Fatalf("deleted tag still served: %d", code)
		}
	})

	t.Run("delete a manifest", func(t *testing.T) {
		br := br.in(t)
		// Tag old is gone (above): its manifest is listed as untagged, and deleted from its page.
		br.open("/r/team/app", "table.tags")
		if n := evalIn[int](br, `document.querySelectorAll('a[href="/r/team/app@`+w.old+`"]').length`); n != 1 {
			t.Fatalf("the untagged manifest of tag old is linked %d times", n)
		}
		br.open("/r/team/app@"+w.old, "#digest")
		br.do("open the delete confirmation", chromedp.Click(chromedp.CSS(`details.danger summary`)))
		br.submit("delete the manifest", chromedp.Click(chromedp.ID("delete-manifest")), "table.tags")
		if br.location() != "/r/team/app" {
			t.Fatalf("after delete at %s", br.location())
		}
		if n := evalIn[int](br, `document.querySelectorAll('a[href="/r/team/app@`+w.old+`"]').length`); n != 0 {
			t.Fatal("the deleted manifest is still listed")
		}
		if code := uiStatus(t, w.b.URL("/v2/team/app/manifests/"+w.old), "admin", admPassword); code != http.StatusNotFound {
			t.Fatalf("deleted manifest still served: %d", code)
		}
	})

	t.Run("projects: create, visibility, quota, delete", func(t *testing.T) {
		a := newBrowser(t, base)
		a.login("admin", admPassword)
		a.open("/projects", "table")
		a.do("open the new project form", chromedp.Click(chromedp.CSS(`details.panel summary`)), chromedp.SendKeys(chromedp.ID("new-project"), "scratch"))
		a.submit("create project scratch", chromedp.Click(chromedp.ID("create-project")), "table.repos")
		if a.location() != "/projects/scratch" || !strings.Contains(a.text("h1"), "private") {
			t.Fatalf("after create at %s, heading %q", a.location(), a.text("h1"))
		}
		a.open("/projects/scratch/settings", "#public")
		a.do("make it public", chromedp.Click(chromedp.ID("public")))
		a.submit("save visibility", chromedp.Click(chromedp.ID("save-visibility")), "#public")
		if got := a.text("h1"); !strings.Contains(got, "public") {
			t.Fatalf("after making it public the heading is %q", got)
		}
		a.do("fill the quota", chromedp.SendKeys(chromedp.ID("quota-size"), "10MiB"))
		a.submit("set the quota", chromedp.Click(chromedp.CSS(`form[action="/projects/scratch/quota"] button`)), "#quota")
		if got := a.text("#quota"); !strings.Contains(got, "of 10.0 MiB used") {
			t.Fatalf("quota after setting 10MiB: %q", got)
		}
		a.do("open the delete confirmation", chromedp.Click(chromedp.CSS(`details.danger summary`)))
		a.submit("delete project scratch", chromedp.Click(chromedp.ID("delete-project")), "table")
		if n := evalIn[int](a, `document.querySelectorAll('a[href="/projects/scratch"]').length`); n != 0 || a.location() != "/projects" {
			t.Fatalf("after deleting scratch at %s, %d links to it", a.location(), n)
		}
		if code := uiStatus(t, w.b.URL("/api/v1/projects/scratch"), "admin", admPassword); code != http.StatusNotFound {
			t.Fatalf("the deleted project answers %d", code)
		}
	})

	t.Run("search and hostile names", func(t *testing.T) {
		br := br.in(t)
		br.open("/search?q=app&sort=pushed", "table.repos")
		if n := evalIn[int](br, `document.querySelectorAll('table.repos a[href="/r/team/app"]').length`); n != 1 {
			t.Fatalf("searching app lists team/app %d times:\n%s", n, br.body())
		}
		// The registry refuses names that carry markup, so the only way one reaches a page
		// is the URL: a search, a repository, tag or project name, an audit filter.
		const bad = `<img src=x onerror=window.__xss=3>`
		put, _ := http.NewRequest(http.MethodPut, w.b.URL("/v2/team/app/manifests/"+url.PathEscape(bad)), strings.NewReader(`{}`))
		put.SetBasicAuth("admin", admPassword)
		put.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if resp, err := http.DefaultClient.Do(put); err != nil {
			t.Fatal(err)
		} else if resp.Body.Close(); resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
			t.Errorf("a manifest PUT under a hostile tag answered %d, want a refusal", resp.StatusCode)
		}
		for _, path := range []string{
			"/search?q=" + url.QueryEscape(bad),
			"/r/team/" + url.PathEscape(bad),
			"/r/team/app:" + url.PathEscape(`<script>window.__xss=4</script>`),
			"/projects/" + url.PathEscape(bad),
			"/audit?actor=" + url.QueryEscape(bad) + "&resource=" + url.QueryEscape(`"><script>window.__xss=5</script>`),
		} {
			br.open(path, "h1")
			if v := evalIn[string](br, `String(window.__xss)`); v != "undefined" {
				t.Errorf("%s: a hostile name ran as script: window.__xss = %s", path, v)
			}
			if n := evalIn[int](br, `document.querySelectorAll('main img, main script').length`); n != 0 {
				t.Errorf("%s: hostile markup became %d elements", path, n)
			}
		}
		br.open("/search?q="+url.QueryEscape(bad), "#q")
		if got := evalIn[string](br, `document.getElementById('q').value`); got != bad {
			t.Errorf("the search box holds %q, want the query as text", got)
		}
	})

	t.Run("guest", func(t *testing.T) {
		g := newBrowser(t, base)
		g.login("gina", auPass)
		g.open("/r/team/app", "table.tags")
		if n := evalIn[int](g, `document.querySelectorAll('.delete-tag, #delete-manifest').length`); n != 0 {
			t.Fatalf("a guest is offered %d delete buttons", n)
		}
		g.open("/projects/team", "nav.tabs")
		if tabs := g.text("nav.tabs"); strings.Contains(tabs, "Members") || strings.Contains(tabs, "Robots") {
			t.Fatalf("a guest is offered management tabs: %q", tabs)
		}
		g.open("/projects/team/settings", "h1")
		if n := evalIn[int](g, `document.querySelectorAll('main form').length`); n != 0 {
			t.Fatalf("a guest is offered %d forms on the policies tab", n)
		}
		// Forged in the guest's own page with her valid CSRF token: the server refuses.
		forge := `fetch('/tags/delete', {method: 'POST', body: new URLSearchParams({csrf: document.querySelector('input[name=csrf]').value, repo: 'team/app', tag: 'multi'})}).then(r => r.status)`
		if code := evalIn[int](g, forge, chromedp.EvalAwaitPromise); code != http.StatusForbidden {
			t.Fatalf("a guest's forged tag delete answered %d, want 403", code)
		}
		if code := uiStatus(t, w.b.URL("/v2/team/app/manifests/multi"), "admin", admPassword); code != http.StatusOK {
			t.Fatalf("tag multi after the guest's forged delete: %d", code)
		}
		for _, path := range []string{"/admin/users", "/projects/team/members", "/mirror"} {
			g.open(path, "h1")
			if got := g.text("h1"); !strings.HasPrefix(got, "403") {
				t.Errorf("a guest at %s sees %q, want a 403 page", path, got)
			}
		}
		g.screenshot("guest-forbidden")
	})

	t.Run("mirror status and warm-up", func(t *testing.T) {
		c, _ := uiLogin(t, base, "admin", admPassword)
		if code := uiStatus(t, w.b.URL("/v2/registry.k8s.io/pause/manifests/3.10"), "admin", admPassword); code != http.StatusOK {
			t.Fatalf("pull through the mirror: %d", code)
		}
		page := uiGet(t, c, base+"/mirror")
		for _, want := range []string{`data-upstream="registry.k8s.io"`, "1 requests", `href="/r/registry.k8s.io/pause"`} {
			if !strings.Contains(page, want) {
				t.Errorf("mirror page lacks %q", want)
			}
		}
		csrf := uiCSRF.FindStringSubmatch(page)
		if csrf == nil {
			t.Fatal("mirror page has no CSRF token")
		}
		resp, err := c.PostForm(base+"/mirror/warm", url.Values{"csrf": {csrf[1]}, "images": {"registry.k8s.io/pause:3.10"}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "registry.k8s.io/pause:3.10") || !strings.Contains(string(body), "done=true") {
			t.Fatalf("warm-up answered %d:\n%s", resp.StatusCode, body)
		}
	})

	t.Run("system page", func(t *testing.T) {
		c, _ := uiLogin(t, base, "admin", admPassword)
		page := html.UnescapeString(uiGet(t, c, base+"/system"))
		// The tag deleted above queued a GC review; GC's settings and the warn policy are listed.
		for _, want := range []string{`<tr data-kind="gc.`, `"name": "ui"`, `id="gc"`, `id="gc-workers"`, "(gc.reviewAfter)"} {
			if !strings.Contains(page, want) {
				t.Errorf("system page lacks %q:\n%s", want, page)
			}
		}
		if p, _ := uiLogin(t, base, "paul", auPass); uiPageStatus(t, p, base+"/system") != http.StatusForbidden {
			t.Error("a project admin reaches the system page")
		}
	})

	t.Run("users", func(t *testing.T) {
		c, _ := uiLogin(t, base, "admin", admPassword)
		post := func(path string, form url.Values) {
			t.Helper()
			csrf := uiCSRF.FindStringSubmatch(uiGet(t, c, base+"/admin/users"))
			form.Set("csrf", csrf[1])
			resp, err := c.PostForm(base+path, form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("POST %s: %d", path, resp.StatusCode)
			}
		}
		post("/admin/users", url.Values{"name": {"newbie"}, "password": {"newbie-password-1"}, "email": {"newbie@example.com"}})
		nb, _ := uiLogin(t, base, "newbie", "newbie-password-1")
		if !strings.Contains(uiGet(t, c, base+"/admin/users"), `data-user="newbie"`) {
			t.Fatal("the new user is not listed")
		}
		post("/admin/users/newbie", url.Values{"set": {"disabled"}})
		if code := uiPageStatus(t, nb, base+"/projects"); code != http.StatusSeeOther {
			t.Fatalf("a disabled user's session still serves pages: %d", code)
		}
		if code := uiStatus(t, w.b.URL("/v2/"), "newbie", "newbie-password-1"); code != http.StatusUnauthorized {
			t.Fatalf("a disabled user's password still works on /v2/: %d", code)
		}
	})

	t.Run("audit log filters", func(t *testing.T) {
		c, _ := uiLogin(t, base, "admin", admPassword)
		page := uiGet(t, c, base+"/audit?action=tag.delete")
		if !strings.Contains(page, "team/app:old") || strings.Contains(page, ">robot.create<") {
			t.Fatalf("audit filtered by tag.delete:\n%s", page)
		}
		if page := uiGet(t, c, base+"/audit?action=robot.create"); !strings.Contains(html.UnescapeString(page), "robot$team+ci") {
			t.Fatalf("audit filtered by robot.create lacks the robot:\n%s", page)
		}
	})

	t.Run("CSRF and cookies", func(t *testing.T) {
		c, cookie := uiLogin(t, base, "paul", auPass)
		if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Secure || cookie.Path != "/" {
			t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/ (not Secure on plain HTTP)", cookie)
		}
		for name, form := range map[string]url.Values{
			"missing token": {"repo": {"team/app"}, "tag": {"arm64"}},
			"wrong token":   {"repo": {"team/app"}, "tag": {"arm64"}, "csrf": {"not-the-token"}},
		} {
			resp, err := c.PostForm(base+"/tags/delete", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: %d, want 403", name, resp.StatusCode)
			}
		}
		if code := uiStatus(t, w.b.URL("/v2/team/app/manifests/arm64"), "admin", admPassword); code != http.StatusOK {
			t.Fatalf("tag arm64 after refused forms: %d", code)
		}
		// A strict Content-Security-Policy on every page.
		resp, err := c.Get(base + "/projects")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("Content-Security-Policy %q", csp)
		}
	})

	t.Run("logout here and everywhere", func(t *testing.T) {
		br := br.in(t)
		other, _ := uiLogin(t, base, "paul", auPass)
		br.open("/account", "#logout-all")
		br.screenshot("account")
		br.submit("log out everywhere", chromedp.Click(chromedp.ID("logout-all")), "#username")
		if code := uiPageStatus(t, other, base+"/projects"); code != http.StatusSeeOther {
			t.Fatalf("another session of paul after logout everywhere: %d, want 303 to the login page", code)
		}
		br.login("paul", auPass)
		c, _ := uiLogin(t, base, "paul", auPass)
		br.submit("log out", chromedp.Click(chromedp.ID("logout")), "#username")
		br.open("/projects", "h1")
		if br.location() != "/login?next=%2Fprojects" {
			t.Fatalf("after logout /projects went to %s, want the login page", br.location())
		}
		if code := uiPageStatus(t, c, base+"/projects"); code != http.StatusOK {
			t.Fatalf("a separate session after one logout: %d, want 200", code)
		}
	})
}

var (
	uiLoginToken = regexp.MustCompile(`name="login_token" value="([^"]+)"`)
	uiCSRF       = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// uiGet reads a page with a logged-in Go client; it must answer 200.
func uiGet(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", u, resp.StatusCode, body)
	}
	return string(body)
}

// uiLogin logs in through the form with a Go client and returns it (redirects not
// followed) and the session cookie it got.
func uiLogin(t *testing.T, base, user, pass string) (*http.Client, *http.Cookie) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := uiLoginToken.FindSubmatch(page)
	if m == nil {
		t.Fatalf("login page has no login token:\n%s", page)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"login_token": {string(m[1])}, "username": {user}, "password": {pass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login as %s: %d", user, resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "berth_session" {
			return c, ck
		}
	}
	t.Fatalf("login as %s set no session cookie: %v", user, resp.Cookies())
	return nil, nil
}

func uiPageStatus(t *testing.T, c *http.Client, u string) int {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// uiStatus is the status of a registry GET with Basic credentials.
func uiStatus(t *testing.T, u, user, pass string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.SetBasicAuth(user, pass)
	req.Header.Set("Accept", clManifestAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
