package e2e

// Events and webhooks (issue 15): a real berth with auth on, crane pushing, receivers on
// loopback that verify every Standard Webhooks signature and validate payloads against
// the CloudEvents and Harbor schemas. Helpers are prefixed "wh".

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/events/eventstest"
)

// whReceiver is a webhook endpoint: it verifies the signature of every request (a bad
// one answers 401 and is counted), validates the payload against its format's schema,
// fails the first `fail` valid requests with 503, and hands the application each
// webhook-id once, in arrival order.
type whReceiver struct {
	t      *testing.T
	format string
	addr   string
	mu     sync.Mutex
	secret string
	fail   int
	srv    *http.Server
	ln     net.Listener

	requests, failed, dups int
	bad                    []string
	seen                   map[string]bool
	got                    []whMessage
	raw                    *whRaw // the first valid request, for the tampering check
}

type whMessage struct {
	id       string
	body     map[string]any
	received time.Time
}

type whRaw struct {
	header http.Header
	body   []byte
}

func whNewReceiver(t *testing.T, format string, fail int) *whReceiver {
	r := &whReceiver{t: t, format: format, fail: fail, seen: map[string]bool{}}
	r.listen("127.0.0.1:0")
	t.Cleanup(func() { r.down() })
	return r
}

func (r *whReceiver) url() string { return "http://" + r.addr + "/hook" }

func (r *whReceiver) listen(addr string) {
	var err error
	for i := 0; i < 50; i++ { // the port of a closed listener may take a moment to free
		if r.ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = r.ln.Addr().String()
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(r.ln) }()
}

// down stops listening: deliveries meet connection refused.
func (r *whReceiver) down() {
	if r.srv != nil {
		_ = r.srv.Close()
		r.srv = nil
	}
}

func (r *whReceiver) up() { r.listen(r.addr) }

func (r *whReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	id, err := events.Verify(r.secret, req.Header, body, 5*time.Minute, time.Now())
	if err != nil {
		r.bad = append(r.bad, "signature: "+err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if err := eventstest.Validate(r.format, body); err != nil {
		r.bad = append(r.bad, fmt.Sprintf("%s schema: %v: %s", r.format, err, body))
	}
	if r.raw == nil {
		r.raw = &whRaw{header: req.Header.Clone(), body: body}
	}
	if r.fail > 0 {
		r.fail--
		r.failed++
		http.Error(w, "receiver busy", http.StatusServiceUnavailable)
		return
	}
	if r.seen[id] {
		r.dups++
		w.WriteHeader(http.StatusNoContent)
		return
	}
	r.seen[id] = true
	var v map[string]any
	_ = json.Unmarshal(body, &v)
	r.got = append(r.got, whMessage{id: id, body: v, received: time.Now()})
	w.WriteHeader(http.StatusNoContent)
}

func (r *whReceiver) snapshot() (got []whMessage, requests, failed, dups int, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got), r.requests, r.failed, r.dups, slices.Clone(r.bad)
}

// waitFor waits until the application has n messages and fails on any refused one.
func (r *whReceiver) waitFor(n int, timeout time.Duration) []whMessage {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, reqs, _, _, bad := r.snapshot()
		if len(bad) > 0 {
			r.t.Fatalf("receiver refused deliveries: %v", bad)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("receiver has %d of %d messages after %v (%d requests)", len(got), n, timeout, reqs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// whCE is what a CloudEvents message says about itself.
type whCE struct {
	Type       string
	Repository string
	Sequence   int
	Digest     string
	Tags       []string
	Actor      string
}

func whParse(m whMessage) whCE {
	d, _ := m.body["data"].(map[string]any)
	c := whCE{Type: fmt.Sprint(m.body["type"]), Repository: fmt.Sprint(d["repository"]), Digest: fmt.Sprint(d["digest"]), Actor: fmt.Sprint(d["actor"])}
	if s, ok := d["sequence"].(float64); ok {
		c.Sequence = int(s)
	}
	if ts, ok := d["tags"].([]any); ok {
		for _, t := range ts {
			c.Tags = append(c.Tags, fmt.Sprint(t))
		}
	}
	return c
}

// whCheckOrder checks each repository's messages arrive with sequences 1, 2, 3, …
// (every event once, in commit order).
func whCheckOrder(t *testing.T, got []whMessage) map[string][]whCE {
	t.Helper()
	per := map[string][]whCE{}
	for _, m := range got {
		c := whParse(m)
		per[c.Repository] = append(per[c.Repository], c)
	}
	for repo, cs := range per {
		for i, c := range cs {
			if c.Sequence != i+1 {
				t.Fatalf("%s: message %d has sequence %d (%s): not every event once in order: %+v", repo, i, c.Sequence, c.Type, cs)
			}
		}
	}
	return per
}

type whWebhook struct {
	ID     int64  `json:"id"`
	Secret string `json:"secret"`
}

type whDelivery struct {
	ID         int64  `json:"id"`
	EventID    string `json:"eventId"`
	EventType  string `json:"eventType"`
	State      string `json:"state"`
	Attempts   int    `json:"attempts"`
	LastStatus int    `json:"lastStatus"`
	History    []struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	} `json:"history"`
}

// whPush pushes a one-layer image to repo:tag with crane and returns its digest.
func whPush(t *testing.T, env []string, b *Berth, repo, tag string, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	m := rpWriteLayout(t, dir, "x", rpNewBlob(seed*2+1000, 200), rpNewBlob(seed*2+1001, 2000))
	run(t, env, "crane", "push", "--insecure", dir, b.Addr+"/"+repo+":"+tag)
	return biSHA(m)
}

// TestWebhooks: pushes and deletes reach a system-wide CloudEvents webhook and a
// project's Harbor-format webhook, signed, schema-valid, every event exactly once to the
// application and in order per repository, through receiver failures (retried with
// backoff, recorded with their status codes); a tampered payload fails verification; a
// replay resends the same webhook-id; events committed while the receiver is down, and
// across a kill -9 of berth, are delivered once it is back.
func TestWebhooks(t *testing.T) {
	requireTool(t, "crane")
	env := toolEnv(t)
	cfg := "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword +
		"\nevents:\n  webhooks:\n    backoff: 200ms\n    maxBackoff: 1s\n    allowPrivateTargets: true\n    host: registry.example:5000\n"
	b := startBerth(t, BerthOptions{Config: cfg})
	admOK(t, b, "", "project", "create", "team")
	run(t, env, "crane", "auth", "login", b.Addr, "-u", "admin", "-p", admPassword)

	all := whNewReceiver(t, "cloudevents", 3)
	harbor := whNewReceiver(t, "harbor", 0)
	var wAll, wTeam whWebhook
	admJSON(t, b, &wAll, "webhook", "create", "all", all.url())
	admJSON(t, b, &wTeam, "webhook", "create", "team-pushes", harbor.url(), "--project", "team", "--format", "harbor", "--events", "artifact.pushed", "--repos", "team/app")
	if !strings.HasPrefix(wAll.Secret, "whsec_") || wTeam.Secret == "" {
		t.Fatalf("secrets not shown at creation: %+v %+v", wAll, wTeam)
	}
	all.secret, harbor.secret = wAll.Secret, wTeam.Secret
	if out := admOK(t, b, "", "webhook", "show", strconv.FormatInt(wAll.ID, 10), "--json"); strings.Contains(out, "whsec_") {
		t.Fatalf("the secret is shown after creation: %s", out)
	}
	// Bad input is refused with a reason.
	if msg := admFails(t, b, nil, "webhook", "create", "bad", "ftp://x.example/"); !strings.Contains(msg, "http or https") {
		t.Fatalf("ftp target: %s", msg)
	}
	if msg := admFails(t, b, nil, "webhook", "create", "bad", all.url(), "--events", "artifact.copied"); !strings.Contains(msg, "artifact.copied") {
		t.Fatalf("unknown event: %s", msg)
	}

	start := time.Now()
	d1 := whPush(t, env, b, "team/app", "v1", 1)
	whPush(t, env, b, "team/app", "v2", 2)
	whPush(t, env, b, "team/web", "v1", 3)
	d4 := whPush(t, env, b, "team/app", "v3", 4)
	// Delete a tag, then a manifest (with its tag), over /v2/.
	for _, ref := range []string{"v1", d4} {
		res, body := clHTTP(t, http.MethodDelete, b.URL("/v2/team/app/manifests/"+ref), map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+admPassword))}, nil)
		if res.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE %s: %d %s", ref, res.StatusCode, body)
		}
	}
	got := all.waitFor(6, 60*time.Second)
	t.Logf("6 events delivered through 3 receiver failures in %v", time.Since(start).Round(time.Millisecond))
	per := whCheckOrder(t, got)
	var types []string
	for _, c := range per["team/app"] {
		types = append(types, c.Type)
	}
	if want := []string{"io.berth.artifact.pushed", "io.berth.artifact.pushed", "io.berth.artifact.pushed", "io.berth.tag.deleted", "io.berth.artifact.deleted"}; !slices.Equal(types, want) {
		t.Fatalf("team/app events %v, want %v", types, want)
	}
	if c := per["team/app"][0]; c.Digest != d1 || !slices.Equal(c.Tags, []string{"v1"}) || c.Actor != "admin" {
		t.Fatalf("first push event %+v, want digest %s, tag v1, actor admin", c, d1)
	}
	if c := per["team/app"][4]; c.Digest != d4 || !slices.Equal(c.Tags, []string{"v3"}) {
		t.Fatalf("manifest delete event %+v", c)
	}
	if len(per["team/web"]) != 1 {
		t.Fatalf("team/web: %+v", per["team/web"])
	}

	// The project's Harbor webhook: only pushes to team/app, in Harbor's shape.
	hb := harbor.waitFor(3, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	if got, _, _, _, _ := harbor.snapshot(); len(got) != 3 {
		t.Fatalf("harbor webhook got %d messages, want the 3 pushes to team/app", len(got))
	}
	ed := hb[0].body["event_data"].(map[string]any)
	res0 := ed["resources"].([]any)[0].(map[string]any)
	if hb[0].body["type"] != "PUSH_ARTIFACT" || hb[0].body["operator"] != "admin" || res0["resource_url"] != "registry.example:5000/team/app:v1" ||
		res0["digest"] != d1 || ed["repository"].(map[string]any)["repo_type"] != "private" {
		t.Fatalf("harbor payload %v", hb[0].body)
	}

	// A receiver verifying signatures refuses a tampered payload or a wrong secret.
	_, _, failed, dups, _ := all.snapshot()
	raw := all.raw
	if _, err := events.Verify(wAll.Secret, raw.header, raw.body, 5*time.Minute, time.Now()); err != nil {
		t.Fatalf("the original message does not verify: %v", err)
	}
	tampered := []byte(strings.Replace(string(raw.body), `"type":"io.berth.`, `"type":"io.evil.`, 1))
	if string(tampered) == string(raw.body) {
		t.Fatalf("nothing tampered in %s", raw.body)
	}
	if _, err := events.Verify(wAll.Secret, raw.header, tampered, 5*time.Minute, time.Now()); !errors.Is(err, events.ErrBadSignature) {
		t.Fatalf("tampered payload: %v, want ErrBadSignature", err)
	}
	if _, err := events.Verify(wTeam.Secret, raw.header, raw.body, 5*time.Minute, time.Now()); !errors.Is(err, events.ErrBadSignature) {
		t.Fatalf("another webhook's secret: %v", err)
	}
	if failed != 3 || dups != 0 {
		t.Fatalf("receiver saw %d failures and %d duplicates, want 3 and 0", failed, dups)
	}

	// The history shows the failed attempts with their status codes (once the last
	// answers are recorded).
	whWait(t, 10*time.Second, "every delivery recorded", func() bool {
		var pending []whDelivery
		admJSON(t, b, &pending, "webhook", "deliveries", strconv.FormatInt(wAll.ID, 10), "--state", "pending")
		return len(pending) == 0
	})
	var ds []whDelivery
	admJSON(t, b, &ds, "webhook", "deliveries", strconv.FormatInt(wAll.ID, 10))
	if len(ds) != 6 {
		t.Fatalf("%d deliveries listed, want 6", len(ds))
	}
	first := ds[len(ds)-1]
	busy := 0
	for _, d := range ds { // the receiver's 3 refusals, wherever they fell, are in the history
		var full whDelivery
		admJSON(t, b, &full, "webhook", "delivery", strconv.FormatInt(wAll.ID, 10), strconv.FormatInt(d.ID, 10))
		if full.State != "delivered" || len(full.History) != full.Attempts || full.History[len(full.History)-1].Status != 204 {
			t.Fatalf("delivery %+v: want delivered, its last attempt 204", full)
		}
		for _, h := range full.History[:len(full.History)-1] {
			if h.Status != 503 || !strings.Contains(h.Error, "receiver busy") {
				t.Fatalf("delivery %d: a failed attempt recorded as %+v", d.ID, h)
			}
			busy++
		}
	}
	if busy != 3 {
		t.Fatalf("%d failed attempts in the history, want 3", busy)
	}
	out := admOK(t, b, "", "webhook", "deliveries", strconv.FormatInt(wAll.ID, 10))
	if !strings.Contains(out, "delivered") || !strings.Contains(out, "artifact.pushed") {
		t.Fatalf("deliveries table:\n%s", out)
	}

	// Replay: the same message (same webhook-id) again; the application drops the copy.
	admOK(t, b, "", "webhook", "replay", strconv.FormatInt(wAll.ID, 10), strconv.FormatInt(first.ID, 10))
	whWait(t, 20*time.Second, "the replay", func() bool { _, _, _, d, _ := all.snapshot(); return d == 1 })

	// Receiver down; events committed meanwhile and across a kill -9 of berth are
	// delivered once both are back, still once each and in order.
	all.down()
	whPush(t, env, b, "team/app", "v5", 5)
	whWait(t, 20*time.Second, "a failed attempt while the receiver is down", func() bool {
		var ds []whDelivery
		admJSON(t, b, &ds, "webhook", "deliveries", strconv.FormatInt(wAll.ID, 10), "--state", "pending")
		return len(ds) == 1 && ds[0].Attempts >= 1 && ds[0].LastStatus == 0
	})
	whPush(t, env, b, "team/web", "v6", 6)
	b.Kill() // SIGKILL: leases, outbox rows and pending deliveries are all the database has
	b.start()
	run(t, env, "crane", "auth", "login", b.Addr, "-u", "admin", "-p", admPassword) // a new port
	whPush(t, env, b, "team/app", "v7", 7)
	all.up()
	got = all.waitFor(9, 90*time.Second)
	per = whCheckOrder(t, got)
	if n := len(per["team/app"]); n != 7 {
		t.Fatalf("team/app: %d events after the restart, want 7", n)
	}
	if n := len(per["team/web"]); n != 2 {
		t.Fatalf("team/web: %d events after the restart, want 2", n)
	}
	time.Sleep(time.Second)
	if got, _, _, _, bad := all.snapshot(); len(got) != 9 || len(bad) != 0 {
		t.Fatalf("%d messages (want 9), refused %v", len(got), bad)
	}

	// Latency from push to delivery (a healthy receiver), and the metrics.
	var lat []time.Duration
	for i := 0; i < 10; i++ {
		t0 := time.Now()
		whPush(t, env, b, "team/lat", fmt.Sprint(i), uint64(100+i))
		// The push ends when crane's PUT returns; the event was committed before.
		m := all.waitFor(10+i, 30*time.Second)
		lat = append(lat, m[len(m)-1].received.Sub(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("push → delivery (crane push included), 10 pushes: median %v, max %v", lat[4].Round(time.Millisecond), lat[9].Round(time.Millisecond))
	whWait(t, 10*time.Second, "no delivery pending", func() bool {
		return strings.Contains(qtMetrics(t, b), "berth_webhook_deliveries_pending 0\n")
	})
	metrics := qtMetrics(t, b)
	for _, re := range []string{`berth_webhook_attempts_total\{result="delivered"\} [1-9]`, `berth_webhook_delivery_latency_seconds_count [1-9]`} {
		if !regexp.MustCompile(re).MatchString(metrics) {
			t.Errorf("metrics lack %s", re)
		}
	}

	// Ping and delete.
	admOK(t, b, "", "webhook", "ping", strconv.FormatInt(wTeam.ID, 10))
	whWait(t, 20*time.Second, "the ping", func() bool {
		got, _, _, _, _ := harbor.snapshot()
		return len(got) > 0 && got[len(got)-1].body["type"] == "PING"
	})
	admOK(t, b, "", "webhook", "delete", strconv.FormatInt(wTeam.ID, 10))
	if out := admOK(t, b, "", "webhook", "list"); strings.Contains(out, "team-pushes") || !strings.Contains(out, "all") {
		t.Fatalf("list after delete:\n%s", out)
	}
}

func whWait(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWebhooksReplicas: two replicas on one PostgreSQL database share the delivery work:
// pushes through either reach the receiver once each, in sequence per repository, and
// when the replica holding the lanes is killed (kill -9) while the receiver is down, the
// other takes them over once their leases run out and delivers everything.
func TestWebhooksReplicas(t *testing.T) {
	requireTool(t, "crane")
	env := toolEnv(t)
	key := filepath.Join(t.TempDir(), "webhook-secrets.key") // one key for both replicas
	cfg := "database:\n  driver: postgres\n  dsn: " + postgresDSN(t) + "\nauth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword +
		"\nevents:\n  webhooks:\n    backoff: 200ms\n    maxBackoff: 1s\n    secretKeyFile: " + key + "\n"
	a := startBerth(t, BerthOptions{Config: cfg})
	bb := startBerth(t, BerthOptions{Config: cfg})
	admOK(t, a, "", "project", "create", "team")
	for _, b := range []*Berth{a, bb} {
		run(t, env, "crane", "auth", "login", b.Addr, "-u", "admin", "-p", admPassword)
	}
	r := whNewReceiver(t, "cloudevents", 2)
	var w whWebhook
	admJSON(t, bb, &w, "webhook", "create", "all", r.url()) // created on B, sealed with the shared key
	r.secret = w.Secret

	seed := uint64(0)
	push := func(b *Berth, repo string) {
		seed++
		whPush(t, env, b, repo, fmt.Sprint("t", seed), 500+seed)
	}
	for i := 0; i < 3; i++ {
		push(a, "team/app")
		push(bb, "team/app")
		push(bb, "team/web")
	}
	got := r.waitFor(9, 60*time.Second)
	whCheckOrder(t, got)

	// Receiver down, more pushes through both; kill A, bring the receiver back: B
	// delivers all, once each, in order.
	r.down()
	push(a, "team/app")
	push(bb, "team/app")
	push(a, "team/web")
	time.Sleep(time.Second) // attempts fail on whichever replica holds the lanes
	a.Kill()
	r.up()
	got = r.waitFor(12, 90*time.Second)
	per := whCheckOrder(t, got)
	if len(per["team/app"]) != 8 || len(per["team/web"]) != 4 {
		t.Fatalf("after the kill: team/app %d, team/web %d events, want 8 and 4", len(per["team/app"]), len(per["team/web"]))
	}
	time.Sleep(time.Second)
	if got, reqs, _, _, bad := r.snapshot(); len(got) != 12 || len(bad) != 0 {
		t.Fatalf("%d messages in %d requests (want 12), refused %v", len(got), reqs, bad)
	}
}
