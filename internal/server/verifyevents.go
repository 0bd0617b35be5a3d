package server

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/meta"
)

// verifyEventEvery is how often one manifest's failing verdict under one outcome is an
// event again: a refused image is pulled over and over (kubelet retries), and one
// event tells what happened.
const verifyEventEvery = 10 * time.Minute

// verificationEvents turns the signature policies' audit entries of refused (and
// warn-mode) pulls into verification.failed events, written off the request path.
type verificationEvents struct {
	ev    events.Publisher
	log   *slog.Logger
	queue chan events.Event
	mu    sync.Mutex
	last  map[string]time.Time
	done  sync.WaitGroup
	stop  bool
}

func newVerificationEvents(ev events.Publisher, log *slog.Logger) *verificationEvents {
	v := &verificationEvents{ev: ev, log: log, queue: make(chan events.Event, 256), last: map[string]time.Time{}}
	v.done.Add(1)
	go func() {
		defer v.done.Done()
		for e := range v.queue {
			if err := v.ev.Publish(context.Background(), e); err != nil {
				v.log.Warn("record verification event", "repository", e.Repository, "err", err)
			}
		}
	}()
	return v
}

// wrap returns an audit function that also hands failing verdicts to the queue.
func (v *verificationEvents) wrap(next func(meta.AuditEntry)) func(meta.AuditEntry) {
	return func(a meta.AuditEntry) {
		if next != nil {
			next(a)
		}
		if a.Action != "verify" || (a.Result != "denied" && a.Result != "warned") {
			return
		}
		repo, digest, _ := strings.Cut(a.Resource, "@")
		key := a.Resource + " " + a.Actor + " " + a.Result
		now := time.Now()
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.stop || now.Sub(v.last[key]) < verifyEventEvery {
			return
		}
		if len(v.last) > 10000 {
			v.last = map[string]time.Time{}
		}
		v.last[key] = now
		select {
		case v.queue <- events.Event{Type: events.VerificationFailed, Repository: repo, Digest: digest,
			Data: map[string]any{"policy": a.Actor, "result": a.Result, "detail": a.Detail}}:
		default: // behind: the audit trail still has it
		}
	}
}

// Close writes what is queued and stops.
func (v *verificationEvents) Close() {
	v.mu.Lock()
	if !v.stop {
		v.stop = true
		close(v.queue)
	}
	v.mu.Unlock()
	v.done.Wait()
}
