package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// OIDC configures browser logins through an OpenID Connect provider (package oidc):
// the authorization code flow with PKCE. Users are created on their first login
// (source "oidc", no password); since they have no password, each gets a CLI secret
// (shown once in the UI or by the admin API) that docker login, crane and helm use
// instead.
type OIDC struct {
	Enabled bool `yaml:"enabled"`
	// Issuer is the provider's issuer URL (https://login.example.com/realms/x); its
	// discovery document is read from <issuer>/.well-known/openid-configuration.
	Issuer string `yaml:"issuer"`
	// ClientID and the client secret are Berth's registration at the provider. One of
	// ClientSecret, ClientSecretFile and ClientSecretEnv (none for a public client).
	ClientID         string `yaml:"clientID"`
	ClientSecret     string `yaml:"clientSecret" secret:"true"`
	ClientSecretFile string `yaml:"clientSecretFile"`
	ClientSecretEnv  string `yaml:"clientSecretEnv"`
	// RedirectURL is the callback registered at the provider; empty derives it from
	// ExternalURL (<externalURL>/auth/oidc/callback), and with neither set from the
	// request's scheme and Host (the provider refuses any URL it does not know).
	RedirectURL string `yaml:"redirectURL"`
	// ExternalURL is Berth's public base URL (https://registry.example.com).
	ExternalURL string `yaml:"externalURL"`
	// Scopes requested besides openid (default profile, email and groups).
	Scopes []string `yaml:"scopes"`
	// UsernameClaim names the claim that becomes the Berth user name on first login
	// (default preferred_username; sub when the claim is absent). Names are lower-cased.
	UsernameClaim string `yaml:"usernameClaim"`
	// GroupsClaim names the claim listing the user's groups (default groups).
	GroupsClaim string `yaml:"groupsClaim"`
	// GroupRoles gives the provider's groups roles in projects, as auth.ldap.groupRoles
	// does for directory groups (group names share one namespace).
	GroupRoles []GroupRole `yaml:"groupRoles"`
	// AdminGroups are groups whose members are system administrators (granted and
	// taken away at each login).
	AdminGroups []string `yaml:"adminGroups"`
	// DisplayName labels the login button ("Log in with <displayName>").
	DisplayName string `yaml:"displayName"`
	// CA is a PEM file of extra roots for the provider; Insecure skips verification
	// (testing only).
	CA       string `yaml:"ca"`
	Insecure bool   `yaml:"insecure"`
	// Timeout bounds each request to the provider.
	Timeout Duration `yaml:"timeout"`
}

// OIDCCallbackPath is where the provider sends the browser back.
const OIDCCallbackPath = "/auth/oidc/callback"

func defaultOIDC() OIDC {
	return OIDC{UsernameClaim: "preferred_username", GroupsClaim: "groups", DisplayName: "OpenID Connect",
		Timeout: Duration(10 * time.Second)}
}

// ResolvedRedirectURL is the configured callback URL, "" when it is derived from each
// request.
func (o OIDC) ResolvedRedirectURL() string {
	if o.RedirectURL != "" {
		return o.RedirectURL
	}
	if o.ExternalURL != "" {
		return strings.TrimRight(o.ExternalURL, "/") + OIDCCallbackPath
	}
	return ""
}

func (o OIDC) validate(authEnabled bool) []error {
	if !o.Enabled {
		return nil
	}
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if !authEnabled {
		bad("auth.oidc.enabled needs auth.enabled: true")
	}
	if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		bad("auth.oidc.issuer %q: want the provider's http(s) issuer URL, without credentials, query or fragment", o.Issuer)
	}
	if o.ClientID == "" {
		bad("auth.oidc.clientID is required")
	}
	n := 0
	for _, v := range []string{o.ClientSecret, o.ClientSecretFile, o.ClientSecretEnv} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		bad("auth.oidc: set at most one of clientSecret, clientSecretFile and clientSecretEnv")
	}
	for _, f := range []struct{ key, v string }{{"redirectURL", o.RedirectURL}, {"externalURL", o.ExternalURL}} {
		if f.v == "" {
			continue
		}
		if u, err := url.Parse(f.v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" {
			bad("auth.oidc.%s %q: want an absolute http(s) URL without credentials, query or fragment", f.key, f.v)
		}
	}
	if o.RedirectURL != "" {
		if u, err := url.Parse(o.RedirectURL); err == nil && u.Path != OIDCCallbackPath {
			bad("auth.oidc.redirectURL %q: its path must be %s, where Berth serves the callback", o.RedirectURL, OIDCCallbackPath)
		}
	}
	if o.ExternalURL != "" {
		if u, err := url.Parse(o.ExternalURL); err == nil && strings.Trim(u.Path, "/") != "" {
			bad("auth.oidc.externalURL %q: want a bare base URL (https://host[:port])", o.ExternalURL)
		}
	}
	if o.UsernameClaim == "" || o.GroupsClaim == "" {
		bad("auth.oidc.usernameClaim and auth.oidc.groupsClaim must not be empty")
	}
	for _, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			bad("auth.oidc.scopes: %q is not a scope token", s)
		}
	}
	for i, g := range o.GroupRoles {
		if !validRole(g.Role) {
			bad("auth.oidc.groupRoles[%d].role %q: want guest, developer, maintainer or admin", i, g.Role)
		}
		if g.Group == "" || g.Project == "" {
			bad("auth.oidc.groupRoles[%d]: group and project are required", i)
		}
	}
	for _, g := range o.AdminGroups {
		if g == "" {
			bad("auth.oidc.adminGroups: empty group name")
		}
	}
	if o.CA != "" && o.Insecure {
		bad("auth.oidc: set at most one of ca and insecure")
	}
	if o.Timeout <= 0 {
		bad("auth.oidc.timeout must be positive")
	}
	return errs
}

func validRole(r string) bool {
	switch r {
	case "guest", "developer", "maintainer", "admin":
		return true
	}
	return false
}
