package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/proxy"
)

// preheatKind is the job warming one announced image (key: the image).
const preheatKind = "mirror.preheat"

// maxPreheatBody bounds an announcement.
const maxPreheatBody = 1 << 20

// newPreheat returns the POST /preheat handler of an edge (nil with events.preheat off)
// and registers the warm-up job on runner. Announcements are CloudEvents webhooks from
// the registry above; each verified artifact.pushed event with tags queues a warm-up of
// those tags from the configured upstream.
func newPreheat(cfg config.Config, m *meta.Store, mirror *proxy.Mirror, runner *jobs.Runner, log *slog.Logger) (http.Handler, error) {
	p := cfg.Events.Preheat
	if !p.Enabled {
		return nil, nil
	}
	if mirror == nil || !slices.ContainsFunc(cfg.Mirror.Upstreams, func(u config.Upstream) bool { return u.Name == p.Upstream }) {
		return nil, fmt.Errorf("events.preheat.upstream %q is not a mirror upstream", p.Upstream)
	}
	b, err := os.ReadFile(p.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("events.preheat.secretFile: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if _, err := events.Sign(secret, "check", time.Now(), nil); err != nil {
		return nil, fmt.Errorf("events.preheat.secretFile: %w", err)
	}
	queue := jobs.NewStore(m.DB())
	runner.Handle(preheatKind, func(ctx context.Context, t jobs.Task) error {
		image := string(t.Payload)
		fetched := 0
		err := mirror.Warm(ctx, []string{image}, p.Platforms, func(ev proxy.WarmEvent) {
			if ev.Err == nil && !ev.Cached {
				fetched++
			}
		})
		if err != nil {
			return err
		}
		log.Info("preheated", "image", image, "fetched", fetched)
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPreheatBody))
		if err != nil {
			errcode.Write(w, r, errcode.RequestTooLarge.New("announcement larger than 1 MiB or not received"))
			return
		}
		if _, err := events.Verify(secret, r.Header, body, 5*time.Minute, time.Now()); err != nil {
			errcode.Write(w, r, errcode.Unauthorized.New("preheat announcements must carry a valid webhook signature"))
			return
		}
		var ce struct {
			Type string       `json:"type"`
			Data events.Event `json:"data"`
		}
		if err := json.Unmarshal(body, &ce); err != nil {
			errcode.Write(w, r, errcode.InvalidRequest.New("not a CloudEvents JSON announcement: "+err.Error()))
			return
		}
		queued := 0
		if ce.Type == events.CloudEventType(events.ArtifactPushed) {
			for _, tag := range ce.Data.Tags {
				if !tagWanted(p.Tags, tag) {
					continue
				}
				image := p.Upstream + "/" + ce.Data.Repository + ":" + tag
				if err := queue.Enqueue(r.Context(), jobs.Task{Kind: preheatKind, Key: image, Payload: []byte(image)}); err != nil {
					if meta.IsUnavailable(err) || errors.Is(err, context.Canceled) {
						errcode.Write(w, r, errcode.Unavailable.Wrap(err, "the database is unavailable"))
						return
					}
					errcode.Write(w, r, errcode.Internal.Wrap(err, ""))
					return
				}
				queued++
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted) // other event types are acknowledged and ignored
		_ = json.NewEncoder(w).Encode(map[string]int{"queued": queued})
	}), nil
}

// tagWanted tells whether an announced tag matches the edge's tag globs (none: all).
func tagWanted(globs []string, tag string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, tag); ok {
			return true
		}
	}
	return false
}
