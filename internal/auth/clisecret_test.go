package auth

// CLI secrets: the password of OIDC users for Basic auth and the token endpoint —
// rotation, revocation, the stored groups becoming the principal's, and what a secret
// must never open.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

// fixedGroups is ExternalGroups from a map.
type fixedGroups map[string][]string

func (f fixedGroups) LastGroups(_ context.Context, user string) ([]string, error) {
	return f[user], nil
}

func TestCLISecrets(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	if _, err := w.m.CreateUser(ctx, meta.User{Name: "ola", Source: "oidc"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.m.CreateUser(ctx, meta.User{Name: "lena", Source: "ldap"}); err != nil {
		t.Fatal(err)
	}
	s, _ := w.service(t, Options{BasicCacheTTL: time.Hour, MaxFailures: 1000,
		GroupRoles: map[string]map[string]Role{"sso-devs": {"other": Developer}}})
	s.SetExternalGroups(fixedGroups{"ola": {"sso-devs"}})
	cs := s.CLISecrets()

	if st, err := cs.Status(ctx, "ola"); err != nil || st.Exists {
		t.Fatalf("status before any secret = %+v, %v", st, err)
	}
	if _, err := s.Login(ctx, "ola", "", "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("login with an empty secret: %v", err)
	}
	first, err := cs.Rotate(ctx, "ola")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first, cliSecretPrefix) || len(first) < len(cliSecretPrefix)+43 {
		t.Fatalf("secret %q: want the prefix and 32 bytes base64url", first)
	}
	if st, err := cs.Status(ctx, "ola"); err != nil || !st.Exists || time.Since(st.CreatedAt) > time.Minute {
		t.Fatalf("status after rotate = %+v, %v", st, err)
	}
	p, err := s.Login(ctx, "ola", first, "10.0.0.1")
	if err != nil {
		t.Fatalf("login with the secret: %v", err)
	}
	if !slices.Equal(p.Groups, []string{"sso-devs"}) || p.Admin || p.Kind != "user" {
		t.Fatalf("principal %+v: want user ola with the stored groups", p)
	}
	// The stored group's mapping authorizes, as an LDAP group's does.
	if got, err := s.Allowed(ctx, p, "other/app", []Action{Pull, Push, Delete}); err != nil || actionsString(got) != "[pull,push]" {
		t.Fatalf("allowed on other/app = %v, %v; want pull,push", got, err)
	}
	if got, _ := s.Allowed(ctx, p, "team/app", []Action{Pull, Push}); len(got) != 0 {
		t.Fatalf("allowed on team/app = %v; want nothing", got)
	}
	// A token's principal is rebuilt with the stored groups, not the token's.
	if p, err := s.Principal(ctx, "user", "ola", []string{"forged"}); err != nil || !slices.Equal(p.Groups, []string{"sso-devs"}) {
		t.Fatalf("Principal = %+v, %v", p, err)
	}

	second, err := cs.Rotate(ctx, "ola")
	if err != nil || second == first {
		t.Fatalf("rotate again: %q, %v", second, err)
	}
	// The old secret was in the login cache; rotation must drop it at once.
	if _, err := s.Login(ctx, "ola", first, "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("old secret after rotation: %v, want invalid credentials", err)
	}
	if _, err := s.Login(ctx, "ola", second, "10.0.0.1"); err != nil {
		t.Fatalf("new secret: %v", err)
	}
	if err := cs.Revoke(ctx, "ola"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, "ola", second, "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("revoked secret: %v", err)
	}

	for _, tc := range []struct{ user, want string }{
		{"dave", "local"}, {"lena", "ldap"}, {"nobody", "unknown"},
	} {
		_, err := cs.Rotate(ctx, tc.user)
		if tc.want == "unknown" && !errors.Is(err, meta.ErrNotFound) || tc.want != "unknown" && !errors.Is(err, ErrNotOIDCUser) {
			t.Errorf("rotate for %s user %s: %v", tc.want, tc.user, err)
		}
	}
}

func TestCLISecretOfAnEarlierAccountOpensNothing(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	if _, err := w.m.CreateUser(ctx, meta.User{Name: "ola", Source: "oidc"}); err != nil {
		t.Fatal(err)
	}
	s, _ := w.service(t, Options{MaxFailures: 1000})
	secret, err := s.CLISecrets().Rotate(ctx, "ola")
	if err != nil {
		t.Fatal(err)
	}
	// The account is deleted and a new one of the same name made later: the old row
	// (left behind by a delete) must not open it.
	if err := w.m.DeleteUser(ctx, "ola"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := w.m.CreateUser(ctx, meta.User{Name: "ola", Source: "oidc"}); err != nil {
		t.Fatal(err)
	}
	s.Forget("ola")
	if _, err := s.Login(ctx, "ola", secret, "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("an earlier account's secret: %v, want invalid credentials", err)
	}
}

func TestDisabledOIDCUserSecretRefused(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	u, err := w.m.CreateUser(ctx, meta.User{Name: "ola", Source: "oidc"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := w.service(t, Options{MaxFailures: 1000})
	secret, err := s.CLISecrets().Rotate(ctx, "ola")
	if err != nil {
		t.Fatal(err)
	}
	u.Disabled = true
	if err := w.m.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	s.Forget("ola")
	if _, err := s.Login(ctx, "ola", secret, "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("disabled user's secret: %v", err)
	}
}

// TestCLISecretsOnEveryBackend runs the secret's queries on SQLite and PostgreSQL.
func TestCLISecretsOnEveryBackend(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			m := b.Open(t)
			if _, err := m.CreateUser(ctx, meta.User{Name: "ola", Source: "oidc"}); err != nil {
				t.Fatal(err)
			}
			s := New(m, nil, newTestTokens(t, m, TokenOptions{}), Options{MaxFailures: 1000}, quietLog())
			t.Cleanup(s.Close)
			first, err := s.CLISecrets().Rotate(ctx, "ola")
			if err != nil {
				t.Fatal(err)
			}
			second, err := s.CLISecrets().Rotate(ctx, "ola") // the upsert path
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Login(ctx, "ola", first, "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("first secret after rotation: %v", err)
			}
			if _, err := s.Login(ctx, "ola", second, "10.0.0.1"); err != nil {
				t.Fatalf("second secret: %v", err)
			}
			if st, err := s.CLISecrets().Status(ctx, "ola"); err != nil || !st.Exists {
				t.Fatalf("status %+v, %v", st, err)
			}
			if err := s.CLISecrets().Revoke(ctx, "ola"); err != nil {
				t.Fatal(err)
			}
			if st, err := s.CLISecrets().Status(ctx, "ola"); err != nil || st.Exists {
				t.Fatalf("status after revoke %+v, %v", st, err)
			}
		})
	}
}
