package oidc

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/berth-registry/berth/internal/meta"
)

// errRefused marks a login refused for what the identity is, not for a fault.
var errRefused = errors.New("oidc: login refused")

// refusal is errRefused with what to tell the user.
type refusal struct{ msg string }

func (r refusal) Error() string { return "oidc: " + r.msg }
func (r refusal) Unwrap() error { return errRefused }

func userMessage(err error) string {
	var r refusal
	if errors.As(err, &r) {
		return r.msg
	}
	return "The login was refused."
}

// identity is what a login asserts.
type identity struct {
	issuer, subject string
	username, email string
	groups          []string
}

// userName is the admin API's grammar for account names.
var userName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// reservedNames name admin API paths under /users, not accounts.
var reservedNames = []string{"me", "import"}

// Limits on a groups claim: a provider may list many groups, but not without bound.
const (
	maxGroups     = 500
	maxGroupBytes = 256
)

// identity reads the user name and groups from the claims.
func (s *Service) identity(issuer, subject string, claims map[string]any) (identity, error) {
	id := identity{issuer: issuer, subject: subject}
	if subject == "" {
		return id, refusal{"the identity provider sent no subject"}
	}
	name, _ := claims[s.opts.UsernameClaim].(string)
	if name == "" {
		name = subject
	}
	id.username = strings.ToLower(name)
	if !userName.MatchString(id.username) || slices.Contains(reservedNames, id.username) {
		return id, refusal{fmt.Sprintf("the identity provider's user name %q is not a valid Berth user name (lower-case letters, digits, . _ -, at most 64); the administrator can pick another claim (auth.oidc.usernameClaim)", truncate(name, 80))}
	}
	if e, ok := claims["email"].(string); ok && claims["email_verified"] != false {
		id.email = e
	}
	switch g := claims[s.opts.GroupsClaim].(type) {
	case string: // some providers send a single group as a string
		id.groups = []string{g}
	case []any:
		for _, v := range g {
			if str, ok := v.(string); ok && str != "" && len(str) <= maxGroupBytes {
				id.groups = append(id.groups, str)
			}
		}
	}
	if len(id.groups) > maxGroups {
		return id, refusal{fmt.Sprintf("the identity provider listed %d groups, more than %d", len(id.groups), maxGroups)}
	}
	slices.Sort(id.groups)
	id.groups = slices.Compact(id.groups)
	return id, nil
}

// link finds or creates the Berth user of the identity, records the login's groups and
// applies auth.oidc.adminGroups. An OIDC login never takes over an account it did not
// create: a local or directory user of the same name, or a name linked to another
// subject, refuses the login.
func (s *Service) link(ctx context.Context, id identity) (string, error) {
	known, err := s.store.Identity(ctx, id.issuer, id.subject)
	switch {
	case err == nil:
		id.username = known.User // the name is fixed at the first login
	case errors.Is(err, ErrNotFound):
	default:
		return "", err
	}
	u, err := s.users.UserByName(ctx, id.username)
	switch {
	case errors.Is(err, meta.ErrNotFound):
		if u, err = s.create(ctx, id); err != nil {
			return "", err
		}
		known = Identity{}
	case err != nil:
		return "", err
	case u.Source != "oidc":
		return "", refusal{fmt.Sprintf("a %s account named %q already exists; an OpenID Connect login cannot use it — ask an administrator", sourceName(u.Source), u.Name)}
	case known.User == "":
		// An OIDC account of this name belongs to another subject (or issuer).
		return "", refusal{fmt.Sprintf("the account %q belongs to another OpenID Connect identity — ask an administrator", u.Name)}
	}
	if u.Disabled {
		return "", refusal{fmt.Sprintf("the account %q is disabled", u.Name)}
	}
	inAdminGroup := slices.ContainsFunc(id.groups, func(g string) bool { return slices.Contains(s.opts.AdminGroups, g) })
	adminByGroup, changed := known.AdminByGroup, false
	switch {
	case inAdminGroup && !u.Admin:
		u.Admin, adminByGroup, changed = true, true, true
	case !inAdminGroup && adminByGroup:
		// Only rights the groups gave are taken away; an administrator's grant stays.
		u.Admin, adminByGroup, changed = false, false, true
	}
	if id.email != "" && id.email != u.Email {
		u.Email, changed = id.email, true
	}
	if changed {
		if err := s.users.UpdateUser(ctx, u); err != nil {
			return "", err
		}
	}
	if err := s.store.Save(ctx, Identity{Issuer: id.issuer, Subject: id.subject, User: u.Name, Groups: id.groups, AdminByGroup: adminByGroup}); err != nil {
		return "", err
	}
	// Cached logins (CLI secret) carry the previous groups and rights.
	s.accounts.Forget(u.Name)
	return u.Name, nil
}

// create makes the user of a first login.
func (s *Service) create(ctx context.Context, id identity) (meta.User, error) {
	// Identities left by a deleted account of this name must not follow the new one.
	if err := s.store.ForgetUser(ctx, id.username); err != nil {
		return meta.User{}, err
	}
	u, err := s.users.CreateUser(ctx, meta.User{Name: id.username, Email: id.email, Source: "oidc"})
	if errors.Is(err, meta.ErrExists) {
		// Another login (or an administrator) made the name meanwhile: never share it.
		return meta.User{}, refusal{fmt.Sprintf("the account %q was just created by someone else; try again", id.username)}
	}
	if err != nil {
		return meta.User{}, err
	}
	s.log.Info("created a user at their first OpenID Connect login", "user", u.Name)
	return u, nil
}

func sourceName(source string) string {
	if source == "ldap" {
		return "directory (LDAP)"
	}
	return source
}
