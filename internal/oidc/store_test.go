package oidc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/meta/metatest"
)

// forBackends runs a store test on SQLite and, when configured, PostgreSQL.
func forBackends(t *testing.T, f func(t *testing.T, s *Store)) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { f(t, NewStore(b.Open(t).DB())) })
	}
}

func TestLoginsInFlight(t *testing.T) {
	forBackends(t, testLoginsInFlight)
}

func testLoginsInFlight(t *testing.T, s *Store) {
	ctx := context.Background()
	p := pending{Verifier: "v", Nonce: "n", Next: "/x", Expires: time.Now().Add(time.Minute)}
	if err := s.putLogin(ctx, "h1", p); err != nil {
		t.Fatal(err)
	}
	got, err := s.takeLogin(ctx, "h1")
	if err != nil || got.Verifier != "v" || got.Nonce != "n" || got.Next != "/x" {
		t.Fatalf("take = %+v, %v", got, err)
	}
	if _, err := s.takeLogin(ctx, "h1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second take: %v, want ErrNotFound (single use)", err)
	}
	// Expired logins are dropped when the next one starts.
	if err := s.putLogin(ctx, "old", pending{Expires: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := s.putLogin(ctx, "h2", p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.takeLogin(ctx, "old"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired login still there: %v", err)
	}
}

func TestLoginsInFlightBounded(t *testing.T) {
	forBackends(t, testLoginsInFlightBounded)
}

func testLoginsInFlightBounded(t *testing.T, s *Store) {
	ctx := context.Background()
	exp := time.Now().Add(time.Minute)
	// One transaction: ten thousand commits would take seconds.
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		for i := 0; i < maxPending; i++ {
			if _, err := tx.ExecContext(ctx, `INSERT INTO oidc_logins (state_hash, verifier, nonce, next_path, expires_at) VALUES ($1, '', '', '/', $2)`,
				fmt.Sprint(i), exp.UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.putLogin(ctx, "one-more", pending{Expires: exp}); !errors.Is(err, errTooManyLogins) {
		t.Fatalf("login past the bound: %v, want errTooManyLogins", err)
	}
}

func TestIdentities(t *testing.T) {
	forBackends(t, testIdentities)
}

func testIdentities(t *testing.T, s *Store) {
	ctx := context.Background()
	if g, err := s.LastGroups(ctx, "alice"); err != nil || g != nil {
		t.Fatalf("groups of an unknown user: %v, %v", g, err)
	}
	if err := s.Save(ctx, Identity{Issuer: "https://a", Subject: "1", User: "alice", Groups: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	// A second identity of the same user (the issuer changed): its later login counts.
	if err := s.Save(ctx, Identity{Issuer: "https://b", Subject: "1", User: "alice", Groups: []string{"y", "z"}}); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.LastGroups(ctx, "alice"); !slices.Equal(g, []string{"y", "z"}) {
		t.Fatalf("groups = %v, want the latest login's", g)
	}
	id, err := s.Identity(ctx, "https://a", "1")
	if err != nil || id.User != "alice" || !slices.Equal(id.Groups, []string{"x"}) {
		t.Fatalf("identity = %+v, %v", id, err)
	}
	if err := s.ForgetUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identity(ctx, "https://a", "1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("identity after ForgetUser: %v", err)
	}
}
