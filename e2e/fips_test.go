package e2e

// FIPS 140-3 mode (issue 17): a berth under GODEBUG=fips140=only, where Go's
// cryptographic module panics or fails on any non-approved algorithm. Passwords are
// PBKDF2 there, legacy bcrypt hashes are refused with reset instructions (and upgraded
// by a login outside FIPS mode), htpasswd import is refused, and TLS offers only the
// approved suites, curves and versions. `make e2e-fips` also runs the conformance, auth
// and token-attack suites against such a berth.

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/meta"
)

var (
	fipsOnly = []string{"GODEBUG=fips140=only"}
	// fipsOff is FIPS mode off even for the GOFIPS140 build and E2E_BERTH_ENV of make
	// e2e-fips (a berth's own Env comes last and wins).
	fipsOff = []string{"GODEBUG=fips140=off"}
)

func fipsGet(t *testing.T, u, authz string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestFIPSPasswords: a bcrypt user who logs in once outside FIPS mode is rehashed and
// keeps working after the switch; one who did not is refused in FIPS mode, with the
// documented reset instructions in the audit trail; new users and the bootstrap admin
// get PBKDF2 hashes made inside FIPS mode; htpasswd import is refused.
func TestFIPSPasswords(t *testing.T) {
	ctx := context.Background()
	// fipsOff overrides the harness's environment under make e2e-fips.
	b := startBerth(t, BerthOptions{Env: fipsOff, Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + auAdminPass + "\n"})
	m, err := meta.Open(ctx, meta.Options{Dialect: meta.SQLite, DSN: filepath.Join(b.Data, "berth.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	bh, _ := bcrypt.GenerateFromPassword([]byte(auPass), bcrypt.MinCost)
	for _, name := range []string{"early", "late"} {
		if _, err := m.CreateUser(ctx, meta.User{Name: name, PasswordHash: string(bh)}); err != nil {
			t.Fatal(err)
		}
	}
	tokenURL := b.URL("/token?service=berth&scope=repository:team/app:pull")
	if s, body := fipsGet(t, tokenURL, auBasic("early", auPass)); s != 200 {
		t.Fatalf("bcrypt user outside FIPS mode: %d %s", s, body)
	}
	if u, _ := m.UserByName(ctx, "early"); !strings.HasPrefix(u.PasswordHash, "$pbkdf2-sha256$") {
		t.Fatalf("early's hash after a login outside FIPS mode: %q, want PBKDF2", u.PasswordHash)
	}

	b.Env = fipsOnly
	b.Restart()
	if s, body := fipsGet(t, b.URL("/readyz"), ""); s != 200 || !strings.Contains(body, "fips140: on (module ") || !strings.Contains(body, "enforced") {
		t.Fatalf("/readyz in FIPS mode: %d %q", s, body)
	}
	log, _ := os.ReadFile(b.logPath)
	if !strings.Contains(string(log), `fips140="on (module `) {
		t.Errorf("the start-up summary does not report FIPS mode:\n%s", tail(string(log), 2000))
	}
	// The start names the accounts FIPS mode will refuse: late, not the rehashed early.
	if !strings.Contains(string(log), "FIPS 140-3 mode refuses bcrypt password hashes") || !strings.Contains(string(log), "users=late ") {
		t.Errorf("the start-up log does not name the bcrypt accounts:\n%s", tail(string(log), 3000))
	}
	tokenURL = b.URL("/token?service=berth&scope=repository:team/app:pull")
	if s, body := fipsGet(t, tokenURL, auBasic("early", auPass)); s != 200 {
		t.Fatalf("rehashed user in FIPS mode: %d %s", s, body)
	}
	if s, _ := fipsGet(t, tokenURL, auBasic("late", auPass)); s != http.StatusUnauthorized {
		t.Fatalf("bcrypt user in FIPS mode: %d, want 401", s)
	}
	if u, _ := m.UserByName(ctx, "late"); !strings.HasPrefix(u.PasswordHash, "$2a$") {
		t.Fatalf("the refused bcrypt hash changed: %q", u.PasswordHash)
	}
	var detail string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && detail == ""; time.Sleep(100 * time.Millisecond) {
		es, err := m.Audit(ctx, meta.AuditFilter{Actor: "late", Action: "login", Result: "failed", Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) > 0 {
			detail = es[0].Detail
		}
	}
	for _, want := range []string{"bcrypt", "FIPS 140-3", "berth admin user passwd NAME", "berth admin robot rotate NAME"} {
		if !strings.Contains(detail, want) {
			t.Fatalf("audit detail of the refused bcrypt login %q lacks %q", detail, want)
		}
	}

	// The bootstrap admin was hashed at the first start; a user created now is hashed
	// under fips140=only: both log in.
	admin := auBasic("admin", auAdminPass)
	r := auDo(t, http.MethodPost, b.URL("/api/v1/users"), map[string]string{"Authorization": admin, "Content-Type": "application/json"},
		[]byte(`{"name":"fresh","password":"`+auPass+`"}`))
	if r.status != http.StatusCreated {
		t.Fatalf("create a user in FIPS mode: %d %s", r.status, r.body)
	}
	if s, body := fipsGet(t, tokenURL, auBasic("fresh", auPass)); s != 200 {
		t.Fatalf("user created in FIPS mode: %d %s", s, body)
	}
	if u, _ := m.UserByName(ctx, "fresh"); !strings.HasPrefix(u.PasswordHash, "$pbkdf2-sha256$i=600000$") {
		t.Fatalf("hash made in FIPS mode: %q", u.PasswordHash)
	}
	h := "$2y$" + string(bh[4:])
	r = auDo(t, http.MethodPost, b.URL("/api/v1/users/import"), map[string]string{"Authorization": admin, "Content-Type": "text/plain"},
		[]byte("imported:"+h+"\n"))
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "refused in FIPS 140-3 mode") {
		t.Fatalf("htpasswd import in FIPS mode: %d %s, want 400 naming FIPS mode", r.status, r.body)
	}
	if _, err := m.UserByName(ctx, "imported"); err == nil {
		t.Fatal("the refused htpasswd import created its user")
	}
	// The helper the other e2e tests hash with makes hashes FIPS mode accepts.
	if h, _ := auth.HashPassword(auPass); !strings.HasPrefix(h, "$pbkdf2-sha256$") {
		t.Fatalf("auth.HashPassword: %q", h)
	}
}

// TestFIPSSwitch: fips: true (BERTH_FIPS) refuses to start without FIPS mode, starts
// with it, and `berth config check` reports the mode.
func TestFIPSSwitch(t *testing.T) {
	dir := t.TempDir()
	// fips140=off overrides a GOFIPS140 build's default (make e2e-fips).
	out, err := runErr([]string{"BERTH_FIPS=true", "GODEBUG=fips140=off"}, berthBin, "config", "check", "--data", dir)
	if err == nil || !strings.Contains(out, "fips: true, but Go's FIPS 140-3 mode is off") {
		t.Fatalf("config check with fips: true and FIPS mode off: %v\n%s", err, out)
	}
	out, err = runErr([]string{"BERTH_FIPS=true", "GODEBUG=fips140=only"}, berthBin, "config", "check", "--data", dir)
	if err != nil || !strings.Contains(out, "FIPS 140-3 mode: on (module ") || !strings.Contains(out, "fips: true") {
		t.Fatalf("config check with fips: true under fips140=only: %v\n%s", err, out)
	}
	b := startBerth(t, BerthOptions{Env: []string{"BERTH_FIPS=true", "GODEBUG=fips140=on"}})
	pushImage(t, b, "fips/app", "v1", []byte("layer"))
}

// TestFIPSTLS: in FIPS mode Berth's TLS refuses what SP 800-140C/D do not approve, as Go
// 1.26's FIPS policy (crypto/tls defaults_fips140.go) defines it: ChaCha20-Poly1305,
// X25519 alone (the hybrid X25519MLKEM768 is approved), and TLS 1.0/1.1. The same
// offers succeed against a berth outside FIPS mode, so the refusals are FIPS mode's.
func TestFIPSTLS(t *testing.T) {
	cfg := "tls:\n  mode: self-signed\n  names: [localhost, 127.0.0.1]\n"
	fips := startBerthTLSAt(t, freeAddr(t), cfg, nil, "localhost", fipsOnly...)
	plain := startBerthTLSAt(t, freeAddr(t), cfg, nil, "localhost", fipsOff...)
	chacha := []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
	for _, tc := range []struct {
		name     string
		cfg      *tls.Config
		fipsOK   bool
		wantFIPS func(tls.ConnectionState) bool
	}{
		{"default offer", &tls.Config{}, true, func(s tls.ConnectionState) bool {
			return s.Version == tls.VersionTLS13 && s.CipherSuite != tls.TLS_CHACHA20_POLY1305_SHA256
		}},
		{"TLS 1.2 AES-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true, nil},
		{"P-256 only", &tls.Config{CurvePreferences: []tls.CurveID{tls.CurveP256}}, true, func(s tls.ConnectionState) bool { return s.CurveID == tls.CurveP256 }},
		{"X25519MLKEM768 only", &tls.Config{CurvePreferences: []tls.CurveID{tls.X25519MLKEM768}}, true, func(s tls.ConnectionState) bool { return s.CurveID == tls.X25519MLKEM768 }},
		{"TLS 1.2 ChaCha20-Poly1305 only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: chacha}, false, nil},
		{"X25519 only", &tls.Config{CurvePreferences: []tls.CurveID{tls.X25519}}, false, nil},
		{"TLS 1.1 at most", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, srv := range []struct {
				b  *Berth
				ok bool
			}{{fips, tc.fipsOK}, {plain, true}} {
				c := tc.cfg.Clone()
				c.InsecureSkipVerify, c.ServerName = true, "localhost" //nolint:gosec // the handshake is under test, not the chain
				conn, err := tls.Dial("tcp", srv.b.Addr, c)
				if tc.name == "TLS 1.1 at most" && srv.b == plain && err != nil {
					// Go's server too refuses TLS 1.0/1.1 (MinVersion 1.2): FIPS mode only
					// has to keep it that way.
					continue
				}
				if (err == nil) != srv.ok {
					t.Fatalf("handshake with berth (fips=%v): err %v, want success %v", srv.b == fips, err, srv.ok)
				}
				if err != nil {
					continue
				}
				st := conn.ConnectionState()
				conn.Close()
				if srv.b == fips && tc.wantFIPS != nil && !tc.wantFIPS(st) {
					t.Fatalf("FIPS handshake negotiated version %x suite %s curve %v", st.Version, tls.CipherSuiteName(st.CipherSuite), st.CurveID)
				}
			}
		})
	}
}
