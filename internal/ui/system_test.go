package ui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/session"
)

type fakeSystem struct{ failures []JobFailure }

func (fakeSystem) Jobs(context.Context) ([]JobKind, error) {
	return []JobKind{{Kind: "gc.manifest", States: map[string]int64{"queued": 3}, Lag: 2 * time.Second}}, nil
}

func (fakeSystem) GC(context.Context) (GCTotals, error) {
	return GCTotals{Manifests: 4, Blobs: 2, Bytes: 3 << 20, Enabled: true, ReviewAfter: 30 * time.Minute, Workers: 2}, nil
}

func (f fakeSystem) Failures(_ context.Context, n int) ([]JobFailure, error) {
	return f.failures[:min(n, len(f.failures))], nil
}

// noPolicies is an admin API that knows no signature policies.
type noPolicies struct{}

func (noPolicies) ServeAs(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	w.WriteHeader(http.StatusNotFound)
}

// The system page shows GC's settings, totals, queues and failed tasks to a system
// administrator (what `berth gc status` prints), and nothing to anyone else.
func TestSystemPageGCStatus(t *testing.T) {
	u, err := New(Deps{API: noPolicies{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		System: fakeSystem{failures: []JobFailure{{Kind: "gc.blob", Key: "sha256:feed", Attempts: 10, LastError: "storage <down>"}}}})
	if err != nil {
		t.Fatal(err)
	}
	page := func(admin bool) (int, string) {
		w := httptest.NewRecorder()
		v := &visit{s: &session.Session{User: "root", CSRF: "x"}, p: &auth.Principal{Kind: "user", Name: "root", Admin: admin}}
		if err := u.system(w, httptest.NewRequest("GET", "/system", nil), v); err != nil {
			return err.(*statusError).status, err.Error()
		}
		return w.Code, w.Body.String()
	}
	code, body := page(true)
	if code != http.StatusOK {
		t.Fatalf("system page: %d %s", code, body)
	}
	for _, want := range []string{
		`<tr data-kind="gc.manifest"><td>gc.manifest</td><td>3</td>`,
		`<dd id="gc-workers">2 (gc.enabled)</dd>`, "30m0s (gc.reviewAfter)", "3.0 MiB", "4 manifests, 0 blob links, 2 blobs",
		`<tr data-kind="gc.blob"><td>gc.blob</td><td><code>sha256:feed</code></td><td>10</td><td>storage &lt;down&gt;</td></tr>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("system page lacks %q:\n%s", want, body)
		}
	}
	if code, _ := page(false); code != http.StatusForbidden {
		t.Errorf("a user who is not a system administrator: %d, want 403", code)
	}
}
