package adminapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
)

// WarmProgress is one step of a mirror warm-up: a manifest or blob fetched into the
// cache (or found there), or an image that failed.
type WarmProgress struct {
	Image  string `json:"image"`
	Kind   string `json:"kind,omitempty"` // manifest, blob
	Digest string `json:"digest,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Cached bool   `json:"cached,omitempty"`
	Error  string `json:"error,omitempty"`
}

// WarmFunc fills the mirror cache with images (restricted to platforms when given),
// reporting each step; it is the mirror's warm-up behind a type the API owns.
type WarmFunc func(ctx context.Context, images, platforms []string, progress func(WarmProgress)) error

// maxWarmImages bounds one request; a node image list is a few dozen.
const maxWarmImages = 1000

// WithWarm serves POST /mirror/warm through warm (nil: the server mirrors nothing).
func (a *API) WithWarm(warm WarmFunc) *API {
	a.warm = warm
	a.warmSlots = make(chan struct{}, 1)
	return a
}

type warmBody struct {
	Images    []string `json:"images"`
	Platforms []string `json:"platforms"`
}

// warmSummary is the last line of a warm-up's stream.
type warmSummary struct {
	Done         bool   `json:"done"`
	Images       int    `json:"images"`
	Failed       int    `json:"failed"`
	FetchedBytes int64  `json:"fetchedBytes"`
	CachedBytes  int64  `json:"cachedBytes"`
	Error        string `json:"error,omitempty"`
}

// warmMirror runs a warm-up as server work and streams its progress as NDJSON, one
// WarmProgress per line and a summary last. The work does not depend on the client:
// a disconnect stops the stream, not the warm-up, which is audited when it ends.
// One warm-up runs per replica at a time; another request meanwhile gets 429.
func (a *API) warmMirror(w http.ResponseWriter, r *http.Request, c *caller) error {
	if a.warm == nil {
		return errcode.Unsupported.New("this server mirrors no upstream (mirror.upstreams is empty)")
	}
	if err := requireAdmin(c); err != nil {
		return err
	}
	var body warmBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	if len(body.Images) == 0 || len(body.Images) > maxWarmImages {
		return invalid("images: give 1 to %d image references", maxWarmImages)
	}
	select {
	case a.warmSlots <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "30")
		return errcode.TooManyRequests.New("a warm-up is already running on this replica; try again when it ends")
	}
	// The body is read: lift its deadline, or the connection's read deadline would end
	// the request's context in the middle of a long stream.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})

	events := make(chan WarmProgress, 64)
	done := make(chan warmSummary, 1)
	go func() {
		defer func() { <-a.warmSlots }()
		sum := warmSummary{Done: true, Images: len(body.Images)}
		failed := map[string]bool{}
		err := a.warm(context.WithoutCancel(r.Context()), body.Images, body.Platforms, func(p WarmProgress) {
			switch {
			case p.Error != "":
				failed[p.Image] = true
			case p.Cached:
				sum.CachedBytes += p.Size
			default:
				sum.FetchedBytes += p.Size
			}
			select { // a client that stopped reading must not stall the warm-up
			case events <- p:
			default:
			}
		})
		sum.Failed = len(failed)
		if err != nil {
			sum.Error = err.Error()
		}
		result := "ok"
		if sum.Failed > 0 {
			result = "failed"
		}
		a.svc.Record(meta.AuditEntry{Actor: c.p.Name, ActorType: c.p.Kind, Action: "mirror.warm", Result: result, Remote: c.remote,
			Detail: fmt.Sprintf("%d images (%d failed), %d bytes fetched, %d already cached", sum.Images, sum.Failed, sum.FetchedBytes, sum.CachedBytes)})
		done <- sum
		close(events)
	}()

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	rc := http.NewResponseController(w)
	for p := range events {
		if r.Context().Err() != nil {
			continue // drain: the client is gone, the warm-up goes on
		}
		_ = enc.Encode(p)
		_ = rc.Flush()
	}
	sum := <-done
	if r.Context().Err() == nil {
		_ = enc.Encode(sum)
	}
	return nil
}
