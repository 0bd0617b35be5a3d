package events

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/events/eventstest"
)

func TestSignVerify(t *testing.T) {
	secret := NewSecret()
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"type":"io.berth.artifact.pushed"}`)
	sig, err := Sign(secret, "evt_1", now, body)
	if err != nil || !strings.HasPrefix(sig, "v1,") {
		t.Fatalf("Sign = %q, %v", sig, err)
	}
	headers := func(id, ts, sig string) http.Header {
		h := http.Header{}
		if id != "" {
			h.Set(HeaderID, id)
		}
		if ts != "" {
			h.Set(HeaderTimestamp, ts)
		}
		if sig != "" {
			h.Set(HeaderSignature, sig)
		}
		return h
	}
	ts := "1800000000"
	for _, tc := range []struct {
		name   string
		secret string
		h      http.Header
		body   []byte
		at     time.Time
		want   error
	}{
		{"valid", secret, headers("evt_1", ts, sig), body, now, nil},
		{"valid among several signatures", secret, headers("evt_1", ts, "v1,AAAA "+sig+" v2,zzz"), body, now.Add(4 * time.Minute), nil},
		{"tampered body", secret, headers("evt_1", ts, sig), []byte(`{"type":"io.berth.artifact.deleted"}`), now, ErrBadSignature},
		{"other id", secret, headers("evt_2", ts, sig), body, now, ErrBadSignature},
		{"other timestamp", secret, headers("evt_1", "1800000001", sig), body, now, ErrBadSignature},
		{"wrong secret", NewSecret(), headers("evt_1", ts, sig), body, now, ErrBadSignature},
		{"stale", secret, headers("evt_1", ts, sig), body, now.Add(6 * time.Minute), ErrStale},
		{"from the future", secret, headers("evt_1", ts, sig), body, now.Add(-6 * time.Minute), ErrStale},
		{"no signature", secret, headers("evt_1", ts, ""), body, now, ErrNoSignature},
		{"bad timestamp", secret, headers("evt_1", "soon", sig), body, now, ErrNoSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := Verify(tc.secret, tc.h, tc.body, 5*time.Minute, tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %q, %v; want %v", id, err, tc.want)
			}
			if err == nil && id != "evt_1" {
				t.Fatalf("id %q", id)
			}
		})
	}
	// A raw (non-whsec_) secret is its own key; the Standard Webhooks test vector.
	const vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	got, err := Sign(vectorSecret, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil || got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("Standard Webhooks vector: %q %v", got, err)
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		glob, name string
		want       bool
	}{
		{"team/*", "team/app", true},
		{"team/*", "team/a/b", false},
		{"team/**", "team/a/b", true},
		{"team/**", "team", true},
		{"**/prod/*", "x/y/prod/app", true},
		{"*/app", "team/app", true},
		{"team/app-[0-9]", "team/app-7", true},
		{"team/app", "team/apps", false},
	} {
		if got := GlobMatch(tc.glob, tc.name); got != tc.want {
			t.Errorf("GlobMatch(%q, %q) = %v, want %v", tc.glob, tc.name, got, tc.want)
		}
	}
}

func TestSubscriptionMatches(t *testing.T) {
	for _, tc := range []struct {
		name         string
		sub          Subscription
		typ, project string
		repo         string
		want         bool
	}{
		{"system-wide, all", Subscription{}, ArtifactPushed, "team", "team/app", true},
		{"project, other project", Subscription{Project: "other"}, ArtifactPushed, "team", "team/app", false},
		{"project", Subscription{Project: "team"}, TagDeleted, "team", "team/app", true},
		{"event filter out", Subscription{Events: []string{ArtifactDeleted}}, ArtifactPushed, "team", "team/app", false},
		{"event filter in", Subscription{Events: []string{ArtifactDeleted, ArtifactPushed}}, ArtifactPushed, "team", "team/app", true},
		{"repository filter out", Subscription{Repositories: []string{"team/web*"}}, ArtifactPushed, "team", "team/app", false},
		{"repository filter in", Subscription{Repositories: []string{"x/*", "team/a*"}}, ArtifactPushed, "team", "team/app", true},
		{"ping never fans out", Subscription{}, Ping, "", "", false},
	} {
		if got := tc.sub.matches(tc.typ, tc.project, tc.repo); got != tc.want {
			t.Errorf("%s: matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestEncode(t *testing.T) {
	// The schemas refuse what the formats refuse.
	for _, bad := range []struct{ format, body string }{
		{FormatCloudEvents, `{"specversion":"1.0","id":"x","type":"t"}`},
		{FormatCloudEvents, `{"specversion":"0.3","id":"x","type":"t","source":"s"}`},
		{FormatCloudEvents, `{"specversion":"1.0","id":"x","type":"t","source":"s","time":"yesterday"}`},
		{FormatCloudEvents, `{"specversion":"1.0","id":"x","type":"t","source":"s","Bad-Name":1}`},
		{FormatHarbor, `{"type":"PUSH_ARTIFACT","occur_at":1,"operator":"a","event_data":{"resources":[]}}`},
		{FormatHarbor, `{"type":"PUSH","occur_at":1,"operator":"a","event_data":{"repository":{"name":"a","namespace":"b","repo_full_name":"b/a","repo_type":"private"}}}`},
	} {
		if err := eventstest.Validate(bad.format, []byte(bad.body)); err == nil {
			t.Errorf("%s schema accepts %s", bad.format, bad.body)
		}
	}
	e := Event{ID: "evt_x", Type: ArtifactPushed, Time: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), Project: "team",
		Repository: "team/app", Sequence: 3, Digest: "sha256:abc", MediaType: "application/vnd.oci.image.manifest.v1+json",
		Tags: []string{"v1", "latest"}, Actor: "ci"}
	t.Run("cloudevents", func(t *testing.T) {
		b, err := encode(FormatCloudEvents, e, "https://reg.example", "", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := eventstest.Validate(FormatCloudEvents, b); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		var ce map[string]any
		if err := json.Unmarshal(b, &ce); err != nil {
			t.Fatal(err)
		}
		data := ce["data"].(map[string]any)
		if ce["type"] != "io.berth.artifact.pushed" || ce["subject"] != "team/app@sha256:abc" || data["sequence"] != 3.0 || data["digest"] != "sha256:abc" {
			t.Fatalf("cloud event %s", b)
		}
	})
	t.Run("harbor", func(t *testing.T) {
		b, err := encode(FormatHarbor, e, "", "reg.example:5000", "private")
		if err != nil {
			t.Fatal(err)
		}
		if err := eventstest.Validate(FormatHarbor, b); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		var h map[string]any
		if err := json.Unmarshal(b, &h); err != nil {
			t.Fatal(err)
		}
		data := h["event_data"].(map[string]any)
		res := data["resources"].([]any)
		repo := data["repository"].(map[string]any)
		if h["type"] != "PUSH_ARTIFACT" || h["operator"] != "ci" || h["occur_at"] != float64(e.Time.Unix()) || len(res) != 2 ||
			res[0].(map[string]any)["resource_url"] != "reg.example:5000/team/app:v1" || repo["namespace"] != "team" ||
			repo["name"] != "app" || repo["repo_full_name"] != "team/app" || repo["repo_type"] != "private" {
			t.Fatalf("harbor event %s", b)
		}
	})
}

func TestSealer(t *testing.T) {
	k := make([]byte, 32)
	s, err := NewSealer(k)
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal("whsec_secret")
	if strings.Contains(sealed, "secret") {
		t.Fatalf("sealed text shows the secret: %s", sealed)
	}
	if got, err := s.Open(sealed); err != nil || got != "whsec_secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	k2 := make([]byte, 32)
	k2[0] = 1
	other, _ := NewSealer(k2)
	if _, err := other.Open(sealed); err == nil {
		t.Fatal("another key opened the secret")
	}
	path := t.TempDir() + "/events.key"
	a, err := LoadKey(path, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadKey(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Open(a.Seal("x")); err != nil || got != "x" {
		t.Fatalf("key file reloaded: %q %v", got, err)
	}
}

func TestPrivateAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true}, {"::1", true}, {"10.1.2.3", true}, {"192.168.0.1", true}, {"172.16.0.1", true},
		{"169.254.169.254", true}, {"fe80::1", true}, {"100.64.0.1", true}, {"0.0.0.0", true}, {"::ffff:127.0.0.1", true},
		{"fd00::1", true}, {"8.8.8.8", false}, {"2001:4860:4860::8888", false},
	} {
		if got := privateAddr(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("privateAddr(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// TestGuardedDial: a project webhook whose name resolves to a private address is
// refused when dialled, not only when its URL is a literal address.
func TestGuardedDial(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	u := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) // a name (resolved at dial time)
	for _, tc := range []struct {
		name    string
		project string
		allow   bool
		ok      bool
	}{{"project", "team", false, false}, {"project allowed", "team", true, true}, {"system-wide", "", false, true}} {
		s := newSender(2*time.Second, tc.allow)
		a := s.send(context.Background(), Subscription{Project: tc.project, URL: u}, NewSecret(), "evt_1", []byte("{}"), time.Now)
		if tc.ok != (a.Status == 200) || (!tc.ok && !strings.Contains(a.Error, "may not reach")) {
			t.Errorf("%s: %+v", tc.name, a)
		}
	}
}

func TestValidate(t *testing.T) {
	s := New(nil, nil, Options{}, nil, nil)
	for _, tc := range []struct {
		name string
		sub  Subscription
		ok   bool
	}{
		{"minimal", Subscription{Name: "ci", URL: "https://hooks.example/berth"}, true},
		{"harbor with filters", Subscription{Name: "h", URL: "http://h.example", Format: "harbor", Events: []string{ArtifactPushed}, Repositories: []string{"team/**"}}, true},
		{"bad name", Subscription{Name: "Bad Name", URL: "https://h.example"}, false},
		{"no scheme", Subscription{Name: "a", URL: "h.example/x"}, false},
		{"ftp", Subscription{Name: "a", URL: "ftp://h.example/x"}, false},
		{"credentials", Subscription{Name: "a", URL: "https://u:p@h.example/x"}, false},
		{"unknown event", Subscription{Name: "a", URL: "https://h.example", Events: []string{"artifact.copied"}}, false},
		{"ping is not a filter", Subscription{Name: "a", URL: "https://h.example", Events: []string{Ping}}, false},
		{"bad glob", Subscription{Name: "a", URL: "https://h.example", Repositories: []string{"team/["}}, false},
		{"bad format", Subscription{Name: "a", URL: "https://h.example", Format: "xml"}, false},
		{"project to loopback", Subscription{Name: "a", Project: "team", URL: "http://127.0.0.1:9/x"}, false},
		{"project to metadata service", Subscription{Name: "a", Project: "team", URL: "http://169.254.169.254/"}, false},
		{"system-wide to loopback", Subscription{Name: "a", URL: "http://127.0.0.1:9/x"}, true},
	} {
		err := s.validate(&tc.sub)
		var inv *InvalidError
		if tc.ok != (err == nil) || (err != nil && !errors.As(err, &inv)) {
			t.Errorf("%s: validate = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	for _, sec := range []string{"short", "whsec_!!!"} {
		if err := checkSecret(sec); err == nil {
			t.Errorf("secret %q accepted", sec)
		}
	}
}
