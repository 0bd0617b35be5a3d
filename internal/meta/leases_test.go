package meta

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestLeaseSyncRestored: lease writes run with synchronous=NORMAL on SQLite, and the
// writer connection is back at the configured setting afterwards, for every later write
// — also when the lease's context was cancelled.
func TestLeaseSyncRestored(t *testing.T) {
	for _, tc := range []struct {
		configured string
		want       int // PRAGMA synchronous: 1 NORMAL, 2 FULL, 3 EXTRA
	}{{"", 2}, {"EXTRA", 3}, {"NORMAL", 1}} {
		t.Run("synchronous="+tc.configured, func(t *testing.T) {
			ctx := t.Context()
			s, err := Open(ctx, Options{Dialect: SQLite, DSN: filepath.Join(t.TempDir(), "berth.db"), SQLiteSynchronous: tc.configured})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			check := func(when string) {
				t.Helper()
				var got int
				if err := s.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Fatalf("%s: the writer runs with synchronous=%d, want %d", when, got, tc.want)
				}
			}
			check("at open")
			if ok, err := s.TryLease(ctx, "job:x", "a", time.Minute); err != nil || !ok {
				t.Fatalf("TryLease = %v, %v", ok, err)
			}
			check("after a lease was taken")
			if ok, err := s.TryLease(ctx, "job:x", "b", time.Minute); err != nil || ok {
				t.Fatalf("another holder's TryLease = %v, %v; want false", ok, err)
			}
			check("after a lease was refused")
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := s.TryLease(cancelled, "job:y", "a", time.Minute); err == nil {
				t.Fatal("TryLease with a cancelled context succeeded")
			}
			check("after a cancelled lease")
			if err := s.ReleaseLease(ctx, "job:x", "a"); err != nil {
				t.Fatal(err)
			}
			check("after a release")
			if ok, err := s.TryLease(ctx, "job:x", "b", time.Minute); err != nil || !ok {
				t.Fatalf("TryLease after the release = %v, %v", ok, err)
			}
		})
	}
}
