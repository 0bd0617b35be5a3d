package server

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oidc"
	"github.com/berth-registry/berth/internal/session"
)

// newWebSessions is the browser session manager (package session) shared by the web UI
// and the OIDC callback.
func newWebSessions(cfg config.Config, m *meta.Store) *session.Manager {
	return session.NewManager(session.NewStore(m.DB()), session.Options{
		// Behind a TLS-terminating proxy the requests arrive as plain HTTP.
		Secure: strings.HasPrefix(cfg.Auth.OIDC.ResolvedRedirectURL(), "https:"),
	})
}

// newOIDC builds the OIDC login service (nil with auth.oidc off) and makes OIDC users'
// stored groups part of their principals.
func newOIDC(cfg config.Config, m *meta.Store, authSvc *auth.Service, sessions oidc.SessionStarter, log *slog.Logger) (*oidc.Service, error) {
	o := cfg.Auth.OIDC
	if !o.Enabled || authSvc == nil {
		return nil, nil
	}
	secret, err := secretFrom(o.ClientSecret, o.ClientSecretFile, o.ClientSecretEnv)
	if err != nil {
		return nil, fmt.Errorf("auth.oidc: client secret: %w", err)
	}
	svc, err := oidc.New(oidc.Options{
		Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret, RedirectURL: o.ResolvedRedirectURL(),
		Scopes: o.Scopes, UsernameClaim: o.UsernameClaim, GroupsClaim: o.GroupsClaim, AdminGroups: o.AdminGroups,
		DisplayName: o.DisplayName, CAFile: o.CA, Insecure: o.Insecure, Timeout: time.Duration(o.Timeout),
	}, m, authSvc, sessions, log)
	if err != nil {
		return nil, fmt.Errorf("auth.oidc: %w", err)
	}
	authSvc.SetExternalGroups(svc.Store())
	return svc, nil
}
