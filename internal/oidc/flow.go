package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/session"
)

// Handler serves LoginPath and CallbackPath (mount it at /auth/oidc/).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LoginPath, s.login)
	mux.HandleFunc("GET "+CallbackPath, s.callback)
	return mux
}

// stateCookiePrefix names the cookie of one login in flight: one cookie per state, so
// logins started in two tabs do not overwrite each other's.
const stateCookiePrefix = "berth_oidc_"

func stateCookieName(stateHash string) string { return stateCookiePrefix + stateHash[:16] }

func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashState(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

// login redirects the browser to the provider.
func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	p, err := s.discover()
	if err != nil {
		s.log.Warn("oidc provider unavailable", "err", err)
		s.fail(w, http.StatusServiceUnavailable, "The identity provider is unavailable; try again later.")
		return
	}
	state, err1 := randomToken()
	nonce, err2 := randomToken()
	if err := errors.Join(err1, err2); err != nil {
		s.fail(w, http.StatusInternalServerError, "Could not start the login.")
		return
	}
	verifier := oauth2.GenerateVerifier()
	sh := hashState(state)
	if err := s.store.putLogin(r.Context(), sh, pending{Verifier: verifier, Nonce: nonce, Next: safeNext(r.URL.Query().Get("next")),
		Expires: time.Now().Add(s.opts.LoginTTL)}); err != nil {
		if errors.Is(err, errTooManyLogins) {
			s.log.Warn("oidc: refusing logins: too many in flight (a flood of login requests?)", "max", maxPending)
			s.fail(w, http.StatusServiceUnavailable, "Too many logins are in progress; try again in a few minutes.")
			return
		}
		s.log.Error("oidc login", "err", err)
		s.fail(w, http.StatusInternalServerError, "Could not start the login.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookieName(sh), Value: state, Path: "/auth/oidc/", HttpOnly: true,
		// Lax: the provider's redirect back is a top-level GET from another site.
		SameSite: http.SameSiteLaxMode, Secure: s.secure(r), MaxAge: int(s.opts.LoginTTL / time.Second)})
	u := s.oauth2Config(p, r).AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	http.Redirect(w, r, u, http.StatusFound)
}

func (s *Service) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(s.redirectURL(r), "https:")
}

// callback finishes a login: the state must be the browser's own and unused, the code
// is exchanged with the PKCE verifier, and the ID token must verify and carry the nonce.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		s.refuse(w, r, "", http.StatusBadRequest, "no state", "The login response is incomplete; start the login again.")
		return
	}
	sh := hashState(state)
	c, err := r.Cookie(stateCookieName(sh))
	// The cookie ties the state to this browser: a callback URL sent to someone else
	// (login CSRF) finds no cookie.
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		s.refuse(w, r, "", http.StatusBadRequest, "state not bound to this browser", "This login was not started in this browser; start the login again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: c.Name, Value: "", Path: "/auth/oidc/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: s.secure(r), MaxAge: -1})
	login, err := s.store.takeLogin(ctx, sh)
	if errors.Is(err, ErrNotFound) {
		s.refuse(w, r, "", http.StatusBadRequest, "unknown or used state", "This login was already used or has expired; start the login again.")
		return
	}
	if err != nil {
		s.log.Error("oidc callback", "err", err)
		s.fail(w, http.StatusInternalServerError, "The login failed.")
		return
	}
	if time.Now().After(login.Expires) {
		s.refuse(w, r, "", http.StatusBadRequest, "state expired", "This login has expired; start the login again.")
		return
	}
	if e := q.Get("error"); e != "" {
		// The provider's own words, for the user; they are not secrets.
		s.refuse(w, r, "", http.StatusUnauthorized, "provider error "+truncate(e, 64), "The identity provider refused the login: "+truncate(e+" "+q.Get("error_description"), 300))
		return
	}
	p, err := s.discover()
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, "The identity provider is unavailable; try again later.")
		return
	}
	octx := s.clientContext(ctx)
	tok, err := s.oauth2Config(p, r).Exchange(octx, q.Get("code"), oauth2.VerifierOption(login.Verifier))
	if err != nil {
		s.log.Warn("oidc code exchange refused", "err", redactErr(err))
		s.refuse(w, r, "", http.StatusUnauthorized, "code exchange refused", "The identity provider did not accept the login code; start the login again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		s.refuse(w, r, "", http.StatusUnauthorized, "no id_token", "The identity provider sent no ID token.")
		return
	}
	idt, err := p.Verifier(&gooidc.Config{ClientID: s.opts.ClientID}).Verify(octx, raw)
	if err != nil {
		s.log.Warn("oidc id token refused", "err", err)
		s.refuse(w, r, "", http.StatusUnauthorized, "id token invalid", "The ID token did not verify.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(login.Nonce)) != 1 {
		s.refuse(w, r, "", http.StatusUnauthorized, "nonce mismatch", "The ID token was not issued for this login.")
		return
	}
	claims, err := s.claims(octx, p, idt, tok)
	if err != nil {
		s.log.Warn("oidc claims", "err", err)
		s.refuse(w, r, "", http.StatusUnauthorized, "claims", "The identity provider's answer was unusable.")
		return
	}
	id, err := s.identity(idt.Issuer, idt.Subject, claims)
	if err != nil {
		s.refuse(w, r, "", http.StatusForbidden, err.Error(), userMessage(err))
		return
	}
	user, err := s.link(ctx, id)
	if err != nil {
		if errors.Is(err, errRefused) {
			s.refuse(w, r, id.username, http.StatusForbidden, err.Error(), userMessage(err))
			return
		}
		s.log.Error("oidc login", "user", id.username, "err", err)
		s.fail(w, http.StatusInternalServerError, "The login failed.")
		return
	}
	if err := s.sessions.StartSession(ctx, w, r, user); err != nil {
		s.log.Error("oidc session", "user", user, "err", err)
		s.fail(w, http.StatusInternalServerError, "Could not start the session.")
		return
	}
	s.accounts.Record(meta.AuditEntry{Actor: user, ActorType: "user", Action: "login", Result: "ok", Remote: session.RemoteHost(r), Detail: "oidc"})
	http.Redirect(w, r, login.Next, http.StatusFound)
}

// claims merges the userinfo endpoint's claims under the ID token's when the token
// lacks the user name or groups claim (many providers send them only there).
func (s *Service) claims(ctx context.Context, p *gooidc.Provider, idt *gooidc.IDToken, tok *oauth2.Token) (map[string]any, error) {
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	_, hasName := claims[s.opts.UsernameClaim]
	_, hasGroups := claims[s.opts.GroupsClaim]
	if (hasName && hasGroups) || p.UserInfoEndpoint() == "" {
		return claims, nil
	}
	ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, err
	}
	// OIDC Core 5.3.2: userinfo about another subject must not be used.
	if ui.Subject != idt.Subject {
		return nil, errors.New("userinfo subject differs from the ID token's")
	}
	extra := map[string]any{}
	if err := ui.Claims(&extra); err != nil {
		return nil, err
	}
	for k, v := range extra {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	return claims, nil
}

// safeNext keeps a post-login target only when it is a path on this site: an absolute
// or scheme-relative URL would make the login an open redirect.
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f {
			return "/"
		}
	}
	return next
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// redactErr keeps the OAuth error code of a failed exchange but not the response body,
// which may echo what was sent.
func redactErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return "token endpoint: " + re.ErrorCode + " (HTTP " + http.StatusText(re.Response.StatusCode) + ")"
	}
	return err.Error()
}

// refuse records a refused login and answers the browser.
func (s *Service) refuse(w http.ResponseWriter, r *http.Request, user string, status int, detail, message string) {
	actor := user
	if actor == "" {
		actor = "oidc"
	}
	s.accounts.Record(meta.AuditEntry{Actor: actor, ActorType: "user", Action: "login", Result: "failed", Remote: session.RemoteHost(r), Detail: "oidc: " + detail})
	s.fail(w, status, message)
}

var failPage = template.Must(template.New("fail").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Login failed</title></head>
<body><h1>Login failed</h1><p>{{.}}</p><p><a href="/">Back to Berth</a></p></body></html>
`))

func (s *Service) fail(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = failPage.Execute(w, message)
}
