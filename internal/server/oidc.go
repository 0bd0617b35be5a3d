package server

import (
	"context"
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

// newWebSessions is the browser session manager (package session) of the web UI and
// the OIDC callback.
func newWebSessions(cfg config.Config, m *meta.Store) *session.Manager {
	return session.NewManager(session.NewStore(m.DB()), session.Options{
		TTL: time.Duration(cfg.UI.SessionTTL), Idle: time.Duration(cfg.UI.SessionIdle),
		// Behind a TLS-terminating proxy the requests arrive as plain HTTP.
		Secure: cfg.UI.SecureCookies || strings.HasPrefix(cfg.Auth.OIDC.ResolvedRedirectURL(), "https:"),
	})
}

// uiCLISecrets gives the web UI the CLI secrets of OIDC users, recording rotations in
// the audit trail (the UI changes nothing else outside the admin API).
type uiCLISecrets struct{ svc *auth.Service }

func (c uiCLISecrets) Rotate(ctx context.Context, user string) (string, error) {
	secret, err := c.svc.CLISecrets().Rotate(ctx, user)
	if err == nil {
		c.svc.Record(meta.AuditEntry{Actor: user, ActorType: "user", Action: "user.cli-secret", Resource: "user$" + user,
			Result: "ok", Remote: "web", Detail: "rotated in the web UI"})
	}
	return secret, err
}

func (c uiCLISecrets) Status(ctx context.Context, user string) (time.Time, bool, error) {
	st, err := c.svc.CLISecrets().Status(ctx, user)
	return st.CreatedAt, st.Exists, err
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
