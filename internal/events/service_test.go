package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/events/eventstest"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// receiver is a webhook endpoint that verifies every delivery, fails the first fail
// requests with 500, and records what the application would see: each webhook-id once.
type receiver struct {
	t      *testing.T
	secret string
	format string
	srv    *httptest.Server

	mu       sync.Mutex
	fail     int
	requests int
	dups     int
	seen     map[string]bool
	got      []map[string]any // first copy of each message, in arrival order
	bad      []string
}

func newReceiver(t *testing.T, format string, fail int) *receiver {
	r := &receiver{t: t, format: format, fail: fail, seen: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	id, err := Verify(r.secret, req.Header, body, 5*time.Minute, time.Now())
	if err != nil {
		r.bad = append(r.bad, err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if err := eventstest.Validate(r.format, body); err != nil {
		r.bad = append(r.bad, fmt.Sprintf("schema: %v: %s", err, body))
	}
	if r.fail > 0 {
		r.fail--
		http.Error(w, "receiver down", http.StatusInternalServerError)
		return
	}
	if r.seen[id] {
		r.dups++
		return
	}
	r.seen[id] = true
	var v map[string]any
	_ = json.Unmarshal(body, &v)
	r.got = append(r.got, v)
}

func (r *receiver) snapshot() (got []map[string]any, requests, dups int, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got), r.requests, r.dups, slices.Clone(r.bad)
}

func (r *receiver) waitFor(n int, timeout time.Duration) []map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, reqs, _, bad := r.snapshot()
		if len(bad) > 0 {
			r.t.Fatalf("receiver refused deliveries: %v", bad)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("receiver has %d of %d messages after %v (%d requests)", len(got), n, timeout, reqs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func putManifest(t *testing.T, m *meta.Store, repo, digest string, fixed []string, tags ...string) error {
	t.Helper()
	return m.PutManifest(meta.WithActor(context.Background(), "ci-bot"), meta.Manifest{Repository: repo, Digest: digest,
		MediaType: "application/vnd.oci.image.manifest.v1+json", Payload: []byte(`{"d":"` + digest + `"}`), FixedTags: fixed}, tags)
}

func newTestService(t testing.TB, m *meta.Store, o Options) *Service {
	t.Helper()
	sealer, err := NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if o.Backoff == 0 {
		o.Backoff, o.MaxBackoff = 20*time.Millisecond, 100*time.Millisecond
	}
	o.Worker = t.Name()
	o.Mirrored = func(p string) bool { return p == "mirror" }
	svc := New(m.DB(), sealer, o, nil, quiet)
	m.SetChangeHook(svc.Hook)
	return svc
}

func run(t *testing.T, svc *Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestWebhooks(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Run("delivery", func(t *testing.T) { testDelivery(t, b.Open(t)) })
			t.Run("order", func(t *testing.T) { testOrder(t, b.Open(t)) })
			t.Run("giveUp", func(t *testing.T) { testGiveUp(t, b.Open(t)) })
			t.Run("repositoryDelete", func(t *testing.T) { testRepositoryDelete(t, b.Open(t)) })
		})
	}
}

func testDelivery(t *testing.T, m *meta.Store) {
	ctx := context.Background()
	svc := newTestService(t, m, Options{AllowPrivateTargets: true}) // receivers on loopback
	all := newReceiver(t, FormatCloudEvents, 3)
	team := newReceiver(t, FormatHarbor, 0)
	subAll, err := svc.Create(ctx, Subscription{Name: "all", URL: all.srv.URL, Enabled: true, CreatedBy: "admin"})
	if err != nil || !strings.HasPrefix(subAll.Secret, "whsec_") {
		t.Fatalf("create: %+v %v", subAll, err)
	}
	all.secret = subAll.Secret
	team.secret = "a-project-secret-of-enough-bytes"
	subTeam, err := svc.Create(ctx, Subscription{Name: "pushes", Project: "team", URL: team.srv.URL, Format: FormatHarbor, Secret: team.secret,
		Events: []string{ArtifactPushed}, Repositories: []string{"team/*"}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, Subscription{Name: "pushes", Project: "team", URL: team.srv.URL}); !errors.Is(err, meta.ErrExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	// The secret is never read back, and not stored in the clear.
	if s, _ := svc.Store().Subscription(ctx, subAll.ID); s.Secret != "" {
		t.Fatal("the secret is returned after creation")
	}
	var stored string
	_ = m.DB().QueryRow(ctx, `SELECT secret FROM webhook_subscriptions WHERE id = $1`, subTeam.ID).Scan(&stored)
	if strings.Contains(stored, team.secret) {
		t.Fatal("the secret is stored in the clear")
	}

	// Changes; a refused put and a mirror's cache fill are no events.
	for _, p := range []struct {
		repo, digest string
		tags         []string
	}{{"team/app", "sha256:a1", []string{"v1"}}, {"team/app", "sha256:a2", []string{"v2", "latest"}}, {"team/web", "sha256:w1", nil}, {"other/x", "sha256:o1", []string{"1"}}, {"mirror/y", "sha256:m1", []string{"1"}}} {
		if err := putManifest(t, m, p.repo, p.digest, nil, p.tags...); err != nil {
			t.Fatal(err)
		}
	}
	var fixed *meta.FixedTagError
	if err := putManifest(t, m, "team/app", "sha256:a3", []string{"v1"}, "v1"); !errors.As(err, &fixed) {
		t.Fatalf("moving a fixed tag: %v", err)
	}
	if err := m.DeleteTag(ctx, "team/app", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteManifest(ctx, "team/app", "sha256:a2"); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteTag(ctx, "team/app", "nope"); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("delete a missing tag: %v", err)
	}
	run(t, svc)

	got := all.waitFor(6, 20*time.Second)
	var summary []string
	for _, ce := range got {
		d := ce["data"].(map[string]any)
		summary = append(summary, fmt.Sprintf("%s %s %v %v", ce["type"], d["repository"], d["sequence"], d["tags"]))
	}
	want := []string{
		"io.berth.artifact.pushed team/app 1 [v1]", "io.berth.artifact.pushed team/app 2 [v2 latest]", "io.berth.tag.deleted team/app 3 [v1]",
		"io.berth.artifact.deleted team/app 4 [latest v2]", "io.berth.artifact.pushed team/web 1 <nil>", "io.berth.artifact.pushed other/x 1 [1]",
	}
	// Ordered per repository; repositories interleave freely.
	for _, repo := range []string{"team/app", "team/web", "other/x"} {
		var g, w []string
		for _, s := range summary {
			if strings.Contains(s, " "+repo+" ") {
				g = append(g, s)
			}
		}
		for _, s := range want {
			if strings.Contains(s, " "+repo+" ") {
				w = append(w, s)
			}
		}
		if !slices.Equal(g, w) {
			t.Errorf("%s: received %q, want %q", repo, g, w)
		}
	}
	if len(summary) != 6 {
		t.Errorf("received %q, want 6 events", summary)
	}
	if d := got[0]["data"].(map[string]any); d["actor"] != "ci-bot" {
		t.Errorf("actor %v", d["actor"])
	}
	hb := team.waitFor(3, 10*time.Second)
	for _, h := range hb {
		if h["type"] != "PUSH_ARTIFACT" || h["operator"] != "ci-bot" {
			t.Errorf("harbor payload %v", h)
		}
	}

	// History: the receiver's failures are there with their status codes (once the
	// sender has recorded the last answer).
	var ds []Delivery
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err = svc.Store().Deliveries(ctx, subAll.ID, DeliveryFilter{})
		if err != nil {
			t.Fatal(err)
		}
		// Decided from the same read as ds: a second query could see a delivery
		// finish that ds still shows pending.
		pending := slices.ContainsFunc(ds, func(d Delivery) bool { return d.State == Pending })
		if !pending || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(ds) != 6 {
		t.Fatalf("deliveries %d", len(ds))
	}
	failed := 0
	for _, d := range ds {
		if d.State != Delivered || d.LastStatus != 200 {
			t.Errorf("delivery %+v", d)
		}
		full, err := svc.Store().Delivery(ctx, subAll.ID, d.ID)
		if err != nil || len(full.History) != d.Attempts {
			t.Fatalf("delivery %d history %+v %v", d.ID, full.History, err)
		}
		for _, a := range full.History {
			if a.Status == 500 && strings.Contains(a.Error, "receiver down") {
				failed++
			}
		}
	}
	if failed != 3 {
		t.Errorf("%d failed attempts in the history, want 3", failed)
	}

	// Replay: the same message again (same webhook-id), as a new delivery.
	oldest := ds[len(ds)-1]
	ids, err := svc.Replay(ctx, subAll.ID, []int64{oldest.ID})
	if err != nil || len(ids) != 1 {
		t.Fatalf("replay: %v %v", ids, err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, _, dups, _ := all.snapshot(); dups == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replay did not arrive")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r, err := svc.Store().Delivery(ctx, subAll.ID, ids[0]); err != nil || r.ReplayOf != oldest.ID || r.EventID != oldest.EventID {
		t.Fatalf("replayed delivery %+v %v", r, err)
	}
	if _, err := svc.Replay(ctx, subAll.ID, []int64{999999}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("replay of a missing delivery: %v", err)
	}

	// Ping reaches one subscription.
	if _, err := svc.Ping(ctx, subTeam.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	if hb := team.waitFor(4, 10*time.Second); hb[3]["type"] != "PING" {
		t.Fatalf("ping: %v", hb[3])
	}

	// Disabled: new events are not sent; deleted: the history goes with it.
	off := false
	if _, err := svc.Update(ctx, subTeam.ID, Patch{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	if err := putManifest(t, m, "team/app", "sha256:a9", nil, "v9"); err != nil {
		t.Fatal(err)
	}
	all.waitFor(7, 10*time.Second)
	if got, _, _, _ := team.snapshot(); len(got) != 4 {
		t.Fatalf("a disabled subscription received %d messages", len(got))
	}
	rotated, err := svc.Update(ctx, subAll.ID, Patch{RotateSecret: true})
	if err != nil || rotated.Secret == "" || rotated.Secret == subAll.Secret {
		t.Fatalf("rotate: %v", err)
	}
	if err := svc.Delete(ctx, subAll.ID); err != nil {
		t.Fatal(err)
	}
	if ds, _ := svc.Store().Deliveries(ctx, subAll.ID, DeliveryFilter{}); len(ds) != 0 {
		t.Fatalf("deliveries of a deleted subscription: %d", len(ds))
	}
	if err := svc.Delete(ctx, subAll.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

// testOrder: concurrent pushes into one repository reach the receiver in sequence
// order, each exactly once, through a failing receiver.
func testOrder(t *testing.T, m *meta.Store) {
	ctx := context.Background()
	svc := newTestService(t, m, Options{})
	r := newReceiver(t, FormatCloudEvents, 5)
	sub, err := svc.Create(ctx, Subscription{Name: "o", URL: r.srv.URL, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	r.secret = sub.Secret
	run(t, svc)
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- putManifest(t, m, "team/hot", fmt.Sprintf("sha256:%d-%d", w, i), nil, fmt.Sprintf("w%d", w))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := r.waitFor(writers*each, 30*time.Second)
	for i, ce := range got {
		if seq := ce["data"].(map[string]any)["sequence"]; seq != float64(i+1) {
			t.Fatalf("message %d has sequence %v: out of order", i, seq)
		}
	}
}

// testGiveUp: past the retry window a delivery fails for good and its lane goes on.
func testGiveUp(t *testing.T, m *meta.Store) {
	ctx := context.Background()
	svc := newTestService(t, m, Options{RetryFor: 2 * time.Second})
	r := newReceiver(t, FormatCloudEvents, 1<<30)
	sub, err := svc.Create(ctx, Subscription{Name: "down", URL: r.srv.URL, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	r.secret = sub.Secret
	if err := putManifest(t, m, "team/app", "sha256:1", nil, "a"); err != nil {
		t.Fatal(err)
	}
	if err := putManifest(t, m, "team/app", "sha256:2", nil, "b"); err != nil {
		t.Fatal(err)
	}
	run(t, svc)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ds, err := svc.Store().Deliveries(ctx, sub.ID, DeliveryFilter{State: Failed})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 2 {
			// The head was retried through the window; the one queued behind it
			// was tried once it came first (its own window had passed by then).
			if ds[1].Attempts < 2 || ds[1].LastStatus != 500 || ds[0].Attempts != 1 {
				t.Fatalf("failed deliveries %+v", ds)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries failed after the window, want 2", len(ds))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Replaying every failed delivery once the receiver is back.
	r.mu.Lock()
	r.fail = 0
	r.mu.Unlock()
	ids, err := svc.Replay(ctx, sub.ID, nil)
	if err != nil || len(ids) != 2 {
		t.Fatalf("replay failed: %v %v", ids, err)
	}
	r.waitFor(2, 10*time.Second)
}

// testRepositoryDelete: deleting a repository is an artifact.deleted event per manifest,
// with its tags, after the pushes, in order.
func testRepositoryDelete(t *testing.T, m *meta.Store) {
	ctx := context.Background()
	svc := newTestService(t, m, Options{})
	r := newReceiver(t, FormatCloudEvents, 0)
	sub, err := svc.Create(ctx, Subscription{Name: "r", URL: r.srv.URL, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	r.secret = sub.Secret
	for _, p := range []struct{ d, tag string }{{"sha256:g1", "v1"}, {"sha256:g2", ""}} {
		var tags []string
		if p.tag != "" {
			tags = []string{p.tag, "latest"}
		}
		if err := putManifest(t, m, "team/gone", p.d, nil, tags...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.DeleteRepository(ctx, "team/gone"); err != nil {
		t.Fatal(err)
	}
	run(t, svc)
	var got []string
	for _, ce := range r.waitFor(4, 20*time.Second) {
		d := ce["data"].(map[string]any)
		got = append(got, fmt.Sprintf("%s %v %v %v", ce["type"], d["sequence"], d["digest"], d["tags"]))
	}
	want := []string{"io.berth.artifact.pushed 1 sha256:g1 [v1 latest]", "io.berth.artifact.pushed 2 sha256:g2 <nil>",
		"io.berth.artifact.deleted 3 sha256:g1 [latest v1]", "io.berth.artifact.deleted 4 sha256:g2 <nil>"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}
