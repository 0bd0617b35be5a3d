package meta_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

// postgresDSNEnv names the PostgreSQL server the tests use, e.g. the output of
// .ci/start-postgres.sh. Each store opened gets its own fresh database on that server.
const postgresDSNEnv = "BERTH_TEST_POSTGRES_DSN"

func openSQLite(t *testing.T, dir string) *meta.Store {
	t.Helper()
	s, err := meta.Open(context.Background(), meta.Options{Dialect: meta.SQLite, DSN: filepath.Join(dir, "berth.db")})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	return s
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	metatest.Run(t, func(t *testing.T) *meta.Store {
		s := openSQLite(t, t.TempDir())
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestSQLiteCached runs the contract with the read cache on, as berth serve opens SQLite:
// any write the cache missed shows as a stale read in the suite's cases.
func TestSQLiteCached(t *testing.T) {
	t.Parallel()
	metatest.Run(t, func(t *testing.T) *meta.Store {
		s, err := meta.Open(t.Context(), meta.Options{Dialect: meta.SQLite, DSN: filepath.Join(t.TempDir(), "berth.db"), CacheBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	dsn := os.Getenv(postgresDSNEnv)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set, but CI is: CI must run the PostgreSQL suite (start a server with DSN=$(.ci/start-postgres.sh))", postgresDSNEnv)
		}
		t.Skipf("PostgreSQL suite skipped: set %s (e.g. %s=$(.ci/start-postgres.sh)) to run it", postgresDSNEnv, postgresDSNEnv)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", postgresDSNEnv, err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := admin.PingContext(t.Context()); err != nil {
		t.Fatalf("connect to %s: %v", postgresDSNEnv, err)
	}
	metatest.Run(t, func(t *testing.T) *meta.Store {
		return metatest.OpenPostgres(t, admin, dsn)
	})
}

// TestSQLiteReopen proves the embedded database is durable across a restart and that
// migrating an up-to-date database is a no-op.
func TestSQLiteReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openSQLite(t, dir)
	if err := s.CreateUpload(ctx, meta.Upload{ID: "u", Repository: "r", Handle: "h", Size: 3, HashState: []byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutManifest(ctx, meta.Manifest{Repository: "r", Digest: "sha256:x", MediaType: "m", Payload: []byte("{}")}, []string{"t"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSQLite(t, dir)
	defer s.Close()
	if u, err := s.GetUpload(ctx, "r", "u"); err != nil || u.Size != 3 || string(u.HashState) != "\x01\x02\x03" {
		t.Fatalf("upload after reopen = %+v, %v", u, err)
	}
	if m, err := s.GetManifest(ctx, "r", "t", false, true); err != nil || string(m.Payload) != "{}" {
		t.Fatalf("manifest after reopen = %+v, %v", m, err)
	}
}

// TestSQLitePathWithURICharacters: the database path is embedded in an SQLite URI; a data
// directory containing '#', '?' or '%' must still open exactly that file (with its
// pragmas), not a truncated or decoded path.
func TestSQLitePathWithURICharacters(t *testing.T) {
	for _, name := range []string{"a#b", "a?b", "a%41b", "a%", "sp ace"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			s := openSQLite(t, dir)
			if err := s.CreateUpload(context.Background(), meta.Upload{ID: "u", Repository: "r", Handle: "h"}); err != nil {
				t.Fatal(err)
			}
			// The database and its write-ahead log (journal_mode(WAL) applied) are there.
			for _, f := range []string{"berth.db", "berth.db-wal"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("data dir %q: %v", name, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(filepath.Dir(dir))
			if len(entries) != 1 {
				t.Errorf("files next to the data dir %q: %d, want only the data dir", name, len(entries))
			}
		})
	}
}

func TestOpenOptions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := meta.Open(ctx, meta.Options{Dialect: "mysql", DSN: "x"}); err == nil {
		t.Error("Open accepted an unknown dialect")
	}
	if _, err := meta.Open(ctx, meta.Options{Dialect: meta.SQLite, DSN: filepath.Join(dir, "x.db"), SQLiteSynchronous: "OFF"}); err == nil {
		t.Error("Open accepted synchronous OFF")
	}
	s, err := meta.Open(ctx, meta.Options{Dialect: meta.SQLite, DSN: filepath.Join(dir, "nested", "dir", "y.db"), SQLiteSynchronous: "normal"})
	if err != nil {
		t.Fatalf("Open with synchronous normal in a new directory: %v", err)
	}
	defer s.Close()
	if s.Dialect() != meta.SQLite {
		t.Errorf("Dialect = %q", s.Dialect())
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Ping(pctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
