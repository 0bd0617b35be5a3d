package meta

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestIsDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"ENOSPC from a file write", fmt.Errorf("blobstore: write: %w", &fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}), true},
		{"PostgreSQL disk_full", fmt.Errorf("meta: commit: %w", &pgconn.PgError{Code: "53100"}), true},
		{"PostgreSQL out of memory", &pgconn.PgError{Code: "53200"}, false},
		{"other I/O error", &fs.PathError{Op: "write", Path: "/x", Err: syscall.EIO}, false},
		{"plain", errors.New("database or disk is full"), false},
	} {
		if got := IsDiskFull(tc.err); got != tc.want {
			t.Errorf("%s: IsDiskFull = %v, want %v", tc.name, got, tc.want)
		}
	}
}
