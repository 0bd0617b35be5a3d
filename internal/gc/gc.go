// Package gc is Berth's online garbage collector: it deletes what nothing references any
// more while the registry keeps serving pushes and pulls, on any number of replicas.
//
// Database triggers (migration 00008) queue a review, as a job (package jobs), of every
// item a change may have orphaned, in the same transaction as the change: a tag deleted
// or moved reviews its manifest; a manifest pushed reviews itself (pushed by digest,
// maybe never tagged); a manifest's deletion reviews its blobs' links, its index
// children, its referrers and its subject; a blob linked into a repository (upload
// completed, mount) reviews the link; a link removed (blob delete, repository delete,
// review) reviews the blob. Reviews run review_after later on any replica and delete:
//
//   - a manifest that is untagged, listed by no index in its repository, not the referrer
//     of a stored subject, not the subject of a tagged referrer, older than review_after
//     and not protected by its project's untagged policy;
//   - a repository's link to a blob no manifest in the repository references, once the
//     link is older than review_after;
//   - a blob row no repository links and no manifest references; its bytes are deleted by
//     a further job after that transaction commits.
//
// Each review locks the row it judges before checking what holds it, and a manifest put
// locks the rows it relies on (meta.PutManifest), so a push racing a review either keeps
// what it references or fails with MANIFEST_BLOB_UNKNOWN before it is acknowledged.
// Mirrored repositories are left to the mirror's own eviction. An orphan sweep removes
// stored bytes no row names (crash leftovers) after a grace period.
package gc

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
)

// Options configure a Collector.
type Options struct {
	ReviewAfter   time.Duration
	OrphanGrace   time.Duration
	SweepInterval time.Duration // 0: no periodic sweep
	// Mirrored tells which repositories a mirror manages (see Rules).
	Mirrored func(repo string) bool
}

// Auditor records GC's deletions in the audit trail.
type Auditor interface {
	AppendAudit(ctx context.Context, entries []meta.AuditEntry) error
}

// Collector runs the reviews, byte deletions and sweeps as job handlers.
type Collector struct {
	store   *Store
	queue   *jobs.Store
	blobs   blobstore.Driver
	audit   Auditor
	opts    Options
	metrics *Metrics
	log     *slog.Logger
}

// New returns a collector; audit and metrics may be nil.
func New(store *Store, queue *jobs.Store, blobs blobstore.Driver, audit Auditor, opts Options, metrics *Metrics, log *slog.Logger) *Collector {
	return &Collector{store: store, queue: queue, blobs: blobs, audit: audit, opts: opts, metrics: metrics, log: log}
}

func (c *Collector) rules() Rules {
	return Rules{ReviewAfter: c.opts.ReviewAfter, Mirrored: c.Mirrored}
}

// Mirrored tells whether a mirror manages the repository (GC leaves it alone).
func (c *Collector) Mirrored(repo string) bool {
	return c.opts.Mirrored != nil && c.opts.Mirrored(repo)
}

// Setup records review_after for the triggers and schedules the periodic orphan sweep.
func (c *Collector) Setup(ctx context.Context) error {
	if err := c.store.SetReviewAfter(ctx, c.opts.ReviewAfter); err != nil {
		return err
	}
	if c.opts.SweepInterval > 0 {
		return c.queue.Schedule(ctx, jobs.Task{Kind: KindSweep, Key: "blobstore", Due: time.Now().Add(c.opts.SweepInterval)})
	}
	return nil
}

// Register installs the collector's handlers on r.
func (c *Collector) Register(r *jobs.Runner) {
	r.Handle(KindManifest, c.review(func(ctx context.Context, t jobs.Task) (Outcome, error) {
		return c.store.ReviewManifest(ctx, t.Key, c.rules())
	}))
	r.Handle(KindLink, c.review(func(ctx context.Context, t jobs.Task) (Outcome, error) {
		return c.store.ReviewLink(ctx, t.Key, c.rules())
	}))
	r.Handle(KindBlob, c.review(func(ctx context.Context, t jobs.Task) (Outcome, error) {
		return c.store.ReviewBlob(ctx, t.Key)
	}))
	r.Handle(KindBytes, c.deleteBytes)
	r.Handle(KindSweep, func(ctx context.Context, _ jobs.Task) error {
		if _, err := c.Sweep(ctx, false); err != nil {
			return err
		}
		if c.opts.SweepInterval <= 0 {
			return nil
		}
		return jobs.Postpone(time.Now().Add(c.opts.SweepInterval))
	})
}

// Kinds are the job kinds the collector handles, sweep excluded.
var Kinds = []string{KindManifest, KindLink, KindBlob, KindBytes}

func (c *Collector) review(fn func(context.Context, jobs.Task) (Outcome, error)) jobs.Handler {
	return func(ctx context.Context, t jobs.Task) error {
		out, err := fn(ctx, t)
		if err != nil {
			return err
		}
		if !out.Postpone.IsZero() {
			return jobs.Postpone(out.Postpone)
		}
		c.metrics.reviewed(t, out)
		var entries []meta.AuditEntry
		add := func(n int, what string) {
			if n > 0 {
				entries = append(entries, meta.AuditEntry{At: time.Now(), Actor: "gc", ActorType: "system", Action: "gc",
					Resource: out.Deleted, Result: "ok", Detail: what})
			}
		}
		add(out.Manifests, "manifest deleted: untagged and unreferenced")
		add(out.Blobs, fmt.Sprintf("blob deleted: no repository or manifest uses it (%d bytes)", out.Bytes))
		if len(entries) > 0 && c.audit != nil {
			if err := c.audit.AppendAudit(ctx, entries); err != nil {
				c.log.Warn("gc audit", "err", err) // the deletion stands; only its record is lost
			}
		}
		return nil
	}
}

// deleteBytes removes a deleted blob's bytes; deleting bytes already gone succeeds, so a
// retry after a crash is harmless.
func (c *Collector) deleteBytes(ctx context.Context, t jobs.Task) error {
	if err := c.blobs.Delete(ctx, t.Key); err != nil {
		return fmt.Errorf("gc: delete bytes at %s: %w", t.Key, err)
	}
	size, _ := strconv.ParseInt(string(t.Payload), 10, 64)
	c.metrics.freed(size)
	return nil
}

// SweepResult is what an orphan sweep found (and, unless a dry run, deleted).
type SweepResult struct {
	Files int
	Bytes int64
}

// Sweep deletes stored blobs older than the grace period that no blob row and no upload
// session names: bytes a crash left between writing and recording them.
func (c *Collector) Sweep(ctx context.Context, dryRun bool) (SweepResult, error) {
	var res SweepResult
	lister, ok := c.blobs.(blobstore.BlobLister)
	if !ok {
		return res, nil
	}
	err := lister.ListBlobs(ctx, time.Now().Add(-c.opts.OrphanGrace), func(b blobstore.StoredBlob) error {
		known, err := c.store.Known(ctx, b.Location, b.Handle)
		if err != nil || known {
			return err
		}
		res.Files++
		res.Bytes += b.Size
		if dryRun {
			return nil
		}
		if err := c.blobs.Delete(ctx, b.Location); err != nil {
			return fmt.Errorf("gc: delete orphan %s: %w", b.Location, err)
		}
		c.metrics.orphan(b.Size)
		c.log.Info("deleted orphaned blob bytes", "location", b.Location, "bytes", b.Size)
		return nil
	})
	return res, err
}

// Known tells whether a blob row names location or an upload session has handle.
func (s *Store) Known(ctx context.Context, location, handle string) (bool, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT CASE WHEN EXISTS (SELECT 1 FROM blobs WHERE location = $1)
		OR EXISTS (SELECT 1 FROM uploads WHERE handle = $2) THEN 1 ELSE 0 END`, location, handle).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("gc: is %s known: %w", location, err)
	}
	return n == 1, nil
}
