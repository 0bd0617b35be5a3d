package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// postgresDSN creates a fresh database on the PostgreSQL server named by
// BERTH_TEST_POSTGRES_DSN and returns its DSN; it is dropped when the test ends. Without
// the variable the test skips locally and fails in CI.
func postgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("BERTH_TEST_POSTGRES_DSN")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("BERTH_TEST_POSTGRES_DSN is not set; CI must start PostgreSQL (.ci/start-postgres.sh)")
		}
		t.Skip("BERTH_TEST_POSTGRES_DSN is not set (start one with .ci/start-postgres.sh)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "berth_e2e_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
