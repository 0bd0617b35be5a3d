package inventory

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// Pulls counts manifest pulls. Pulled only adds to a map in memory; a background loop
// writes the sums every interval (and when many distinct manifests piled up), so a
// manifest GET costs a map update, never a database write: on SQLite every write queues
// behind the single writer, and a write per GET would put pushes behind pulls.
//
// Counts are per replica and additive, so replicas flushing the same rows need no
// coordination. What a crash loses is at most one interval of counts.
type Pulls struct {
	db       *meta.DB
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	pending map[pullKey]*pullDelta

	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
	dropped atomic.Int64
}

type pullKey struct{ repo, digest string }

type pullDelta struct {
	n    int64
	last int64 // unix ms of the latest pull
}

const (
	// flushAt distinct manifests wakes the flusher before its interval ends.
	flushAt = 4096
	// maxPending bounds memory while the database is unreachable: pulls of further
	// manifests are dropped (and counted) rather than held.
	maxPending = 64 * flushAt
	// flushBatch rows per transaction keep the SQLite writer free for pushes.
	flushBatch = 500
)

// NewPulls starts a counter that flushes every interval (1s when 0); Close stops it.
func NewPulls(db *meta.DB, interval time.Duration, log *slog.Logger) *Pulls {
	if interval <= 0 {
		interval = time.Second
	}
	p := &Pulls{db: db, log: log, interval: interval, pending: map[pullKey]*pullDelta{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// Pulled records one pull of the manifest digest from repo.
func (p *Pulls) Pulled(repo, digest string) {
	now := time.Now().UnixMilli()
	k := pullKey{repo, digest}
	p.mu.Lock()
	d := p.pending[k]
	if d == nil {
		if len(p.pending) >= maxPending {
			p.mu.Unlock()
			p.dropped.Add(1)
			return
		}
		d = &pullDelta{}
		p.pending[k] = d
	}
	d.n++
	d.last = now
	full := len(p.pending) >= flushAt
	p.mu.Unlock()
	if full {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// Dropped is how many pulls were not counted because too many were pending.
func (p *Pulls) Dropped() int64 { return p.dropped.Load() }

func (p *Pulls) run() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		case <-p.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := p.Flush(ctx); err != nil {
			p.log.Warn("pull counts not written; retrying", "err", err)
		}
		cancel()
	}
}

// Close stops the loop and writes what is pending.
func (p *Pulls) Close() {
	p.closing.Do(func() {
		close(p.stop)
		<-p.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Flush(ctx); err != nil {
			p.log.Warn("pull counts lost at shutdown", "err", err)
		}
	})
}

// Flush writes the pending counts now. What could not be written stays pending.
func (p *Pulls) Flush(ctx context.Context) error {
	p.mu.Lock()
	batch := p.pending
	p.pending = map[pullKey]*pullDelta{}
	p.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	// One order for every replica, so two flushes of the same rows cannot deadlock.
	keys := make([]pullKey, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b pullKey) int {
		if c := strings.Compare(a.repo, b.repo); c != 0 {
			return c
		}
		return strings.Compare(a.digest, b.digest)
	})
	for start := 0; start < len(keys); start += flushBatch {
		chunk := keys[start:min(start+flushBatch, len(keys))]
		if err := p.db.InTx(ctx, func(tx *sql.Tx) error { return writePulls(ctx, tx, chunk, batch) }); err != nil {
			p.restore(keys[start:], batch)
			return fmt.Errorf("inventory: flush pull counts: %w", err)
		}
	}
	return nil
}

// writePulls adds one chunk's counts to its manifests and, summed, their repositories.
func writePulls(ctx context.Context, tx *sql.Tx, keys []pullKey, batch map[pullKey]*pullDelta) error {
	repos := map[string]*pullDelta{}
	var order []string
	for _, k := range keys {
		d := batch[k]
		if _, err := tx.ExecContext(ctx, `UPDATE manifests SET pull_count = pull_count + $1,
			last_pulled_at = CASE WHEN last_pulled_at < $2 THEN $2 ELSE last_pulled_at END
			WHERE repository_id = (SELECT id FROM repositories WHERE name = $3) AND digest = $4`,
			d.n, d.last, k.repo, k.digest); err != nil {
			return err
		}
		r := repos[k.repo]
		if r == nil {
			r = &pullDelta{}
			repos[k.repo] = r
			order = append(order, k.repo)
		}
		r.n += d.n
		r.last = max(r.last, d.last)
	}
	for _, name := range order {
		r := repos[name]
		if _, err := tx.ExecContext(ctx, `UPDATE repositories SET pull_count = pull_count + $1,
			last_pulled_at = CASE WHEN last_pulled_at < $2 THEN $2 ELSE last_pulled_at END WHERE name = $3`,
			r.n, r.last, name); err != nil {
			return err
		}
	}
	return nil
}

// restore puts unwritten counts back, merged with pulls counted meanwhile.
func (p *Pulls) restore(keys []pullKey, batch map[pullKey]*pullDelta) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		d := batch[k]
		cur := p.pending[k]
		if cur == nil {
			if len(p.pending) >= maxPending {
				p.dropped.Add(d.n)
				continue
			}
			p.pending[k] = d
			continue
		}
		cur.n += d.n
		cur.last = max(cur.last, d.last)
	}
}
