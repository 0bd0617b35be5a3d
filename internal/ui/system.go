package ui

import (
	"context"
	"net/http"
	"time"
)

// System reports the state of background work for the system page: the job queue per
// kind (GC reviews, scans, replications, webhook deliveries…) and what GC has freed.
type System interface {
	Jobs(ctx context.Context) ([]JobKind, error)
	GC(ctx context.Context) (GCTotals, error)
}

// JobKind is one kind of background task and how many are in each state.
type JobKind struct {
	Kind   string
	States map[string]int64
	// Lag is how long the oldest due task has waited (0: none waiting).
	Lag time.Duration
}

// GCTotals is what garbage collection deleted since the database was created.
type GCTotals struct {
	Manifests, Links, Blobs, Bytes int64
	LastDelete                     time.Time
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
		data["Jobs"], data["GC"] = jobs, gc
	}
	var policies struct{ Policies []map[string]any }
	if _, err := u.get(r, v, "/policies", nil, &policies); err == nil {
		data["Policies"] = policies.Policies
	}
	u.render(w, r, v, http.StatusOK, "system", data)
	return nil
}
