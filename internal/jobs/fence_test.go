package jobs

import (
	"errors"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/meta/metatest"
)

// TestStaleWorkerFenced proves a worker whose lease expired and whose task another worker
// took can no longer renew or finish it: outcomes are fenced by worker and attempt.
func TestStaleWorkerFenced(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			s := NewStore(b.Open(t).DB())
			ctx := t.Context()
			if err := s.Enqueue(ctx, Task{Kind: "k", Key: "a"}); err != nil {
				t.Fatal(err)
			}
			old, err := s.Claim(ctx, "slow", []string{"k"}, 1, 30*time.Millisecond)
			if err != nil || len(old) != 1 {
				t.Fatalf("claim = %v, %v", old, err)
			}
			time.Sleep(50 * time.Millisecond)
			cur, err := s.Claim(ctx, "fast", []string{"k"}, 1, time.Minute)
			if err != nil || len(cur) != 1 || cur[0].Attempts != 2 {
				t.Fatalf("retake = %v, %v", cur, err)
			}
			if err := s.renew(ctx, old[0], "slow", time.Minute); !errors.Is(err, errLeaseLost) {
				t.Fatalf("stale renew = %v, want lease lost", err)
			}
			if err := s.finish(ctx, old[0], "slow"); !errors.Is(err, errLeaseLost) {
				t.Fatalf("stale finish = %v, want lease lost", err)
			}
			if err := s.finish(ctx, cur[0], "fast"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 8 * time.Second, 12 * time.Second},
		{2, 16 * time.Second, 24 * time.Second},
		{5, 128 * time.Second, 192 * time.Second},
		{30, 48 * time.Minute, 72 * time.Minute}, // capped at an hour
	} {
		if d := backoff(10*time.Second, time.Hour, c.attempt); d < c.min || d > c.max {
			t.Errorf("backoff(attempt %d) = %v, want %v..%v", c.attempt, d, c.min, c.max)
		}
	}
}
