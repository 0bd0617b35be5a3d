package oidctest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Browser is a cookie-keeping HTTP client that follows redirects like a browser and
// remembers where it went.
type Browser struct {
	Client *http.Client
	// Visited are the URLs of every request, redirects included, in order.
	Visited []*url.URL
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &Browser{}
	b.Client = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		b.Visited = append(b.Visited, req.URL)
		if len(via) > 20 {
			return fmt.Errorf("too many redirects")
		}
		return nil
	}}
	return b
}

// Page is a response with its body read.
type Page struct {
	Status int
	URL    *url.URL // where the browser ended up
	Body   string
}

// Get loads u, following redirects.
func (b *Browser) Get(t testing.TB, u string) Page {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, req)
}

func (b *Browser) do(t testing.TB, req *http.Request) Page {
	t.Helper()
	b.Visited = append(b.Visited, req.URL)
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Page{Status: resp.StatusCode, URL: resp.Request.URL, Body: string(body)}
}

var authRequestID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// Login starts at loginURL (the relying party's login endpoint), fills the provider's
// login form with username and password, and follows the redirects back to wherever the
// relying party sends the browser; it returns that last page.
func (b *Browser) Login(t testing.TB, loginURL, username, password string) Page {
	t.Helper()
	form := b.Get(t, loginURL)
	m := authRequestID.FindStringSubmatch(form.Body)
	if form.Status != http.StatusOK || m == nil {
		t.Fatalf("GET %s: expected the provider's login form, got %d at %s:\n%.500s", loginURL, form.Status, form.URL, form.Body)
	}
	action := *form.URL
	action.Path, action.RawQuery = LoginFormPath, ""
	vals := url.Values{"id": {m[1]}, "username": {username}, "password": {password}}
	req, err := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(vals.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

// LastVisit returns the last visited URL whose path is path (nil if none).
func (b *Browser) LastVisit(path string) *url.URL {
	for i := len(b.Visited) - 1; i >= 0; i-- {
		if b.Visited[i].Path == path {
			return b.Visited[i]
		}
	}
	return nil
}

// PostForm submits a form to u as a page of origin would (Origin header set).
func (b *Browser) PostForm(t testing.TB, u, origin string, form url.Values) Page {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return b.do(t, req)
}
