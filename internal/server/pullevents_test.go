package server

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/berth-registry/berth/internal/events"
)

type countPulls struct{ n int }

func (c *countPulls) Pulled(string, string) { c.n++ }

type recordEvents struct {
	mu  sync.Mutex
	got []events.Event
}

func (r *recordEvents) Publish(_ context.Context, e events.Event) error {
	r.mu.Lock()
	r.got = append(r.got, e)
	r.mu.Unlock()
	return nil
}
func (r *recordEvents) PublishTx(context.Context, *sql.Tx, events.Event) error { return nil }

// TestPullEvents: every pull is counted; with sample 1 each becomes an artifact.pulled
// event, with a small sample some do; nothing is sent after Close.
func TestPullEvents(t *testing.T) {
	for _, tt := range []struct {
		sample   float64
		min, max int
	}{{1, 1000, 1000}, {0.1, 40, 200}} {
		counted := &countPulls{}
		rec := &recordEvents{}
		p := newPullEvents(counted, tt.sample, rec, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		for range 1000 {
			p.Pulled("team/app", "sha256:abc")
		}
		p.Close()
		p.Pulled("team/app", "sha256:late") // after Close: counted, not sent, no panic
		if counted.n != 1001 {
			t.Errorf("sample %v: %d pulls counted, want 1001", tt.sample, counted.n)
		}
		dropped := int(testutil.ToFloat64(p.dropped))
		if n := len(rec.got) + dropped; n < tt.min || n > tt.max {
			t.Errorf("sample %v: %d events (+%d dropped), want %d..%d", tt.sample, len(rec.got), dropped, tt.min, tt.max)
		}
		for _, e := range rec.got {
			if e.Type != events.ArtifactPulled || e.Repository != "team/app" || e.Digest != "sha256:abc" {
				t.Fatalf("event %+v", e)
			}
		}
	}
}
