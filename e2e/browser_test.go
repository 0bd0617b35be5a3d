package e2e

// A real headless Chromium (the Debian package) driven over the DevTools protocol by
// chromedp, for the web UI tests. Each browser has its own profile, so two browsers are
// two users with separate cookies.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is one Chromium with one tab.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string // http://host:port
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	exe := requireTool(t, "chromium")
	home := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(home, "profile")), chromedp.WindowSize(1280, 900),
		chromedp.Env("HOME="+home), // Chromium writes crash reports under HOME whatever the profile
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser; it must not run under a timeout (that would
	// end the browser with it).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, base: base}
}

// in is the browser reporting to t (a subtest), so a failed step ends that subtest.
func (b *browser) in(t *testing.T) *browser {
	c := *b
	c.t = t
	return &c
}

// step bounds one browser step.
func (b *browser) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, 30*time.Second)
}

// do runs actions, failing the test with what was being done.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		b.t.Fatalf("browser: %s: %v (at %s)", what, err, loc)
	}
}

// open navigates to a path and waits for sel.
func (b *browser) open(path, sel string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// text is the text of the first element matching a CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// eval runs JavaScript in the page and returns its value.
func evalIn[T any](b *browser, js string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		b.t.Fatalf("browser: eval %q: %v", js, err)
	}
	return v
}

// body is the page's visible text.
func (b *browser) body() string { return evalIn[string](b, "document.body.innerText") }

func (b *browser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return strings.TrimPrefix(loc, b.base)
}

// screenshot saves the page as name.png (PNG: quality 100) under the artifacts directory (BERTH_ARTIFACTS,
// default /tmp/berth-artifacts): CI keeps them, and the README shows some of them.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("BERTH_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "berth-artifacts")
	}
	dir = filepath.Join(dir, "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := b.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// login logs in through the login form and waits for the projects page.
func (b *browser) login(user, pass string) {
	b.t.Helper()
	b.open("/login", "#username")
	b.do("fill the login form", chromedp.SendKeys(chromedp.ID("username"), user), chromedp.SendKeys(chromedp.ID("password"), pass))
	b.submit("log in as "+user, chromedp.Click(chromedp.ID("login")), "#logout")
}

// submit runs act (a click that submits a form) and waits until the next page has
// loaded and shows sel: the old page is marked first, so its elements are not taken for
// the new page's.
func (b *browser) submit(what string, act chromedp.Action[chromedp.Void], sel string) {
	b.t.Helper()
	b.do(what+": mark the page", chromedp.Evaluate[chromedp.Void](`void (window.__berthOldPage = true)`))
	b.do(what, act)
	deadline := time.Now().Add(30 * time.Second)
	for evalIn[bool](b, `window.__berthOldPage === true || document.readyState !== 'complete'`) {
		if time.Now().After(deadline) {
			b.t.Fatalf("browser: %s: no new page after 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.do(what+": wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}
