package spool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// leaseTable is the database's lease rows in memory: one holder per name.
type leaseTable struct {
	mu       sync.Mutex
	held     map[string]bool
	tries    atomic.Int64
	released []string
}

func (l *leaseTable) TryLease(_ context.Context, name string, _ time.Duration) (bool, error) {
	l.tries.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[name] {
		return false, nil
	}
	l.held[name] = true
	return true, nil
}

func (l *leaseTable) ReleaseLease(_ context.Context, name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, name)
	l.released = append(l.released, name)
}

func TestAwaitLease(t *testing.T) {
	never := func() bool { return false }
	for _, tt := range []struct {
		name      string
		heldBy    bool // another replica holds the lease
		local     func() bool
		storedAt  int // stored() succeeds from this call on (0: never)
		wantFetch bool
		wantValue string
	}{
		{name: "free: this replica downloads", wantFetch: true},
		{name: "held here: join the flight", heldBy: true, local: func() bool { return true }, wantFetch: true},
		{name: "held elsewhere: the stored content", heldBy: true, local: never, storedAt: 2, wantValue: "stored"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &leaseTable{held: map[string]bool{}}
			if tt.heldBy {
				l.held["x"] = true
			}
			local := tt.local
			if local == nil {
				local = never
			}
			calls := 0
			v, fetch, err := AwaitLease(context.Background(), l, "x", time.Minute, local, func() (string, bool) {
				calls++
				return "stored", tt.storedAt > 0 && calls >= tt.storedAt
			})
			if err != nil || fetch != tt.wantFetch || v != tt.wantValue {
				t.Fatalf("AwaitLease = %q, %v, %v; want %q, %v", v, fetch, err, tt.wantValue, tt.wantFetch)
			}
		})
	}
	t.Run("the caller gives up", func(t *testing.T) {
		l := &leaseTable{held: map[string]bool{"x": true}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*leasePoll)
		defer cancel()
		_, _, err := AwaitLease(ctx, l, "x", time.Minute, never, func() (int, bool) { return 0, false })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the context's", err)
		}
	})
}

func TestHoldLease(t *testing.T) {
	l := &leaseTable{held: map[string]bool{}}
	release := HoldLease(context.Background(), l, "x", 30*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for l.tries.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if l.tries.Load() < 2 {
		t.Fatalf("the lease was renewed %d times", l.tries.Load())
	}
	release()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.released) != 1 || l.released[0] != "x" {
		t.Fatalf("released %v, want [x]", l.released)
	}
}
