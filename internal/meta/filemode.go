package meta

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// privateMode is the mode of the SQLite database and its WAL and shared-memory files:
// they hold the token-signing private key and password hashes, and anyone who reads the
// key can forge an administrator's token.
const privateMode fs.FileMode = 0o600

// sqliteFiles lists the database file and the companions SQLite creates beside it.
func sqliteFiles(path string) []string {
	return []string{path, path + "-wal", path + "-shm", path + "-journal"}
}

// securePrivateFiles creates the database file 0600 when it does not exist yet (SQLite
// gives its -wal and -shm files the database file's mode, so they follow), and
// tightens any of the files that exists with group or other bits, whatever the umask
// or directory mode. It returns the files it had to tighten, for a start-up warning.
func securePrivateFiles(path string) ([]string, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, privateMode)
	switch {
	case err == nil:
		// The umask cannot widen 0600, but a pre-set ACL or odd umask could narrow
		// it past what SQLite needs; chmod states the mode exactly.
		if err := f.Chmod(privateMode); err != nil {
			f.Close()
			return nil, fmt.Errorf("meta: chmod %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("meta: create %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrExist):
	default:
		return nil, fmt.Errorf("meta: create %s: %w", path, err)
	}
	var tightened []string
	for _, p := range sqliteFiles(path) {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return tightened, fmt.Errorf("meta: stat %s: %w", p, err)
		}
		if st.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, privateMode); err != nil {
			return tightened, fmt.Errorf("meta: %s is readable by others (%v) and cannot be tightened: %w", p, st.Mode().Perm(), err)
		}
		tightened = append(tightened, fmt.Sprintf("%s (was %v)", p, st.Mode().Perm()))
	}
	return tightened, nil
}
