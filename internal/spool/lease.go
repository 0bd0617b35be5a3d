package spool

import (
	"context"
	"time"
)

// Leases make one replica the downloader of some content: a row in the database that
// expires unless renewed, so a downloader that dies frees it.
type Leases interface {
	TryLease(ctx context.Context, name string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name string)
}

// leasePoll is how often a replica waiting for another's download looks again.
const leasePoll = 200 * time.Millisecond

// AwaitLease takes the download lease name (true: this replica downloads), or waits
// while another replica holds it: local says whether this replica is the downloader
// after all (join its flight: true), and stored returns the content once the other
// replica has stored it (false, with it).
func AwaitLease[B any](ctx context.Context, l Leases, name string, ttl time.Duration, local func() bool, stored func() (B, bool)) (B, bool, error) {
	var none B
	for {
		ok, err := l.TryLease(ctx, name, ttl)
		if err != nil {
			return none, false, err
		}
		if ok || local() {
			return none, true, nil
		}
		select {
		case <-ctx.Done():
			return none, false, ctx.Err()
		case <-time.After(leasePoll):
		}
		if b, ok := stored(); ok {
			return b, false, nil
		}
	}
}

// HoldLease renews the lease name every ttl/3 while a download runs; the returned
// func stops renewing and releases it.
func HoldLease(ctx context.Context, l Leases, name string, ttl time.Duration) (release func()) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		renew := time.NewTicker(ttl / 3)
		defer renew.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-renew.C:
				_, _ = l.TryLease(ctx, name, ttl)
			}
		}
	}()
	return func() {
		cancel()
		l.ReleaseLease(context.WithoutCancel(ctx), name)
	}
}
