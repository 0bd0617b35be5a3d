package tagrules

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

func TestService(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			m := b.Open(t)
			svc := New(NewStore(m.DB()), jobs.NewStore(m.DB()), m, Options{Mirrored: func(p string) bool { return p == "mirror" }}, nil, quiet)
			t.Run("immutable", func(t *testing.T) { testImmutable(t, m, svc) })
			t.Run("retention", func(t *testing.T) { testRetention(t, m, svc) })
		})
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func put(t *testing.T, m *meta.Store, repo, digest string, fixed []string, tags ...string) error {
	t.Helper()
	return m.PutManifest(context.Background(), meta.Manifest{Repository: repo, Digest: digest,
		MediaType: "application/vnd.oci.image.manifest.v1+json", Payload: []byte(`{"d":"` + digest + `"}`), FixedTags: fixed}, tags)
}

func testImmutable(t *testing.T, m *meta.Store, svc *Service) {
	ctx := context.Background()
	r, err := svc.AddImmutable(ctx, ImmutableRule{Project: "im", Tags: "v*"})
	if err != nil || r.ID == 0 || r.Repositories != "**" {
		t.Fatalf("add rule: %+v %v", r, err)
	}
	if _, err := svc.AddImmutable(ctx, ImmutableRule{Project: "im", Tags: "v*", Repositories: "**"}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate rule: %v, want ErrExists", err)
	}
	var inv *InvalidError
	if _, err := svc.AddImmutable(ctx, ImmutableRule{Project: "im", Tags: "v["}); !errors.As(err, &inv) {
		t.Errorf("invalid pattern: %v, want InvalidError", err)
	}
	if _, err := svc.AddImmutable(ctx, ImmutableRule{Project: "mirror", Tags: "*"}); !errors.Is(err, ErrMirrored) {
		t.Errorf("mirrored project: %v, want ErrMirrored", err)
	}
	got, err := svc.Immutable(ctx, "im/app", []string{"v1", "latest"})
	if err != nil || len(got) != 1 || !strings.Contains(got["v1"], "tags v*") {
		t.Errorf("Immutable = %v %v, want v1 only", got, err)
	}
	if got, _ := svc.Immutable(ctx, "other/app", []string{"v1"}); len(got) != 0 {
		t.Errorf("another project's tag is protected: %v", got)
	}

	// The store refuses moving a fixed tag, allows creating it and pushing it again.
	if err := put(t, m, "im/app", "sha256:a1", []string{"v1"}, "v1"); err != nil {
		t.Fatalf("create fixed tag: %v", err)
	}
	if err := put(t, m, "im/app", "sha256:a1", []string{"v1"}, "v1"); err != nil {
		t.Fatalf("push fixed tag again, same manifest: %v", err)
	}
	var fixed *meta.FixedTagError
	if err := put(t, m, "im/app", "sha256:a2", []string{"v1"}, "v1", "latest"); !errors.As(err, &fixed) || fixed.Digest != "sha256:a1" {
		t.Fatalf("move fixed tag: %v, want FixedTagError naming sha256:a1", err)
	}
	if tags, _ := m.TagsOf(ctx, "im/app", "sha256:a2"); len(tags) != 0 {
		t.Errorf("the refused put left tags %v (latest must roll back with it)", tags)
	}

	// Racing pushes creating the same fixed tag: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = put(t, m, "im/app", "sha256:r"+string(rune('0'+i)), []string{"v9"}, "v9") })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.As(err, &fixed):
			t.Errorf("racing put: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d racing pushes created immutable tag v9, want 1", won)
	}

	if err := svc.DeleteImmutable(ctx, "im", r.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteImmutable(ctx, "im", r.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

func testRetention(t *testing.T, m *meta.Store, svc *Service) {
	ctx := context.Background()
	if _, err := svc.Run(ctx, "rt", true, "me"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("run without a policy: %v", err)
	}
	// Pushed in this order, a millisecond apart: old, v1, new.
	for _, tag := range []string{"old", "v1", "new"} {
		if err := put(t, m, "rt/app", "sha256:"+tag, nil, tag); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // push times are milliseconds
	}
	if _, err := svc.AddImmutable(ctx, ImmutableRule{Project: "rt", Tags: "v*"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutPolicy(ctx, "rt", Policy{Rules: []Rule{{Keep: KeepLatestPushed}}}); err == nil {
		t.Fatal("an invalid policy was stored")
	}
	sp, err := svc.PutPolicy(ctx, "rt", Policy{Rules: []Rule{{Keep: KeepLatestPushed, Count: 1}}, Schedule: Duration(time.Hour)})
	if err != nil || sp.Project != "rt" || len(sp.Policy.Rules) != 1 {
		t.Fatalf("put policy: %+v %v", sp, err)
	}
	dry, err := svc.Run(ctx, "rt", true, "me")
	if err != nil || !slices.Equal(names(dry.Deleted), []string{"rt/app:old"}) {
		t.Fatalf("dry run deletes %v (%v), want rt/app:old", names(dry.Deleted), err)
	}
	if tags, _ := m.Tags(ctx, "rt/app", "", 10); len(tags) != 3 {
		t.Fatalf("a dry run deleted tags: left %v", tags)
	}
	// The scheduled job runs the policy for real.
	queue := jobs.NewStore(m.DB())
	if err := queue.Enqueue(ctx, jobs.Task{Kind: KindRetention, Key: "rt"}); err != nil {
		t.Fatal(err)
	}
	runner := jobs.NewRunner(queue, jobs.Options{Worker: "test", Poll: 10 * time.Millisecond}, nil, quiet)
	svc.Register(runner)
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := runner.Drain(dctx, KindRetention); err != nil {
		t.Fatal(err)
	}
	if tags, _ := m.Tags(ctx, "rt/app", "", 10); !slices.Equal(tags, []string{"new", "v1"}) {
		t.Errorf("after the run tags are %v, want new and v1 (immutable)", tags)
	}
	sp, err = svc.Policy(ctx, "rt")
	if err != nil || sp.LastRunAt.IsZero() || sp.LastResult != "deleted 1 of 3 tags in scope" {
		t.Errorf("last run %v %q (%v)", sp.LastRunAt, sp.LastResult, err)
	}
	audit, err := m.Audit(ctx, meta.AuditFilter{Action: "retention.delete"})
	if err != nil || len(audit) != 1 || audit[0].Resource != "rt/app:old" {
		t.Errorf("audit %+v %v, want one retention.delete of rt/app:old", audit, err)
	}
	// A tag pushed again after the decision is newer than it and stays.
	if ok, err := NewStore(m.DB()).DeleteTag(ctx, "rt/app", "new", "sha256:other"); ok || err != nil {
		t.Errorf("DeleteTag of a moved tag = %v %v, want false", ok, err)
	}
	if err := svc.DeletePolicy(ctx, "rt"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Policy(ctx, "rt"); !errors.Is(err, ErrNotFound) {
		t.Errorf("policy after delete: %v", err)
	}
}

// TestDeleteTagIsAnEvent: a retention deletion reaches meta's change hook inside its
// transaction (the events outbox), with the actor of the run; a refused one does not.
func TestDeleteTagIsAnEvent(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			m := b.Open(t)
			var got []meta.Change
			m.SetChangeHook(func(ctx context.Context, tx *sql.Tx, c meta.Change) error {
				got = append(got, c)
				return nil
			})
			if err := put(t, m, "team/app", "sha256:r1", nil, "old"); err != nil {
				t.Fatal(err)
			}
			got = nil
			st := NewStore(m.DB())
			ctx := meta.WithActor(context.Background(), "retention")
			if ok, err := st.DeleteTag(ctx, "team/app", "old", "sha256:other"); err != nil || ok {
				t.Fatalf("delete with a stale digest: %v %v", ok, err)
			}
			if ok, err := st.DeleteTag(ctx, "team/app", "old", "sha256:r1"); err != nil || !ok {
				t.Fatalf("delete: %v %v", ok, err)
			}
			if len(got) != 1 || got[0].Kind != meta.TagDeleted || got[0].Repository != "team/app" || got[0].Digest != "sha256:r1" ||
				!slices.Equal(got[0].Tags, []string{"old"}) || got[0].Actor != "retention" {
				t.Fatalf("changes %+v", got)
			}
		})
	}
}
