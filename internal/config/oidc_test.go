package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOIDCValidate(t *testing.T) {
	valid := func() OIDC {
		o := defaultOIDC()
		o.Enabled, o.Issuer, o.ClientID, o.ClientSecret = true, "https://login.example.com/realms/x", "berth", "s"
		return o
	}
	for _, tc := range []struct {
		name string
		mod  func(*OIDC)
		auth bool
		want string // "" valid
	}{
		{"valid", func(*OIDC) {}, true, ""},
		{"disabled is never checked", func(o *OIDC) { o.Enabled, o.Issuer = false, "::" }, false, ""},
		{"needs auth", func(*OIDC) {}, false, "needs auth.enabled"},
		{"issuer not a URL", func(o *OIDC) { o.Issuer = "login.example.com" }, true, "auth.oidc.issuer"},
		{"issuer with query", func(o *OIDC) { o.Issuer = "https://x/?a=b" }, true, "auth.oidc.issuer"},
		{"no client id", func(o *OIDC) { o.ClientID = "" }, true, "clientID is required"},
		{"two secret sources", func(o *OIDC) { o.ClientSecretEnv = "X" }, true, "at most one of clientSecret"},
		{"public client", func(o *OIDC) { o.ClientSecret = "" }, true, ""},
		{"redirect elsewhere", func(o *OIDC) { o.RedirectURL = "https://r.example.com/callback" }, true, "its path must be"},
		{"redirect ok", func(o *OIDC) { o.RedirectURL = "https://r.example.com/auth/oidc/callback" }, true, ""},
		{"external with path", func(o *OIDC) { o.ExternalURL = "https://r.example.com/x" }, true, "bare base URL"},
		{"bad role", func(o *OIDC) { o.GroupRoles = []GroupRole{{Group: "g", Project: "p", Role: "owner"}} }, true, "groupRoles[0].role"},
		{"role without project", func(o *OIDC) { o.GroupRoles = []GroupRole{{Group: "g", Role: "guest"}} }, true, "group and project are required"},
		{"empty admin group", func(o *OIDC) { o.AdminGroups = []string{""} }, true, "adminGroups"},
		{"empty username claim", func(o *OIDC) { o.UsernameClaim = "" }, true, "usernameClaim"},
		{"scope with space", func(o *OIDC) { o.Scopes = []string{"a b"} }, true, "scopes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := valid()
			tc.mod(&o)
			got := ""
			for _, e := range o.validate(tc.auth) {
				got += e.Error() + "; "
			}
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("validate = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOIDCRedirectURL(t *testing.T) {
	for _, tc := range []struct{ redirect, external, want string }{
		{"", "", ""},
		{"", "https://r.example.com/", "https://r.example.com/auth/oidc/callback"},
		{"https://a.example.com/auth/oidc/callback", "https://r.example.com", "https://a.example.com/auth/oidc/callback"},
	} {
		if got := (OIDC{RedirectURL: tc.redirect, ExternalURL: tc.external}).ResolvedRedirectURL(); got != tc.want {
			t.Errorf("ResolvedRedirectURL(%q, %q) = %q, want %q", tc.redirect, tc.external, got, tc.want)
		}
	}
}

func TestOIDCSecretRedactedAndFromEnv(t *testing.T) {
	p := filepath.Join(t.TempDir(), "berth.yaml")
	cfg := `auth:
  enabled: true
  admin: {username: admin, password: pw12345678}
  oidc:
    enabled: true
    issuer: http://127.0.0.1:9998
    clientID: berth
    clientSecretEnv: BERTH_TEST_OIDC_SECRET
    groupRoles:
      - {group: devs, project: team, role: developer}
`
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The variable clientSecretEnv names is a secret source, not an unknown setting.
	c, err := Load(p, []string{"BERTH_TEST_OIDC_SECRET=x", "BERTH_AUTH_OIDC_DISPLAY_NAME=Corp SSO"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Auth.OIDC.DisplayName != "Corp SSO" || c.Auth.OIDC.UsernameClaim != "preferred_username" || len(c.Auth.OIDC.GroupRoles) != 1 {
		t.Errorf("oidc = %+v", c.Auth.OIDC)
	}
	c.Auth.OIDC.ClientSecret = "very-secret-client"
	if out := c.Redacted(); strings.Contains(out, "very-secret-client") || !strings.Contains(out, "clientSecret: REDACTED") {
		t.Errorf("Redacted() shows auth.oidc.clientSecret:\n%s", out)
	}
}
