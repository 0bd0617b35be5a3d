package meta

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestSQLiteFilesPrivate(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		preMode   os.FileMode // 0: no file before Open
		tightened int
	}{
		{"new database", 0, 0},
		{"existing world-readable database", 0o644, 1},
		{"existing private database", 0o600, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "berth.db")
			if tc.preMode != 0 {
				s, err := Open(ctx, Options{Dialect: SQLite, DSN: path})
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				if err := os.Chmod(path, tc.preMode); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Open(ctx, Options{Dialect: SQLite, DSN: path})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := len(s.Tightened()); got != tc.tightened {
				t.Errorf("Tightened() = %v, want %d entries", s.Tightened(), tc.tightened)
			}
			// A write creates the WAL and shared-memory files; they must be private too.
			if _, _, err := s.SigningKey(ctx, func() (string, string, error) { return "k", "pem", nil }); err != nil {
				t.Fatal(err)
			}
			seen := 0
			for _, p := range sqliteFiles(path) {
				st, err := os.Stat(p)
				if os.IsNotExist(err) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				seen++
				if st.Mode().Perm() != privateMode {
					t.Errorf("%s has mode %v, want %v", filepath.Base(p), st.Mode().Perm(), privateMode)
				}
			}
			if seen < 3 {
				t.Errorf("only %d of the database, WAL and shm files exist; the test checked too little", seen)
			}
		})
	}
}
