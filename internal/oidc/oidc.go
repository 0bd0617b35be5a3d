// Package oidc logs browsers in through an OpenID Connect provider: the authorization
// code flow with PKCE (S256), state and nonce kept in the database under the hash of a
// state the browser holds in a cookie (so any replica serves the callback), the ID token
// verified by go-oidc (signature, issuer, audience, expiry) and its nonce checked. The
// claims become a Berth user on first login (source "oidc", no password); the groups of
// each login are stored and authorize the user's later requests (package auth reads
// them through Store.LastGroups). A successful callback starts a browser session through
// a SessionStarter (package session).
package oidc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/berth-registry/berth/internal/meta"
)

// Paths served by Handler.
const (
	LoginPath    = "/auth/oidc/login"
	CallbackPath = "/auth/oidc/callback"
)

// SessionStarter opens a browser session for a user who just logged in
// ((*session.Manager).StartSession).
type SessionStarter interface {
	StartSession(ctx context.Context, w http.ResponseWriter, r *http.Request, user string) error
}

// Accounts is what the service needs from package auth: dropping cached logins when a
// user's groups or rights change, and the audit trail.
type Accounts interface {
	Forget(name string)
	Record(e meta.AuditEntry)
}

// Options configure the service.
type Options struct {
	Issuer       string
	ClientID     string
	ClientSecret string // empty for a public client (PKCE alone)
	// RedirectURL is the callback URL registered at the provider; empty derives it
	// from each request's scheme and Host.
	RedirectURL string
	// Scopes besides openid (default profile, email, groups).
	Scopes        []string
	UsernameClaim string // default preferred_username; sub when absent
	GroupsClaim   string // default groups
	AdminGroups   []string
	DisplayName   string
	// CAFile adds roots for the provider; Insecure skips verification (tests only).
	CAFile   string
	Insecure bool
	Timeout  time.Duration // per request to the provider (default 10 s)
	// LoginTTL bounds the time between the redirect and the callback (default 10 min).
	LoginTTL time.Duration
}

// Service serves the login and callback endpoints.
type Service struct {
	opts     Options
	store    *Store
	users    *meta.Store
	accounts Accounts
	sessions SessionStarter
	client   *http.Client
	log      *slog.Logger

	mu       sync.Mutex
	provider *gooidc.Provider // discovered on first use, so Berth starts while the provider is down
}

// New returns the service; the provider is discovered on the first login.
func New(opts Options, m *meta.Store, accounts Accounts, sessions SessionStarter, log *slog.Logger) (*Service, error) {
	if opts.Issuer == "" || opts.ClientID == "" {
		return nil, errors.New("oidc: issuer and client ID are required")
	}
	if sessions == nil || accounts == nil {
		return nil, errors.New("oidc: a session starter and the accounts service are required")
	}
	if len(opts.Scopes) == 0 {
		opts.Scopes = []string{"profile", "email", "groups"}
	}
	if opts.UsernameClaim == "" {
		opts.UsernameClaim = "preferred_username"
	}
	if opts.GroupsClaim == "" {
		opts.GroupsClaim = "groups"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.LoginTTL <= 0 {
		opts.LoginTTL = 10 * time.Minute
	}
	client, err := httpClient(opts)
	if err != nil {
		return nil, err
	}
	return &Service{opts: opts, store: NewStore(m.DB()), users: m, accounts: accounts, sessions: sessions, client: client, log: log}, nil
}

func httpClient(o Options) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.CAFile != "" || o.Insecure {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure} //nolint:gosec // opt-in, for tests
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("oidc: ca: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("oidc: ca %s: no PEM certificates", o.CAFile)
			}
			cfg.RootCAs = pool
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Transport: tr, Timeout: o.Timeout}, nil
}

// Store is the identity store (auth.ExternalGroups for the auth service).
func (s *Service) Store() *Store { return s.store }

// DisplayName labels the login button.
func (s *Service) DisplayName() string { return s.opts.DisplayName }

// LoginURL is the path that starts a login returning to next (a local path; "" for /).
func (s *Service) LoginURL(next string) string {
	if next = safeNext(next); next == "/" {
		return LoginPath
	}
	return LoginPath + "?next=" + url.QueryEscape(next)
}

// clientContext carries the service's HTTP client to go-oidc and oauth2.
func (s *Service) clientContext(ctx context.Context) context.Context {
	return gooidc.ClientContext(ctx, s.client)
}

// discover returns the provider, reading its discovery document on first use. The
// provider keeps the context for later key-set refreshes, so it gets one that is not
// a request's (the client's timeout bounds each fetch).
func (s *Service) discover() (*gooidc.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider != nil {
		return s.provider, nil
	}
	p, err := gooidc.NewProvider(s.clientContext(context.Background()), s.opts.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery at %s: %w", s.opts.Issuer, err)
	}
	s.provider = p
	return p, nil
}

// oauth2Config is the client configuration for a request: the redirect URL must be the
// same in the authorization request and the code exchange.
func (s *Service) oauth2Config(p *gooidc.Provider, r *http.Request) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     s.opts.ClientID,
		ClientSecret: s.opts.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  s.redirectURL(r),
		Scopes:       append([]string{gooidc.ScopeOpenID}, s.opts.Scopes...),
	}
}

func (s *Service) redirectURL(r *http.Request) string {
	if s.opts.RedirectURL != "" {
		return s.opts.RedirectURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + CallbackPath
}
