package ldapauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/berth-registry/berth/internal/ldapauth/ldaptest"
)

// The tests share one slapd (package ldaptest), stopped when they are done.
func TestMain(m *testing.M) {
	code := m.Run()
	ldaptest.StopShared()
	os.Exit(code)
}

// config is a working configuration for the test slapd, with the service account.
func config(s *ldaptest.Server) Config {
	return Config{
		URL:          s.URL,
		BindDN:       s.BindDN,
		BindPassword: s.BindPassword,
		UserBaseDN:   s.PeopleDN,
		UserFilter:   ldaptest.UserFilter,
		GroupBaseDN:  s.GroupsDN,
		GroupFilter:  ldaptest.GroupFilter,
		Timeout:      5 * time.Second,
	}
}

func newAuth(t *testing.T, cfg Config) *Authenticator {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

func TestValidUsers(t *testing.T) {
	s := ldaptest.Shared(t)
	anon := config(s)
	anon.BindDN, anon.BindPassword = "", ""
	configs := map[string]Config{
		"service account": config(s),
		// The test ACL hides groups from anonymous: they are then read as the user.
		"anonymous search": anon,
	}
	cases := []struct {
		user, pass string
		want       Identity
	}{
		{"alice", ldaptest.AlicePassword, Identity{Username: "alice", DN: "uid=alice," + ldaptest.PeopleDN, Email: "alice@berth.test", Groups: []string{"all-staff", "team-devs"}}},
		{"bob", ldaptest.BobPassword, Identity{Username: "bob", DN: "uid=bob," + ldaptest.PeopleDN, Email: "bob@berth.test", Groups: []string{"all-staff", "team-admins"}}},
		{"carol", ldaptest.CarolPassword, Identity{Username: "carol", DN: "uid=carol," + ldaptest.PeopleDN}},
		// dave's DN has parentheses: his groups are only found if the DN is escaped in the group filter.
		{"dave", ldaptest.DavePassword, Identity{Username: "dave", Email: "dave@berth.test", Groups: []string{"all-staff", "team-devs"}}},
	}
	for name, cfg := range configs {
		a := newAuth(t, cfg)
		for _, c := range cases {
			t.Run(name+"/"+c.user, func(t *testing.T) {
				got, err := a.Authenticate(t.Context(), c.user, c.pass)
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if c.user == "dave" { // the server's spelling of the escaped comma may differ
					dn, err := ldap.ParseDN(got.DN)
					want, _ := ldap.ParseDN(ldaptest.DaveDN)
					if err != nil || !dn.Equal(want) {
						t.Errorf("DN = %q, want %q", got.DN, ldaptest.DaveDN)
					}
					got.DN = ""
				}
				if got.Username != c.want.Username || got.DN != c.want.DN || got.Email != c.want.Email || !slices.Equal(got.Groups, c.want.Groups) {
					t.Errorf("got %+v\nwant %+v", got, c.want)
				}
			})
		}
	}
}

func TestGroupAttributeAndNoGroupLookup(t *testing.T) {
	s := ldaptest.Shared(t)
	cfg := config(s)
	cfg.GroupAttribute = "description" // only team-devs has one
	got, err := newAuth(t, cfg).Authenticate(t.Context(), "alice", ldaptest.AlicePassword)
	if err != nil || !slices.Equal(got.Groups, []string{"Developers"}) {
		t.Errorf("description groups: %v, %v; want [Developers]", got.Groups, err)
	}

	cfg = config(s)
	cfg.GroupBaseDN, cfg.GroupFilter = "", ""
	got, err = newAuth(t, cfg).Authenticate(t.Context(), "alice", ldaptest.AlicePassword)
	if err != nil || got.Groups != nil || got.DN != "uid=alice,"+ldaptest.PeopleDN {
		t.Errorf("without group lookup: %+v, %v", got, err)
	}
}

func wantInvalid(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v, want ErrInvalidCredentials", err)
	}
}

func wantUnavailable(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
}

func TestWrongPassword(t *testing.T) {
	a := newAuth(t, config(ldaptest.Shared(t)))
	for _, pw := range []string{"wrong", ldaptest.BobPassword, ldaptest.AlicePassword + " ", strings.ToUpper(ldaptest.AlicePassword), ldaptest.ServicePassword, "*"} {
		_, err := a.Authenticate(t.Context(), "alice", pw)
		wantInvalid(t, err)
		if err != nil && strings.Contains(err.Error(), pw) {
			t.Errorf("error text contains the password: %v", err)
		}
	}
}

func TestUnknownUser(t *testing.T) {
	a := newAuth(t, config(ldaptest.Shared(t)))
	for _, u := range []string{"mallory", "alice2", "berth-svc", "admin"} {
		_, err := a.Authenticate(t.Context(), u, ldaptest.AlicePassword)
		wantInvalid(t, err)
	}
}

// The anonymous-bind trap: a DN with an empty password is an "unauthenticated bind",
// which this slapd (like Active Directory) accepts. Authenticate must refuse it.
func TestEmptyPasswordIsRejected(t *testing.T) {
	s := ldaptest.Shared(t)
	conn, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.SimpleBind(&ldap.SimpleBindRequest{Username: "uid=alice," + ldaptest.PeopleDN, AllowEmptyPassword: true}); err != nil {
		t.Fatalf("precondition: the server should accept an unauthenticated bind: %v", err)
	}

	for name, cfg := range map[string]Config{"service account": config(s), "anonymous search": func() Config {
		c := config(s)
		c.BindDN, c.BindPassword = "", ""
		return c
	}()} {
		_, err := newAuth(t, cfg).Authenticate(t.Context(), "alice", "")
		if !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: empty password: err = %v, want ErrInvalidCredentials", name, err)
		}
	}
}

func TestFilterInjection(t *testing.T) {
	a := newAuth(t, config(ldaptest.Shared(t)))
	for _, u := range []string{
		"*", "a*", "*e", "al*ce", ")(uid=*", "*)(uid=*", "alice)(|(uid=*", "alice)(uid=*)", "*))(|(uid=*",
		"(uid=alice)", `alice\2a`, `\`, "alice)", "alice*", "*)(objectClass=*", "\u00e9*",
	} {
		_, err := a.Authenticate(t.Context(), u, ldaptest.AlicePassword)
		wantInvalid(t, err) // not ErrUnavailable: the filter must still parse
	}
	// An ambiguous filter result never authenticates, even with the right password.
	_, err := a.Authenticate(t.Context(), "twin", ldaptest.TwinPassword)
	wantInvalid(t, err)
}

// Case and canonicalisation: LDAP matching ignores case, so "ALICE" is alice's entry.
// Identity.Username is what the caller passed; DN identifies the user.
func TestUsernameCase(t *testing.T) {
	got, err := newAuth(t, config(ldaptest.Shared(t))).Authenticate(t.Context(), "ALICE", ldaptest.AlicePassword)
	if err != nil || got.Username != "ALICE" || got.DN != "uid=alice,"+ldaptest.PeopleDN {
		t.Errorf("ALICE: %+v, %v", got, err)
	}
}

// Invalid usernames are rejected before any network traffic: the URL points at a port
// nobody listens on, which would give ErrUnavailable.
func TestInvalidUsernames(t *testing.T) {
	a := newAuth(t, Config{URL: closedURL(t), UserBaseDN: ldaptest.PeopleDN, UserFilter: "(uid=%s)", Timeout: time.Second})
	for _, u := range []string{
		"", strings.Repeat("a", 257), strings.Repeat("é", 257), "ali\x00ce", "ali\nce", "alice\r", "\x7f", "ali\u0085ce",
		"\xff\xfe", " alice", "alice ", "\talice",
	} {
		_, err := a.Authenticate(t.Context(), u, "pw")
		wantInvalid(t, err)
	}
	// 256 characters is allowed (then fails at the network, proving validation passed).
	_, err := a.Authenticate(t.Context(), strings.Repeat("é", 256), "pw")
	wantUnavailable(t, err)
	_, err = a.Authenticate(t.Context(), "alice", "")
	wantInvalid(t, err)
}

// closedURL is an ldap:// URL whose port had a listener a moment ago and has none now.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "ldap://" + addr
}

// blackhole accepts connections and never answers.
func blackhole(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestServerDown(t *testing.T) {
	base := Config{UserBaseDN: ldaptest.PeopleDN, UserFilter: "(uid=%s)", GroupBaseDN: ldaptest.GroupsDN, GroupFilter: "(member=%s)",
		BindDN: ldaptest.ServiceDN, BindPassword: ldaptest.ServicePassword, InsecureSkipVerify: true}
	hole := blackhole(t)
	const timeout = 300 * time.Millisecond
	cases := []struct {
		name     string
		url      string
		startTLS bool
		within   time.Duration
	}{
		{"refused", closedURL(t), false, timeout},
		{"no answer", "ldap://" + hole, false, timeout + time.Second},
		{"no TLS handshake (ldaps)", "ldaps://" + hole, false, timeout + time.Second},
		{"no StartTLS answer", "ldap://" + hole, true, timeout + time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			cfg.URL, cfg.StartTLS, cfg.Timeout = c.url, c.startTLS, timeout
			if !strings.HasPrefix(c.url, "ldaps") && !c.startTLS {
				cfg.InsecureSkipVerify = false
			}
			start := time.Now()
			_, err := newAuth(t, cfg).Authenticate(t.Context(), "alice", ldaptest.AlicePassword)
			took := time.Since(start)
			wantUnavailable(t, err)
			if took > c.within {
				t.Errorf("took %v, want under %v", took, c.within)
			}
			t.Logf("%v after %v", err, took.Round(time.Millisecond))
		})
	}

	// The caller's context ends the exchange long before Config.Timeout.
	for _, ldaps := range []bool{false, true} {
		t.Run(fmt.Sprintf("caller deadline/ldaps=%v", ldaps), func(t *testing.T) {
			cfg := base
			cfg.URL, cfg.Timeout = "ldap://"+hole, 30*time.Second
			if ldaps {
				cfg.URL = "ldaps://" + hole
			} else {
				cfg.InsecureSkipVerify = false
			}
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := newAuth(t, cfg).Authenticate(ctx, "alice", ldaptest.AlicePassword)
			wantUnavailable(t, err)
			if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
				t.Errorf("err = %v after %v, want the context's deadline within 2s", err, time.Since(start))
			}
		})
	}
	t.Run("caller cancels", func(t *testing.T) {
		cfg := base
		cfg.URL, cfg.Timeout, cfg.InsecureSkipVerify = "ldap://"+hole, 30*time.Second, false
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, err := newAuth(t, cfg).Authenticate(ctx, "alice", ldaptest.AlicePassword)
		wantUnavailable(t, err)
		if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
			t.Errorf("err = %v after %v, want context.Canceled within 2s", err, time.Since(start))
		}
	})

	t.Run("slapd stopped", func(t *testing.T) {
		s := ldaptest.Shared(t)
		cfg := config(s)
		// Same directory, a port slapd does not serve.
		cfg.URL = closedURL(t)
		_, err := newAuth(t, cfg).Authenticate(t.Context(), "alice", ldaptest.AlicePassword)
		wantUnavailable(t, err)
	})
}

func TestMisconfiguredDirectory(t *testing.T) {
	s := ldaptest.Shared(t)
	cfg := config(s)
	cfg.BindPassword = "not the service password"
	_, err := newAuth(t, cfg).Authenticate(t.Context(), "alice", ldaptest.AlicePassword)
	wantUnavailable(t, err) // the user's credentials were never checked

	cfg = config(s)
	cfg.UserBaseDN = "ou=nobody," + ldaptest.BaseDN
	_, err = newAuth(t, cfg).Authenticate(t.Context(), "alice", ldaptest.AlicePassword)
	wantUnavailable(t, err)

	cfg = config(s)
	cfg.GroupBaseDN = "ou=nothing," + ldaptest.BaseDN
	_, err = newAuth(t, cfg).Authenticate(t.Context(), "alice", ldaptest.AlicePassword)
	wantUnavailable(t, err)
}

func TestTLS(t *testing.T) {
	s := ldaptest.Shared(t)
	ok := []struct {
		name string
		mod  func(*Config)
	}{
		{"ldaps with CA", func(c *Config) { c.URL, c.CA = s.LDAPSURL, s.CAFile }},
		{"StartTLS with CA", func(c *Config) { c.StartTLS, c.CA = true, s.CAFile }},
		{"ldaps insecure", func(c *Config) { c.URL, c.InsecureSkipVerify = s.LDAPSURL, true }},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			cfg := config(s)
			c.mod(&cfg)
			got, err := newAuth(t, cfg).Authenticate(t.Context(), "alice", ldaptest.AlicePassword)
			if err != nil || !slices.Equal(got.Groups, []string{"all-staff", "team-devs"}) {
				t.Errorf("%+v, %v", got, err)
			}
			_, err = newAuth(t, cfg).Authenticate(t.Context(), "alice", "wrong")
			wantInvalid(t, err)
		})
	}

	bad := []struct {
		name string
		mod  func(*Config)
	}{
		{"ldaps wrong CA", func(c *Config) { c.URL, c.CA = s.LDAPSURL, s.WrongCAFile }},
		{"StartTLS wrong CA", func(c *Config) { c.StartTLS, c.CA = true, s.WrongCAFile }},
		// The certificate names 127.0.0.1 only.
		{"ldaps name mismatch", func(c *Config) {
			c.URL, c.CA = strings.Replace(s.LDAPSURL, "127.0.0.1", "localhost", 1), s.CAFile
		}},
		{"StartTLS name mismatch", func(c *Config) {
			c.URL, c.StartTLS, c.CA = strings.Replace(s.URL, "127.0.0.1", "localhost", 1), true, s.CAFile
		}},
		{"ldaps to the plain port", func(c *Config) { c.URL, c.CA = strings.Replace(s.URL, "ldap:", "ldaps:", 1), s.CAFile }},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			cfg := config(s)
			c.mod(&cfg)
			start := time.Now()
			_, err := newAuth(t, cfg).Authenticate(t.Context(), "alice", ldaptest.AlicePassword)
			wantUnavailable(t, err)
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			t.Logf("%v", err)
		})
	}

	// The test server's StartTLS really switches the connection to TLS.
	t.Run("StartTLS negotiates TLS", func(t *testing.T) {
		conn, err := ldap.DialURL(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
			t.Fatal(err)
		}
		if st, ok := conn.TLSConnectionState(); !ok || !st.HandshakeComplete {
			t.Errorf("no TLS state after StartTLS")
		}
	})
}

func TestConcurrent(t *testing.T) {
	a := newAuth(t, config(ldaptest.Shared(t)))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Go(func() {
			user, pass, ok := "alice", ldaptest.AlicePassword, i%2 == 0
			if !ok {
				user, pass = "bob", "wrong"
			}
			id, err := a.Authenticate(context.Background(), user, pass)
			switch {
			case ok && (err != nil || len(id.Groups) != 2):
				errs <- fmt.Errorf("alice: %+v, %v", id, err)
			case !ok && !errors.Is(err, ErrInvalidCredentials):
				errs <- fmt.Errorf("bob wrong password: %v", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNewValidation(t *testing.T) {
	good := Config{URL: "ldap://ldap.example.com", UserBaseDN: "ou=people,dc=x", UserFilter: "(uid=%s)"}
	a, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if a.addr != "ldap.example.com:389" || a.cfg.GroupAttribute != "cn" || a.cfg.Timeout != 10*time.Second {
		t.Errorf("defaults: addr %q attr %q timeout %v", a.addr, a.cfg.GroupAttribute, a.cfg.Timeout)
	}
	good.URL = "ldaps://[::1]"
	if a, err := New(good); err != nil || a.addr != "[::1]:636" || a.tlsCfg == nil || a.tlsCfg.ServerName != "::1" {
		t.Errorf("ldaps default port: %+v, %v", a, err)
	}

	bad := map[string]func(*Config){
		"no URL":               func(c *Config) { c.URL = "" },
		"http URL":             func(c *Config) { c.URL = "http://x" },
		"no host":              func(c *Config) { c.URL = "ldap://" },
		"URL with DN":          func(c *Config) { c.URL = "ldap://x/dc=x??sub" },
		"StartTLS on ldaps":    func(c *Config) { c.URL, c.StartTLS = "ldaps://x", true },
		"CA without TLS":       func(c *Config) { c.CA = "/etc/hostname" },
		"insecure without TLS": func(c *Config) { c.InsecureSkipVerify = true },
		"missing CA file":      func(c *Config) { c.StartTLS, c.CA = true, "/nonexistent/ca.pem" },
		"CA not PEM":           func(c *Config) { c.StartTLS, c.CA = true, "/etc/hostname" },
		"bind DN, no password": func(c *Config) { c.BindDN = "cn=svc" },
		"password, no bind DN": func(c *Config) { c.BindPassword = "x" },
		"no user base":         func(c *Config) { c.UserBaseDN = "" },
		"no user filter":       func(c *Config) { c.UserFilter = "" },
		"filter without %s":    func(c *Config) { c.UserFilter = "(uid=alice)" },
		"broken filter":        func(c *Config) { c.UserFilter = "(uid=%s" },
		"group base only":      func(c *Config) { c.GroupBaseDN = "ou=groups" },
		"group filter only":    func(c *Config) { c.GroupFilter = "(member=%s)" },
		"broken group filter":  func(c *Config) { c.GroupBaseDN, c.GroupFilter = "ou=g", "member=%s)" },
		"negative timeout":     func(c *Config) { c.Timeout = -time.Second },
	}
	for name, mod := range bad {
		cfg := good
		cfg.URL = "ldap://x"
		mod(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

func TestConfigDoesNotPrintPassword(t *testing.T) {
	cfg := Config{URL: "ldap://x", BindDN: "cn=svc", BindPassword: "hunter2-secret"}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("ldap", "config", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%v", &cfg), logs.String()} {
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "cn=svc") {
			t.Errorf("config printed as %s", s)
		}
	}
}
