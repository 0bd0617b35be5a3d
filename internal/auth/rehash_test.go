package auth

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/passwd"
)

// legacyWorld is a store with a user and a robot whose hashes are bcrypt, as Berth
// before PBKDF2 wrote them.
func legacyWorld(t *testing.T) (*Service, *meta.Store) {
	t.Helper()
	ctx := context.Background()
	m := openStore(t)
	uh, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	rh, _ := bcrypt.GenerateFromPassword([]byte(robotSecret), bcrypt.MinCost)
	if _, err := m.CreateUser(ctx, meta.User{Name: "old", PasswordHash: string(uh)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateProject(ctx, meta.Project{Name: "team"}, "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateRobot(ctx, meta.Robot{Name: "robot$team+old", Project: "team", SecretHash: string(rh), Permissions: `[{"project":"team","actions":["pull"]}]`}); err != nil {
		t.Fatal(err)
	}
	s := New(m, nil, nil, Options{}, quietLog())
	t.Cleanup(s.Close)
	return s, m
}

// TestRehashBcrypt: outside FIPS mode a bcrypt hash still logs in, and the login
// replaces it with a PBKDF2 hash that logs in too.
func TestRehashBcrypt(t *testing.T) {
	ctx := context.Background()
	s, m := legacyWorld(t)
	for _, c := range []struct{ name, secret string }{{"old", testPassword}, {"robot$team+old", robotSecret}} {
		if _, err := s.Login(ctx, c.name, c.secret, "10.0.0.1"); err != nil {
			t.Fatalf("%s with a bcrypt hash: %v", c.name, err)
		}
		var h string
		if kindOf(c.name) == "robot" {
			r, _ := m.RobotByName(ctx, c.name)
			h = r.SecretHash
		} else {
			u, _ := m.UserByName(ctx, c.name)
			h = u.PasswordHash
		}
		if !strings.HasPrefix(h, "$pbkdf2-sha256$i=600000$") {
			t.Fatalf("%s's hash after login: %q, want PBKDF2", c.name, h)
		}
		s.Forget(c.name)
		if _, err := s.Login(ctx, c.name, c.secret, "10.0.0.1"); err != nil {
			t.Fatalf("%s with the new hash: %v", c.name, err)
		}
		s.Forget(c.name)
		if _, err := s.Login(ctx, c.name, c.secret+"x", "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("%s with a wrong secret after the rehash: %v", c.name, err)
		}
	}
}

// TestBcryptRefusedFIPS runs itself again under GODEBUG=fips140=only: there a bcrypt
// hash is refused with passwd's reset instructions, and left unchanged.
func TestBcryptRefusedFIPS(t *testing.T) {
	if os.Getenv("AUTH_FIPS_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBcryptRefusedFIPS$", "-test.v")
		cmd.Env = append(os.Environ(), "GODEBUG=fips140=only", "AUTH_FIPS_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestBcryptRefusedFIPS") {
			t.Fatalf("child under fips140=only: %v\n%s", err, out)
		}
		return
	}
	ctx := context.Background()
	s, m := legacyWorld(t)
	for _, name := range []string{"old", "robot$team+old"} {
		secret := testPassword
		if kindOf(name) == "robot" {
			secret = robotSecret
		}
		_, err := s.Login(ctx, name, secret, "10.0.0.1")
		if !errors.Is(err, ErrInvalidCredentials) || !errors.Is(err, passwd.ErrBcryptFIPS) {
			t.Fatalf("%s with a bcrypt hash in FIPS mode: %v, want ErrInvalidCredentials wrapping ErrBcryptFIPS", name, err)
		}
	}
	if u, _ := m.UserByName(ctx, "old"); !passwd.IsBcrypt(u.PasswordHash) {
		t.Fatalf("the refused hash changed: %q", u.PasswordHash)
	}
}
