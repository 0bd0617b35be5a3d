package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"
)

// The ui phase (issue 14) times the web UI's pages against a project of uiRepos
// repositories and a repository of uiTags tags: each page is fetched uiRounds times,
// one after the other, by a logged-in client on loopback, so the figure is the server's
// render time plus a loopback round trip. Only Berth has this UI (Distribution has
// none; zot's is a client-side app over its API), so the table has no peer columns.

const (
	uiRepos  = 1000
	uiTags   = 10000
	uiRounds = 100
)

var uiLoginToken = regexp.MustCompile(`name="login_token" value="([^"]+)"`)

func (b *bench) phaseUI(ctx context.Context) error {
	cfg := fmt.Sprintf("auth:\n  enabled: true\n  admin:\n    username: %s\n    password: %s\n", scanAdmin, scanPassword)
	t, err := b.startBerthWith(ctx, berthSpec{name: "berth", logName: "berth-ui", data: filepath.Join(b.dir, "ui"), config: cfg, noSettle: true})
	if err != nil {
		return err
	}
	defer t.stop()
	c := t.http
	c.user, c.pass = scanAdmin, scanPassword
	if err := adminJSON(ctx, c, http.MethodPost, "/projects", map[string]any{"name": "big"}, nil, http.StatusCreated); err != nil {
		return err
	}
	start := time.Now()
	layer := randBytes(7_000_000, 1024)
	var digest string
	if err := parallel(ctx, 4, uiRepos, func(i int) error {
		d, err := c.pushImage(ctx, fmt.Sprintf("big/repo-%04d", i), "v1", [][]byte{layer}, "ui")
		if i == 0 {
			digest = d
		}
		return err
	}); err != nil {
		return err
	}
	man := manifestFor(imageConfig([]descriptor{{MediaType: mtOCILayer, Digest: digestOf(layer), Size: int64(len(layer))}}, "ui"),
		[]descriptor{{MediaType: mtOCILayer, Digest: digestOf(layer), Size: int64(len(layer))}})
	if _, err := c.pushImage(ctx, "big/tags", "t000000", [][]byte{layer}, "ui"); err != nil {
		return err
	}
	if err := parallel(ctx, 4, uiTags-1, func(i int) error {
		return c.putManifest(ctx, "big/tags", fmt.Sprintf("t%06d", i+1), mtOCIManifest, man)
	}); err != nil {
		return err
	}
	logf("ui: seeded %d repositories and %d tags in %s", uiRepos, uiTags, time.Since(start).Round(time.Millisecond))

	rssSeeded, _ := t.memKB("VmRSS")
	web, err := uiLogin(ctx, t.host, scanAdmin, scanPassword)
	if err != nil {
		return err
	}
	pages := []struct{ name, path string }{
		{"projects list", "/projects"},
		{fmt.Sprintf("project page, %d repositories (first 50 by name)", uiRepos), "/projects/big"},
		{"the same sorted by last push", "/projects/big?sort=pushed"},
		{"search across projects", "/search?q=repo-09"},
		{fmt.Sprintf("repository page, %d tags (first 50)", uiTags), "/r/big/tags"},
		{"the same, a page in the middle", "/r/big/tags?last=t005000"},
		{"manifest page", "/r/big/repo-0000@" + digest},
		{"audit log", "/audit"},
	}
	section := fmt.Sprintf("Web UI pages, %d requests each in sequence (server render + loopback round trip)", uiRounds)
	for _, p := range pages {
		var times []time.Duration
		for range uiRounds {
			d, err := uiFetch(ctx, web, "http://"+t.host+p.path)
			if err != nil {
				return fmt.Errorf("%s: %w", p.path, err)
			}
			times = append(times, d)
		}
		slices.Sort(times)
		p50, p95 := times[len(times)/2], times[len(times)*95/100]
		logf("  %s: p50 %.1f ms, p95 %.1f ms", p.name, ms(p50), ms(p95))
		b.res.addTo("ui", section, p.name, "ms", map[string]float64{"p95": ms(p95), "p50": ms(p50)}).target("p95 <=50", atMost(50))
	}
	rss, _ := t.memKB("VmRSS")
	hwm, _ := t.memKB("VmHWM")
	b.res.note("ui: Berth's RSS %.1f MiB after seeding, %.1f MiB after the %d page loads, peak %.1f MiB (the core targets: <=25 idle, <=60 peak on the filesystem)",
		float64(rssSeeded)/1024, float64(rss)/1024, len(pages)*uiRounds, float64(hwm)/1024)
	return nil
}

// parallel runs fn(0..n-1) on workers goroutines, stopping at the first error.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	next := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range n {
		select {
		case next <- i:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

// uiLogin logs in through the login form and returns a client holding the session.
func uiLogin(ctx context.Context, host, user, pass string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://" + host
	resp, err := hc.Get(base + "/login")
	if err != nil {
		return nil, err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := uiLoginToken.FindSubmatch(page)
	if m == nil {
		return nil, fmt.Errorf("ui: the login page has no login token")
	}
	resp, err = hc.PostForm(base+"/login", url.Values{"login_token": {string(m[1])}, "username": {user}, "password": {pass}})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("ui: login answered %d", resp.StatusCode)
	}
	return hc, nil
}

// uiFetch reads one page whole and returns how long it took; it must answer 200.
func uiFetch(ctx context.Context, hc *http.Client, u string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return d, err
}
