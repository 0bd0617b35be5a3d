package server

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/distribution"
	"github.com/berth-registry/berth/internal/events"
)

// pullEvents records a sample of manifest pulls as artifact.pulled events. Pulls are the
// hot path: the request only offers the pull to a bounded queue, a writer publishes
// from it, and what does not fit is dropped and counted.
type pullEvents struct {
	next    distribution.PullCounter
	sample  float64
	ev      events.Publisher
	queue   chan events.Event
	dropped prometheus.Counter
	log     *slog.Logger
	done    sync.WaitGroup
	// mu keeps a late pull from sending on the closed queue.
	mu     sync.RWMutex
	closed bool
}

func newPullEvents(next distribution.PullCounter, sample float64, ev events.Publisher, reg prometheus.Registerer, log *slog.Logger) *pullEvents {
	p := &pullEvents{next: next, sample: sample, ev: ev, queue: make(chan events.Event, 1024), log: log,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_events_pulls_dropped_total",
			Help: "Sampled pull events dropped because their writer was behind."})}
	reg.MustRegister(p.dropped)
	p.done.Add(1)
	go p.run()
	return p
}

func (p *pullEvents) Pulled(repo, digest string) {
	p.next.Pulled(repo, digest)
	if rand.Float64() >= p.sample {
		return
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return
	}
	select {
	case p.queue <- events.Event{Type: events.ArtifactPulled, Repository: repo, Digest: digest}:
	default:
		p.dropped.Inc()
	}
}

func (p *pullEvents) run() {
	defer p.done.Done()
	for e := range p.queue {
		if err := p.ev.Publish(context.Background(), e); err != nil {
			p.log.Warn("record pull event", "repository", e.Repository, "err", err)
		}
	}
}

// Close publishes what is queued and stops.
func (p *pullEvents) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
	p.mu.Unlock()
	p.done.Wait()
}
