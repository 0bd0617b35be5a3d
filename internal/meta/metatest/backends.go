package metatest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/meta"
)

// PostgresDSNEnv names the PostgreSQL server tests use, e.g. the output of
// .ci/start-postgres.sh. Each store opened gets its own fresh database on that server.
const PostgresDSNEnv = "BERTH_TEST_POSTGRES_DSN"

// Backend is a database engine a capability store's shared suite runs on.
type Backend struct {
	Name string
	// Open returns a store over a fresh, empty, migrated database, closed when t ends.
	Open func(t *testing.T) *meta.Store
}

// Backends returns SQLite always, and PostgreSQL when PostgresDSNEnv names a server. With
// CI set and no server named, it fails t rather than skipping: CI must run both.
func Backends(t *testing.T) []Backend {
	t.Helper()
	out := []Backend{{Name: "SQLite", Open: func(t *testing.T) *meta.Store {
		t.Helper()
		// With the read cache on, as berth serve runs SQLite: every suite then also
		// checks that no write leaves a stale answer behind in it.
		s, err := meta.Open(context.Background(), meta.Options{Dialect: meta.SQLite, DSN: filepath.Join(t.TempDir(), "berth.db"), CacheBytes: 1 << 20})
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}}}
	dsn := os.Getenv(PostgresDSNEnv)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set, but CI is: CI must run the PostgreSQL suite (start a server with DSN=$(.ci/start-postgres.sh))", PostgresDSNEnv)
		}
		t.Logf("PostgreSQL backend skipped: set %s (e.g. %s=$(.ci/start-postgres.sh)) to run it", PostgresDSNEnv, PostgresDSNEnv)
		return out
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresDSNEnv, err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := admin.PingContext(t.Context()); err != nil {
		t.Fatalf("connect to %s: %v", PostgresDSNEnv, err)
	}
	return append(out, Backend{Name: "Postgres", Open: func(t *testing.T) *meta.Store {
		t.Helper()
		return OpenPostgres(t, admin, dsn)
	}})
}

// OpenPostgres creates a fresh database on admin's server (dsn names it), opens a store
// on it and drops the database when t ends.
func OpenPostgres(t *testing.T, admin *sql.DB, dsn string) *meta.Store {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "berth_t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	s, err := meta.Open(ctx, meta.Options{Dialect: meta.Postgres, DSN: WithDatabase(t, dsn, name)})
	if err != nil {
		t.Fatalf("open postgres database %s: %v", name, err)
	}
	t.Cleanup(func() { s.Close() }) // runs before the drop
	return s
}

// WithDatabase returns dsn (a URL or key=value connection string) naming database db.
func WithDatabase(t *testing.T, dsn, db string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse %s: %v", PostgresDSNEnv, err)
		}
		u.Path = "/" + db
		u.RawPath = ""
		return u.String()
	}
	return dsn + " dbname=" + db // a later keyword overrides an earlier one
}
