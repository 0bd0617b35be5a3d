package auth

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// auditor writes audit entries in batches off the request path: a pull must not wait
// for a database write, and a burst of pulls becomes one transaction.
type auditor struct {
	meta *meta.Store
	log  *slog.Logger
	in   chan meta.AuditEntry
	done chan struct{}

	mu     sync.RWMutex // guards closed against record racing close
	closed bool
}

func newAuditor(m *meta.Store, log *slog.Logger) *auditor {
	a := &auditor{meta: m, log: log, in: make(chan meta.AuditEntry, 4096), done: make(chan struct{})}
	go a.run()
	return a
}

func (a *auditor) record(e meta.AuditEntry) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.log.Warn("audit entry after shutdown dropped", "actor", e.Actor, "action", e.Action, "resource", e.Resource)
		return
	}
	select {
	case a.in <- e:
	default:
		// Never block a request on the audit trail; say loudly that entries were lost.
		a.log.Error("audit queue full; entry dropped", "actor", e.Actor, "action", e.Action, "resource", e.Resource)
	}
}

func (a *auditor) run() {
	defer close(a.done)
	var batch []meta.AuditEntry
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := a.meta.AppendAudit(context.Background(), batch); err != nil {
			a.log.Error("write audit entries", "count", len(batch), "err", err)
		}
		batch = batch[:0]
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-a.in:
			if !ok {
				flush()
				return
			}
			batch = append(batch, e)
			if len(batch) >= 256 {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// close writes what is queued and stops; later calls and later entries are no-ops.
func (a *auditor) close() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.in)
	}
	a.mu.Unlock()
	<-a.done
}
