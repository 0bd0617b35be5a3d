package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/session"
)

// loginCookie carries the login form's CSRF token (double submit): before login there
// is no session to hold one, and a forged login would sign the victim in as the
// attacker.
const loginCookie = "berth_login"

func (u *UI) loginForm(w http.ResponseWriter, r *http.Request) {
	u.showLogin(w, r, http.StatusOK, "")
}

func (u *UI) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: token, Path: "/login", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	u.render(w, r, nil, status, "login", map[string]any{
		"Title": "Log in", "Token": token, "Next": localPath(r.FormValue("next")), "Error": msg,
		"Username": r.PostFormValue("username"), "OIDC": u.d.OIDC,
	})
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	c, err := r.Cookie(loginCookie)
	form := r.PostFormValue("login_token")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 || session.SameOrigin(r) != nil {
		u.showLogin(w, r, http.StatusForbidden, "The login form expired or did not come from this site. Try again.")
		return
	}
	user, pass := strings.TrimSpace(r.PostFormValue("username")), r.PostFormValue("password")
	p, err := u.d.Auth.Login(r.Context(), user, pass, session.RemoteHost(r))
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		u.showLogin(w, r, http.StatusUnauthorized, "Wrong username or password.")
		return
	case errors.Is(err, auth.ErrTooManyFailures):
		u.showLogin(w, r, http.StatusTooManyRequests, "Too many failed logins. Try again later.")
		return
	case errors.Is(err, auth.ErrDirectoryDown):
		u.showLogin(w, r, http.StatusServiceUnavailable, "The directory (LDAP) is unavailable. Try again later.")
		return
	case err != nil:
		u.fail(w, r, nil, err)
		return
	case p.Kind != "user":
		u.showLogin(w, r, http.StatusForbidden, "Robot accounts cannot log in to the web interface.")
		return
	}
	if _, err := u.d.Sessions.Start(r.Context(), w, r, session.Login{User: p.Name, Groups: p.Groups}); err != nil {
		u.fail(w, r, nil, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/login", MaxAge: -1})
	next := localPath(r.PostFormValue("next"))
	if next == "" {
		next = "/projects"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request, v *visit) error {
	if err := u.d.Sessions.End(r.Context(), w, r); err != nil {
		return err
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// logoutAll ends every session of the user, on every replica and browser.
func (u *UI) logoutAll(w http.ResponseWriter, r *http.Request, v *visit) error {
	if err := u.d.Sessions.EndAll(r.Context(), v.s.User); err != nil {
		return err
	}
	_ = u.d.Sessions.End(r.Context(), w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// localPath keeps a redirect target only when it is a path on this site: never
// another host (//evil, /\evil), never a scheme.
func localPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return ""
	}
	return p
}
