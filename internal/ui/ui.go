// Package ui is Berth's web interface, served by `berth serve` at / on the registry's
// own port: server-rendered HTML (html/template) with one small script of our own for
// copy buttons, embedded in the binary, with no build step and no third-party assets.
//
// The UI is a client of the admin API: it calls the API in process as the session's
// user (adminapi.API.ServeAs), so every permission check, validation and audit entry is
// the API's own, and a forged form fails exactly as a forged API call does. Only what
// the API does not serve — a manifest's content, its referrers, signature verdicts — is
// read from the registry directly, after the same pull-right check /v2/ makes.
//
// Sessions live in the database (package session); every state-changing form carries
// the session's CSRF token; responses forbid framing and inline script (CSP).
package ui

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/session"
	"github.com/berth-registry/berth/internal/trust"
)

//go:embed templates static
var assets embed.FS

// API is the admin API, served in process on behalf of a principal.
type API interface {
	ServeAs(w http.ResponseWriter, r *http.Request, p *auth.Principal)
}

// Verifier reaches signature verdicts (package trust); nil when no policy exists.
type Verifier interface {
	VerifyImage(ctx context.Context, repo string, ref registry.Reference) (trust.Verdict, error)
}

// Deps are what the UI reads and changes through.
type Deps struct {
	Auth     *auth.Service
	Sessions *session.Manager
	API      API
	Registry *registry.Registry
	Trust    Verifier // may be nil
	Mirror   Mirror   // may be nil (no upstreams)
	// OIDC names the OpenID Connect provider on the login page ("" when none): its
	// button starts /auth/oidc/login.
	OIDC string
	// CLISecrets manages OpenID users' CLI secrets; nil without OpenID Connect.
	CLISecrets CLISecrets
	// System reports background jobs and GC for the system page; may be nil.
	System System
	Log    *slog.Logger
}

// CLISecrets rotates and describes the secret an OpenID user logs in with from the
// command line (docker login), having no password.
type CLISecrets interface {
	Rotate(ctx context.Context, user string) (string, error)
	Status(ctx context.Context, user string) (created time.Time, exists bool, err error)
}

// UI is the web interface's handler.
type UI struct {
	d     Deps
	mux   *http.ServeMux
	pages *pages
}

// New returns the UI.
func New(d Deps) (*UI, error) {
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	u := &UI{d: d, mux: http.NewServeMux(), pages: p}
	static, _ := fs.Sub(assets, "static")
	u.mux.Handle("GET /static/", http.StripPrefix("/static/", staticFiles(static)))
	u.routes()
	return u, nil
}

// ServeHTTP sets the security headers every page carries and serves the request.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	u.mux.ServeHTTP(w, r)
}

func staticFiles(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// handler serves one page for a logged-in user.
type handler func(w http.ResponseWriter, r *http.Request, v *visit) error

// visit is one request's session and principal.
type visit struct {
	s *session.Session
	p *auth.Principal
}

// page wraps h: no session sends the browser to the login page; a POST must pass
// the CSRF checks; errors become an error page with the API's status.
func (u *UI) page(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		s, err := u.d.Sessions.Current(r)
		if err != nil {
			u.fail(w, r, nil, err)
			return
		}
		var p *auth.Principal
		if s != nil {
			p, err = u.d.Auth.Principal(r.Context(), "user", s.User, s.Groups)
			if errors.Is(err, auth.ErrInvalidCredentials) { // deleted or disabled since
				_ = u.d.Sessions.End(r.Context(), w, r)
				s, err = nil, nil
			}
			if err != nil {
				u.fail(w, r, nil, err)
				return
			}
		}
		if s == nil {
			if r.Method != http.MethodGet {
				u.fail(w, r, nil, errStatus(http.StatusUnauthorized, "your session has ended; log in again"))
				return
			}
			http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		v := &visit{s: s, p: p}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if err := session.CheckCSRF(r, s); err != nil {
				u.fail(w, r, v, errStatus(http.StatusForbidden, "this form is stale or did not come from this site; reload the page and try again"))
				return
			}
		}
		if err := h(w, r, v); err != nil {
			u.fail(w, r, v, err)
		}
	})
}

// statusError is an error with the HTTP status its page answers with.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func errStatus(status int, msg string) error { return &statusError{status: status, msg: msg} }

func (u *UI) fail(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	status, msg := http.StatusInternalServerError, "something went wrong; the server log has the details"
	var se *statusError
	var ae *apiError
	switch {
	case errors.As(err, &se):
		status, msg = se.status, se.msg
	case errors.As(err, &ae):
		status, msg = ae.status, ae.message
	default:
		u.d.Log.Error("ui", "path", r.URL.Path, "err", err)
	}
	u.render(w, r, v, status, "error", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg})
}
