package e2e

// OpenID Connect in a real browser: Chromium logs in through the provider's own login
// form (zitadel's OP on loopback), lands in Berth's UI with the role its group maps
// to, makes a CLI secret on the account page, and docker-style clients (crane, helm)
// log in with it; a rotation in the browser ends the old secret.

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/berth-registry/berth/internal/oidc/oidctest"
)

func TestWebUIOIDC(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"crane", "helm", "chromium"} {
		requireTool(t, tool)
	}
	op := oidctest.Start(t, oidcAlice)
	b := oidcBerth(t, op)
	br := newBrowser(t, b.URL(""))

	br.open("/login", "#oidc-login")
	if got := br.text("#oidc-login"); got != "Log in with Test SSO" {
		t.Fatalf("OIDC button %q", got)
	}
	br.submit("go to the provider", chromedp.Click(chromedp.ID("oidc-login")), `input[name="username"]`)
	if loc := br.location(); strings.HasPrefix(loc, "/") {
		t.Fatalf("the OIDC button stayed on Berth: %s", loc)
	}
	br.do("fill the provider's form", chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), oidcAlice.Username),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), oidcAlice.Password))
	br.submit("log in at the provider", chromedp.Click(chromedp.CSS(`button[type="submit"]`)), "#logout")
	if got := br.text("#account"); got != "alice" {
		t.Fatalf("logged in as %q, want alice", got)
	}
	// Group team-devs → developer in team: the project shows the role.
	br.open("/projects/team", "h1")
	if got := br.text("h1"); !strings.Contains(got, "developer") {
		t.Fatalf("team's heading %q lacks alice's role", got)
	}
	br.open("/account", "#rotate-cli-secret")
	if got := br.body(); !strings.Contains(got, "oidc") || !strings.Contains(got, "team-devs") {
		t.Fatalf("account page lacks the source or the group:\n%s", got)
	}
	br.submit("make a CLI secret", chromedp.Click(chromedp.ID("rotate-cli-secret")), "#cli-secret")
	first := br.text("#cli-secret")
	br.screenshot("cli-secret")

	env := toolEnv(t)
	run(t, env, "crane", "auth", "login", b.Addr, "-u", "alice", "-p", first)
	dir := t.TempDir()
	run(t, env, "crane", "append", "--oci-empty-base", "-f", admLayer(t, dir, "oidc"), "-t", b.Addr+"/team/from-browser:v1")
	run(t, env, "crane", "manifest", b.Addr+"/team/from-browser:v1")
	run(t, env, "helm", "registry", "login", b.Addr, "-u", "alice", "-p", first, "--plain-http") // helm checks the login

	br.open("/account", "#rotate-cli-secret")
	br.submit("rotate the CLI secret", chromedp.Click(chromedp.ID("rotate-cli-secret")), "#cli-secret")
	second := br.text("#cli-secret")
	if second == first {
		t.Fatal("rotation gave the same secret")
	}
	// crane auth login only stores the credentials; a read proves them.
	image := b.Addr + "/team/from-browser:v1"
	if out, err := runErr(env, "crane", "manifest", image); err == nil {
		t.Fatalf("the rotated-out secret still reads %s:\n%s", image, out)
	}
	run(t, env, "crane", "auth", "login", b.Addr, "-u", "alice", "-p", second)
	run(t, env, "crane", "manifest", image)
}
