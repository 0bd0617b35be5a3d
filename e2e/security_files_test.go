package e2e

// Issue 20 finding 6: the SQLite database and its WAL hold the token-signing private key
// and password hashes, so they must be 0600 whatever the data directory's mode and the
// umask, and a database found readable by others is tightened with a warning.

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecurityDatabaseFileModes(t *testing.T) {
	data := t.TempDir()
	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}
	b := startBerth(t, BerthOptions{Data: data, Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + auAdminPass + "\n"})
	// A login makes the signing key exist and the WAL carry writes.
	req, _ := http.NewRequest(http.MethodGet, b.URL("/token?service=berth&scope=repository:team/app:pull"), nil)
	req.SetBasicAuth("admin", auAdminPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d", resp.StatusCode)
	}
	db := filepath.Join(data, "berth.db")
	checked := 0
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
			continue
		}
		checked++
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), m)
		}
	}
	if checked != 3 {
		t.Fatalf("checked %d of 3 database files", checked)
	}

	// An operator's chmod (or a database from an older release) is tightened at start,
	// with a warning that says what it means.
	b.Stop()
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	b.start()
	st, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Errorf("after a restart berth.db has mode %v, want 0600", m)
	}
	log, _ := os.ReadFile(b.logPath)
	if !strings.Contains(string(log), "readable by other users") || !strings.Contains(string(log), "berth.db (was -rw-r--r--)") {
		b.dumpLog()
		t.Error("no start-up warning naming berth.db and its old mode")
	}
}
