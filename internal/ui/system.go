package ui

import (
	"context"
	"net/http"
	"time"
)

// System reports the state of background work for the system page: the job queue per
// kind (GC reviews, scans, replications, webhook deliveries…), what GC has freed and how
// it is set up, and the latest failed tasks — what `berth gc status` prints.
type System interface {
	Jobs(ctx context.Context) ([]JobKind, error)
	GC(ctx context.Context) (GCTotals, error)
	// Failures are the latest tasks that failed for good, newest first, at most n.
	Failures(ctx context.Context, n int) ([]JobFailure, error)
}

// JobFailure is a task that failed for good.
type JobFailure struct {
	Kind, Key string
	Attempts  int
	LastError string
}

// maxFailures bounds the failed tasks the system page lists.
const maxFailures = 10

// JobKind is one kind of background task and how many are in each state.
type JobKind struct {
	Kind   string
	States map[string]int64
	// Lag is how long the oldest due task has waited (0: none waiting).
	Lag time.Duration
}

// GCTotals is what garbage collection deleted since the database was created, and this
// replica's GC settings.
type GCTotals struct {
	Manifests, Links, Blobs, Bytes int64
	LastDelete                     time.Time
	// Enabled tells whether this replica runs GC workers (gc.enabled); reviews are
	// queued either way.
	Enabled bool
	// ReviewAfter is gc.reviewAfter, Workers gc.workers.
	ReviewAfter time.Duration
	Workers     int
}

func (u *UI) system(w http.ResponseWriter, r *http.Request, v *visit) error {
	if !v.p.Admin {
		return errStatus(http.StatusForbidden, "only system administrators see the system page")
	}
	data := map[string]any{"Title": "System"}
	if u.d.System != nil {
		jobs, err := u.d.System.Jobs(r.Context())
		if err != nil {
			return err
		}
		gc, err := u.d.System.GC(r.Context())
		if err != nil {
			return err
		}
		failed, err := u.d.System.Failures(r.Context(), maxFailures)
		if err != nil {
			return err
		}
		data["Jobs"], data["GC"], data["Failures"] = jobs, gc, failed
	}
	var policies struct{ Policies []map[string]any }
	if _, err := u.get(r, v, "/policies", nil, &policies); err == nil {
		data["Policies"] = policies.Policies
	}
	u.render(w, r, v, http.StatusOK, "system", data)
	return nil
}
