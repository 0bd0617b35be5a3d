package session

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Cookie names. Under TLS the __Host- prefix makes the browser insist on Secure, Path=/
// and no Domain, so a sibling host cannot plant or overwrite the cookie.
const (
	cookieName       = "berth_session"
	secureCookieName = "__Host-berth_session"
)

// touchEvery bounds writes: a session's last use is recorded at most this often.
const touchEvery = time.Minute

// Options configure a Manager.
type Options struct {
	// TTL is how long a session lives at most (default 12 h).
	TTL time.Duration
	// Idle ends a session unused this long (default 1 h).
	Idle time.Duration
	// Secure marks cookies Secure even on plain HTTP requests: set when a TLS-terminating
	// proxy stands in front. Requests that arrive over TLS always get Secure cookies.
	Secure bool
}

// Manager binds sessions to browsers through a cookie.
type Manager struct {
	st   *Store
	opts Options
}

// NewManager returns a manager over st.
func NewManager(st *Store, opts Options) *Manager {
	if opts.TTL <= 0 {
		opts.TTL = 12 * time.Hour
	}
	if opts.Idle <= 0 {
		opts.Idle = time.Hour
	}
	return &Manager{st: st, opts: opts}
}

// Store returns the manager's store.
func (m *Manager) Store() *Store { return m.st }

func (m *Manager) secure(r *http.Request) bool { return m.opts.Secure || r.TLS != nil }

// Login is who a new session is for.
type Login struct {
	User   string
	Groups []string
}

// Start opens a session for the login and sets its cookie. Any session the browser
// held before is ended first, so a session token planted before login is worthless.
func (m *Manager) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, l Login) (*Session, error) {
	if old, err := m.Current(r); err == nil && old != nil {
		_ = m.st.Delete(ctx, old)
	}
	s := &Session{User: l.User, Groups: l.Groups, Remote: RemoteHost(r), Agent: truncate(r.UserAgent(), 256)}
	token, err := m.st.Create(ctx, s, m.opts.TTL)
	if err != nil {
		return nil, err
	}
	http.SetCookie(w, m.cookie(r, token, int(m.opts.TTL/time.Second)))
	return s, nil
}

// StartSession opens a session for user (an OpenID Connect login: its groups are
// resolved from the identity's stored claims, not carried by the session).
func (m *Manager) StartSession(ctx context.Context, w http.ResponseWriter, r *http.Request, user string) error {
	_, err := m.Start(ctx, w, r, Login{User: user})
	return err
}

func (m *Manager) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	c := &http.Cookie{Name: cookieName, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: maxAge}
	if m.secure(r) {
		c.Name, c.Secure = secureCookieName, true
	}
	return c
}

// Current returns the request's live session, or nil when it has none.
func (m *Manager) Current(r *http.Request) (*Session, error) {
	name := cookieName
	if m.secure(r) {
		name = secureCookieName
	}
	c, err := r.Cookie(name)
	if err != nil {
		return nil, nil
	}
	s, err := m.st.Lookup(r.Context(), c.Value, m.opts.Idle)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if time.Since(s.Seen) > touchEvery {
		if err := m.st.Touch(r.Context(), s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// End ends the request's session and clears its cookie.
func (m *Manager) End(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	s, err := m.Current(r)
	if err != nil {
		return err
	}
	http.SetCookie(w, m.cookie(r, "", -1))
	if s == nil {
		return nil
	}
	return m.st.Delete(ctx, s)
}

// EndAll ends every session of user, on every replica (the row is the session).
func (m *Manager) EndAll(ctx context.Context, user string) error {
	_, err := m.st.DeleteUser(ctx, user)
	return err
}

// ErrCSRF is returned for a state-changing request that fails the CSRF checks.
var ErrCSRF = errors.New("session: CSRF check failed")

// CSRFField is the form field (or X-CSRF-Token header) carrying the session's token.
const CSRFField = "csrf"

// CheckCSRF accepts a state-changing request only when it echoes the session's CSRF
// token and, when the browser says where it comes from, comes from this origin. The
// token alone would do; the origin check costs nothing and stops a leaked token.
func CheckCSRF(r *http.Request, s *Session) error {
	if s == nil {
		return fmt.Errorf("%w: no session", ErrCSRF)
	}
	if err := SameOrigin(r); err != nil {
		return err
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue(CSRFField)
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
		return fmt.Errorf("%w: missing or wrong token", ErrCSRF)
	}
	return nil
}

// SameOrigin refuses a request a browser marks as coming from another site.
func SameOrigin(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return fmt.Errorf("%w: cross-site request (Sec-Fetch-Site %s)", ErrCSRF, r.Header.Get("Sec-Fetch-Site"))
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return fmt.Errorf("%w: origin %q is not this site", ErrCSRF, o)
		}
	}
	return nil
}

// RemoteHost is the request's client address without the port.
func RemoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
