package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/events"
)

// benchWebhooks measures webhook delivery on src (a Berth with authentication and
// events on): a system-wide CloudEvents subscription to a receiver in this process that
// verifies every signature, then n pushes of small images one after the other; for each,
// the time from the push's acknowledgement to the signed delivery's arrival.
func (b *bench) benchWebhooks(ctx context.Context, src *target, n int) error {
	if err := adminJSON(ctx, src.http, http.MethodPost, "/projects", map[string]any{"name": "hook"}, nil, http.StatusCreated); err != nil {
		return err
	}
	var mu sync.Mutex
	got := map[string]time.Time{}
	bad := 0
	var secret string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		mu.Lock()
		defer mu.Unlock()
		if _, err := events.Verify(secret, r.Header, body, time.Minute, time.Now()); err != nil {
			bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ce struct {
			Data struct{ Tags []string } `json:"data"`
		}
		if json.Unmarshal(body, &ce) == nil && len(ce.Data.Tags) == 1 {
			if _, seen := got[ce.Data.Tags[0]]; !seen {
				got[ce.Data.Tags[0]] = time.Now()
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	var sub struct {
		Secret string `json:"secret"`
	}
	if err := adminJSON(ctx, src.http, http.MethodPost, "/webhooks", map[string]any{"name": "bench", "url": "http://" + ln.Addr().String() + "/hook",
		"events": []string{"artifact.pushed"}, "repositories": []string{"hook/**"}}, &sub, http.StatusCreated); err != nil {
		return err
	}
	mu.Lock()
	secret = sub.Secret
	mu.Unlock()

	layer := randBytes(77, 4096)
	acked := make(map[string]time.Time, n)
	start := time.Now()
	for i := range n {
		tag := fmt.Sprintf("t%d", i)
		if _, err := pushScanImage(ctx, src.http, "hook/app", tag, []scanLayer{{gz: layer, diffID: digestOf(layer)}}); err != nil {
			return err
		}
		acked[tag] = time.Now()
	}
	pushed := time.Since(start)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		mu.Lock()
		done := len(got)
		mu.Unlock()
		if done >= n {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhooks: %d of %d deliveries after 5 minutes", done, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var lat []float64
	last := start
	for tag, at := range got {
		lat = append(lat, at.Sub(acked[tag]).Seconds()*1000)
		if at.After(last) {
			last = at
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	section := fmt.Sprintf("webhooks: %d pushes one after the other (%.1f s), each a signed CloudEvents delivery to a receiver on loopback", n, pushed.Seconds())
	b.res.addTo("replication", section, "deliveries per second, first push to last delivery", "events/s", map[string]float64{"replication": float64(n) / last.Sub(start).Seconds()})
	b.res.addTo("replication", section, "push acknowledged to delivery, p50", "ms", map[string]float64{"replication": pct(0.5)})
	b.res.addTo("replication", section, "push acknowledged to delivery, p99", "ms", map[string]float64{"replication": pct(0.99)})
	if bad > 0 {
		return fmt.Errorf("webhooks: %d deliveries failed signature verification", bad)
	}
	return nil
}
