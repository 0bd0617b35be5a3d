// Package ldapauth owns password authentication against an LDAP directory or Active
// Directory: it connects (ldap://, ldaps:// or StartTLS), finds the user's entry with a
// search filter, verifies the password by binding as that entry, and reads the user's
// group names. It knows nothing about Berth's users, projects or roles; mapping an
// Identity's groups to roles is the caller's job.
//
// Each Authenticate call uses its own short-lived connection bounded by Config.Timeout,
// so an Authenticator is safe for concurrent use. The package never logs; errors carry
// detail for the caller's logs but never a password.
package ldapauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// Config describes the directory and how users and groups are found in it.
type Config struct {
	URL                string // ldap://host:389 or ldaps://host:636
	StartTLS           bool   // upgrade an ldap:// connection with StartTLS before any bind
	CA                 string // PEM file of CA certificates for ldaps/StartTLS ("" = system roots)
	InsecureSkipVerify bool   // accept any server certificate: for tests only
	BindDN             string // service account for the user search ("" = anonymous search)
	BindPassword       string
	UserBaseDN         string
	UserFilter         string        // e.g. "(&(objectClass=inetOrgPerson)(uid=%s))"; %s is the escaped username
	GroupBaseDN        string        // "" with GroupFilter "" = no group lookup
	GroupFilter        string        // e.g. "(&(objectClass=groupOfNames)(member=%s))"; %s is the escaped user DN
	GroupAttribute     string        // attribute naming the group, default "cn"
	Timeout            time.Duration // bounds one whole Authenticate call; default 10s
}

// String and LogValue keep the service account's password out of logs and error text.
func (c Config) String() string {
	c.BindPassword = redact(c.BindPassword)
	type plain Config // no methods: avoids recursion
	return fmt.Sprintf("%+v", plain(c))
}

// LogValue implements slog.LogValuer with the password redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.URL), slog.Bool("start_tls", c.StartTLS), slog.String("ca", c.CA),
		slog.Bool("insecure_skip_verify", c.InsecureSkipVerify),
		slog.String("bind_dn", c.BindDN), slog.String("bind_password", redact(c.BindPassword)),
		slog.String("user_base_dn", c.UserBaseDN), slog.String("user_filter", c.UserFilter),
		slog.String("group_base_dn", c.GroupBaseDN), slog.String("group_filter", c.GroupFilter),
		slog.String("group_attribute", c.GroupAttribute), slog.Duration("timeout", c.Timeout))
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// Identity is an authenticated directory user.
type Identity struct {
	Username string   // the username as given to Authenticate (validated, not canonicalised)
	DN       string   // the user's entry
	Email    string   // the entry's first "mail" value, or ""
	Groups   []string // GroupAttribute values of the groups found, sorted, without duplicates
}

var (
	// ErrInvalidCredentials: unknown user, ambiguous user (the filter matched several
	// entries), wrong password, empty password or an invalid username. Callers should
	// answer all of them the same way.
	ErrInvalidCredentials = errors.New("ldap: invalid credentials")
	// ErrUnavailable: the directory gave no answer about the credentials: unreachable,
	// timed out, TLS failure, or a server-side refusal that is a configuration problem
	// (service account bind rejected, base DN missing). Always wrapped with detail.
	ErrUnavailable = errors.New("ldap: directory unavailable")
)

const (
	defaultTimeout        = 10 * time.Second
	defaultGroupAttribute = "cn"
	maxUsernameLen        = 256 // characters
	maxGroups             = 1000
)

// Authenticator authenticates users against one directory. Safe for concurrent use.
type Authenticator struct {
	cfg    Config
	addr   string      // host:port to dial
	ldaps  bool        // TLS from the first byte
	tlsCfg *tls.Config // for ldaps and StartTLS; nil for plain ldap://
}

// New validates cfg and returns an Authenticator. It does not contact the directory.
func New(cfg Config) (*Authenticator, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ldapauth: URL: %w", err)
	}
	a := &Authenticator{}
	var port string
	switch strings.ToLower(u.Scheme) {
	case "ldap":
		port = "389"
	case "ldaps":
		port, a.ldaps = "636", true
	default:
		return nil, fmt.Errorf("ldapauth: URL %q: scheme must be ldap or ldaps", cfg.URL)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("ldapauth: URL %q has no host", cfg.URL)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("ldapauth: URL %q: only scheme, host and port are allowed", cfg.URL)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	a.addr = net.JoinHostPort(host, port)

	if cfg.StartTLS && a.ldaps {
		return nil, errors.New("ldapauth: StartTLS cannot be used with an ldaps:// URL")
	}
	if a.ldaps || cfg.StartTLS {
		a.tlsCfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
		if cfg.CA != "" {
			pem, err := os.ReadFile(cfg.CA)
			if err != nil {
				return nil, fmt.Errorf("ldapauth: CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ldapauth: CA %s: no PEM certificates found", cfg.CA)
			}
			a.tlsCfg.RootCAs = pool
		}
	} else if cfg.CA != "" || cfg.InsecureSkipVerify {
		return nil, errors.New("ldapauth: CA and InsecureSkipVerify need an ldaps:// URL or StartTLS")
	}

	if cfg.BindDN != "" && cfg.BindPassword == "" {
		// A DN with an empty password is an unauthenticated bind, which many servers
		// (Active Directory among them) accept as anonymous.
		return nil, errors.New("ldapauth: BindDN is set but BindPassword is empty")
	}
	if cfg.BindDN == "" && cfg.BindPassword != "" {
		return nil, errors.New("ldapauth: BindPassword is set but BindDN is empty")
	}
	if cfg.UserBaseDN == "" {
		return nil, errors.New("ldapauth: UserBaseDN is required")
	}
	if err := checkFilter("UserFilter", cfg.UserFilter); err != nil {
		return nil, err
	}
	switch {
	case cfg.GroupBaseDN == "" && cfg.GroupFilter == "":
	case cfg.GroupBaseDN == "" || cfg.GroupFilter == "":
		return nil, errors.New("ldapauth: GroupBaseDN and GroupFilter must be set together")
	default:
		if err := checkFilter("GroupFilter", cfg.GroupFilter); err != nil {
			return nil, err
		}
	}
	if cfg.GroupAttribute == "" {
		cfg.GroupAttribute = defaultGroupAttribute
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("ldapauth: Timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	a.cfg = cfg
	return a, nil
}

// checkFilter requires a %s placeholder and a filter that compiles once it is filled.
func checkFilter(name, f string) error {
	if !strings.Contains(f, "%s") {
		return fmt.Errorf("ldapauth: %s %q must contain %%s", name, f)
	}
	if _, err := ldap.CompileFilter(fill(f, "x")); err != nil {
		return fmt.Errorf("ldapauth: %s %q: %w", name, f, err)
	}
	return nil
}

// fill puts an escaped value in place of every %s. Not fmt.Sprintf: a filter may hold
// other % sequences, and the value must never be interpreted.
func fill(filter, value string) string {
	return strings.ReplaceAll(filter, "%s", ldap.EscapeFilter(value))
}

// validUsername rejects what no directory user name should contain.
func validUsername(u string) error {
	switch {
	case u == "":
		return errors.New("empty username")
	case !utf8.ValidString(u):
		return errors.New("username is not valid UTF-8")
	case utf8.RuneCountInString(u) > maxUsernameLen:
		return fmt.Errorf("username longer than %d characters", maxUsernameLen)
	case strings.ContainsFunc(u, unicode.IsControl):
		return errors.New("username contains control characters")
	case strings.TrimSpace(u) != u:
		// LDAP matching ignores surrounding spaces: "alice " would log in as alice
		// under a different name.
		return errors.New("username has leading or trailing spaces")
	}
	return nil
}

// Authenticate verifies username and password against the directory and returns the
// user's identity and groups. Errors wrap ErrInvalidCredentials or ErrUnavailable (and
// the context's error when ctx ended first).
func (a *Authenticator) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	if err := validUsername(username); err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
	}
	if password == "" {
		// Never bind with an empty password: that is an unauthenticated bind, which
		// servers may accept as anonymous, i.e. a "successful" login.
		return Identity{}, fmt.Errorf("%w: empty password", ErrInvalidCredentials)
	}

	deadline := time.Now().Add(a.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	conn, err := a.connect(ctx, deadline)
	if err != nil {
		return Identity{}, a.unavailable(ctx, deadline, "connect", err)
	}
	defer conn.Close()

	if a.cfg.BindDN != "" {
		if err := conn.Bind(a.cfg.BindDN, a.cfg.BindPassword); err != nil {
			return Identity{}, a.unavailable(ctx, deadline, "service account bind", err)
		}
	}

	res, err := conn.Search(&ldap.SearchRequest{
		BaseDN:       a.cfg.UserBaseDN,
		Scope:        ldap.ScopeWholeSubtree,
		DerefAliases: ldap.NeverDerefAliases,
		SizeLimit:    2, // one entry is wanted; two mean ambiguous
		TimeLimit:    int(a.cfg.Timeout / time.Second),
		Filter:       fill(a.cfg.UserFilter, username),
		Attributes:   []string{"mail"},
	})
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		return Identity{}, fmt.Errorf("%w: user search matched more than one entry", ErrInvalidCredentials)
	case err != nil:
		return Identity{}, a.unavailable(ctx, deadline, "user search", err)
	case len(res.Entries) == 0:
		return Identity{}, fmt.Errorf("%w: no such user", ErrInvalidCredentials)
	case len(res.Entries) > 1:
		return Identity{}, fmt.Errorf("%w: user search matched more than one entry", ErrInvalidCredentials)
	}
	user := res.Entries[0]
	if user.DN == "" {
		return Identity{}, fmt.Errorf("%w: user entry has an empty DN", ErrInvalidCredentials)
	}

	if err := conn.Bind(user.DN, password); err != nil {
		if ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInappropriateAuthentication,
			ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultInsufficientAccessRights, ldap.ErrorEmptyPassword) {
			// The server's diagnostic (e.g. AD's "data 52e/775/532") is kept for logs.
			return Identity{}, fmt.Errorf("%w: bind as %s: %v", ErrInvalidCredentials, user.DN, err)
		}
		return Identity{}, a.unavailable(ctx, deadline, "user bind", err)
	}
	id := Identity{Username: username, DN: user.DN, Email: user.GetEqualFoldAttributeValue("mail")}

	if a.cfg.GroupFilter == "" {
		return id, nil
	}
	// Groups are read as the service account, which is configured to see them; with
	// anonymous search they are read as the user just authenticated.
	if a.cfg.BindDN != "" {
		if err := conn.Bind(a.cfg.BindDN, a.cfg.BindPassword); err != nil {
			return Identity{}, a.unavailable(ctx, deadline, "service account rebind", err)
		}
	}
	gres, err := conn.Search(&ldap.SearchRequest{
		BaseDN:       a.cfg.GroupBaseDN,
		Scope:        ldap.ScopeWholeSubtree,
		DerefAliases: ldap.NeverDerefAliases,
		SizeLimit:    maxGroups,
		TimeLimit:    int(a.cfg.Timeout / time.Second),
		Filter:       fill(a.cfg.GroupFilter, user.DN),
		Attributes:   []string{a.cfg.GroupAttribute},
	})
	if err != nil {
		// A truncated group list could silently drop a role; refuse rather than guess.
		return Identity{}, a.unavailable(ctx, deadline, "group search", err)
	}
	for _, g := range gres.Entries {
		id.Groups = append(id.Groups, g.GetEqualFoldAttributeValues(a.cfg.GroupAttribute)...)
	}
	slices.Sort(id.Groups)
	id.Groups = slices.Compact(id.Groups)
	return id, nil
}

// connect dials with the deadline applied to the socket itself, so every later step
// (TLS handshakes included, which go-ldap does not time out) ends by the deadline,
// and cancelling ctx aborts whatever is in flight.
func (a *Authenticator) connect(ctx context.Context, deadline time.Time) (*ldap.Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", a.addr)
	if err != nil {
		return nil, err
	}
	if err := raw.SetDeadline(deadline); err != nil {
		raw.Close()
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	c := raw
	if a.ldaps {
		tc := tls.Client(raw, a.tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			stop()
			raw.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c = tc
	}
	conn := ldap.NewConn(c, a.ldaps)
	conn.Start()
	conn.SetTimeout(time.Until(deadline))
	if a.cfg.StartTLS {
		if err := conn.StartTLS(a.tlsCfg); err != nil {
			stop()
			conn.Close()
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
	}
	// stop is not needed after this point: the deadline context is cancelled when
	// Authenticate returns, and a deadline on a closed socket is harmless.
	return conn, nil
}

// unavailable wraps err as ErrUnavailable, naming the step and saying so when the
// deadline or the caller's context ended the exchange (the socket error alone may only
// read "response channel closed").
func (a *Authenticator) unavailable(ctx context.Context, deadline time.Time, step string, err error) error {
	cerr := ctx.Err()
	if cerr == nil && !time.Now().Before(deadline) {
		cerr = context.DeadlineExceeded
	}
	switch {
	case errors.Is(cerr, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s: %s timed out (%v): %w", ErrUnavailable, a.addr, step, err, cerr)
	case cerr != nil:
		return fmt.Errorf("%w: %s: %s: %v: %w", ErrUnavailable, a.addr, step, err, cerr)
	}
	return fmt.Errorf("%w: %s: %s: %v", ErrUnavailable, a.addr, step, err)
}
