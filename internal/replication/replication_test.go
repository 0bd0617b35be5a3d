package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

func TestValidate(t *testing.T) {
	ok := func() Rule {
		return Rule{Name: "dr", Direction: Push, Remote: Remote{URL: "https://dr.example:5000"}, Repositories: []string{"team/**"}}
	}
	for _, tc := range []struct {
		name string
		edit func(*Rule)
		want string // "" : valid
	}{
		{"minimal", func(*Rule) {}, ""},
		{"pull with schedule and prefix", func(r *Rule) {
			r.Direction, r.Schedule, r.DestinationPrefix = Pull, Duration(time.Hour), "hub/"
		}, ""},
		{"plain host", func(r *Rule) { r.Remote.URL = "registry.example:5000" }, ""},
		{"bad name", func(r *Rule) { r.Name = "No" }, "name"},
		{"bad direction", func(r *Rule) { r.Direction = "both" }, "direction"},
		{"ftp remote", func(r *Rule) { r.Remote.URL = "ftp://x" }, "scheme"},
		{"remote with path", func(r *Rule) { r.Remote.URL = "https://x.example/v2/" }, "host"},
		{"remote with credentials", func(r *Rule) { r.Remote.URL = "https://u:p@x.example" }, "host"},
		{"no repositories", func(r *Rule) { r.Repositories = nil }, "repositories"},
		{"bad glob", func(r *Rule) { r.Tags = []string{"v["} }, "glob"},
		{"prefix without slash", func(r *Rule) { r.DestinationPrefix = "hub" }, "destinationPrefix"},
		{"schedule too short", func(r *Rule) { r.Schedule = Duration(time.Millisecond) }, "schedule"},
		{"onPush on a pull rule", func(r *Rule) { r.Direction, r.OnPush = Pull, true }, "onPush"},
	} {
		r := ok()
		tc.edit(&r)
		err := r.validate()
		var inv *InvalidError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.As(err, &inv) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an InvalidError about %s", tc.name, err, tc.want)
		}
	}
}

func TestGlobs(t *testing.T) {
	for _, tc := range []struct {
		globs []string
		name  string
		want  bool
	}{
		{nil, "anything", true},
		{[]string{"team/**"}, "team/a/b", true},
		{[]string{"team/*"}, "team/a/b", false},
		{[]string{"v*"}, "v1.2", true},
		{[]string{"v*", "latest"}, "latest", true},
		{[]string{"v*"}, "dev", false},
	} {
		if got := anyMatch(tc.globs, tc.name); got != tc.want {
			t.Errorf("anyMatch(%v, %q) = %v", tc.globs, tc.name, got)
		}
	}
}

// TestStoreAndTrigger: rules, their sealed passwords, executions and the on-push
// trigger on SQLite and PostgreSQL.
func TestStoreAndTrigger(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			m := b.Open(t)
			sealer, _ := events.NewSealer(make([]byte, 32))
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			svc := New(m, sealer, nil, Options{Local: "127.0.0.1:1"}, nil, log)
			r, err := svc.Create(ctx, Rule{Name: "dr", Direction: Push, Remote: Remote{URL: "dr.example", Username: "u", Password: "hunter2-secret"},
				Repositories: []string{"team/**"}, Tags: []string{"v*"}, OnPush: true, Enabled: true, CreatedBy: "admin", Schedule: Duration(time.Hour)})
			if err != nil || r.ID == 0 || r.Remote.Password != "" {
				t.Fatalf("create: %+v %v", r, err)
			}
			if _, err := svc.Create(ctx, Rule{Name: "dr", Direction: Push, Remote: Remote{URL: "x"}, Repositories: []string{"a"}}); !errors.Is(err, meta.ErrExists) {
				t.Fatalf("duplicate: %v", err)
			}
			var spec, pw string
			_ = m.DB().QueryRow(ctx, `SELECT spec, password FROM replication_rules WHERE id = $1`, r.ID).Scan(&spec, &pw)
			if strings.Contains(spec, "hunter2") || strings.Contains(pw, "hunter2") {
				t.Fatal("the password is stored in the clear")
			}
			got, err := svc.Rule(ctx, r.ID)
			if err != nil || got.Remote.Password != "" || got.Remote.Username != "u" || !got.referrers() {
				t.Fatalf("rule: %+v %v", got, err)
			}
			// The schedule is a job due after the interval.
			task, err := jobs.NewStore(m.DB()).Get(ctx, kindSchedule, "1")
			if err != nil || task.Due.Before(time.Now().Add(50*time.Minute)) {
				t.Fatalf("schedule task %+v %v", task, err)
			}

			// On push: a matching tagged push queues one task per matching tag; a
			// referrer pushed by digest queues its subject; other repositories nothing.
			consume := func(e events.Event) {
				if err := m.DB().InTx(ctx, func(tx *sql.Tx) error { return svc.Consume(ctx, tx, e) }); err != nil {
					t.Fatal(err)
				}
			}
			consume(events.Event{Type: events.ArtifactPushed, Repository: "team/app", Digest: "sha256:a", Tags: []string{"v1", "latest"}})
			consume(events.Event{Type: events.ArtifactPushed, Repository: "team/app", Digest: "sha256:s", Subject: "sha256:a"})
			consume(events.Event{Type: events.ArtifactPushed, Repository: "other/app", Digest: "sha256:b", Tags: []string{"v1"}})
			consume(events.Event{Type: events.TagDeleted, Repository: "team/app", Digest: "sha256:a", Tags: []string{"v1"}})
			var keys []string
			rows, err := m.DB().Query(ctx, `SELECT dedupe_key FROM jobs WHERE kind = $1 ORDER BY dedupe_key`, kindPush)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var k string
				_ = rows.Scan(&k)
				keys = append(keys, k)
			}
			rows.Close()
			if strings.Join(keys, ",") != "1 team/app:v1,1 team/app@sha256:a" {
				t.Fatalf("queued %v", keys)
			}
			// Deletes: only rules with propagateDeletes repeat them (this one has none yet).
			consume(events.Event{Type: events.TagDeleted, Repository: "team/app", Digest: "sha256:a", Tags: []string{"v1"}})
			del, err := svc.Create(ctx, Rule{Name: "mirror-deletes", Direction: Push, Remote: Remote{URL: "dr.example"}, Repositories: []string{"team/*"},
				Tags: []string{"v*"}, PropagateDeletes: true, Enabled: true, CreatedBy: "admin"})
			if err != nil {
				t.Fatal(err)
			}
			consume(events.Event{Type: events.TagDeleted, Repository: "team/app", Digest: "sha256:a", Tags: []string{"v1"}})
			consume(events.Event{Type: events.TagDeleted, Repository: "team/app", Digest: "sha256:a", Tags: []string{"dev"}})
			consume(events.Event{Type: events.ArtifactDeleted, Repository: "team/app", Digest: "sha256:a", Tags: []string{"v1"}})
			var dkeys []string
			rows, err = m.DB().Query(ctx, `SELECT dedupe_key FROM jobs WHERE kind = $1 ORDER BY dedupe_key`, kindDelete)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var k string
				_ = rows.Scan(&k)
				dkeys = append(dkeys, k)
			}
			rows.Close()
			want := fmt.Sprintf("%d team/app:v1,%d team/app@sha256:a", del.ID, del.ID)
			if strings.Join(dkeys, ",") != want {
				t.Fatalf("deletes queued %v, want %s", dkeys, want)
			}
			if _, err := svc.Create(ctx, Rule{Name: "pull-deletes", Direction: Pull, Remote: Remote{URL: "x"}, Repositories: []string{"a"}, PropagateDeletes: true}); err == nil {
				t.Fatal("propagateDeletes accepted on a pull rule")
			}
			if err := svc.Delete(ctx, del.ID); err != nil {
				t.Fatal(err)
			}

			// A disabled rule queues nothing.
			if _, err := svc.SetEnabled(ctx, r.ID, false); err != nil {
				t.Fatal(err)
			}
			consume(events.Event{Type: events.ArtifactPushed, Repository: "team/new", Digest: "sha256:c", Tags: []string{"v2"}})
			var n int
			_ = m.DB().QueryRow(ctx, `SELECT COUNT(*) FROM jobs WHERE kind = $1`, kindPush).Scan(&n)
			if n != 2 {
				t.Fatalf("a disabled rule queued work: %d tasks", n)
			}

			// Executions and items.
			id, err := svc.store.startExecution(ctx, r.ID, "manual")
			if err != nil {
				t.Fatal(err)
			}
			_ = svc.store.addItem(ctx, id, Item{Source: "a", Destination: "b", Digest: "sha256:a", State: Succeeded, Bytes: 10, At: time.Now()})
			_ = svc.store.finishExecution(ctx, Execution{ID: id, State: Succeeded, Copied: 1, Bytes: 10})
			ex, err := svc.Execution(ctx, id)
			if err != nil || ex.State != Succeeded || len(ex.Items) != 1 || ex.Items[0].Digest != "sha256:a" {
				t.Fatalf("execution %+v %v", ex, err)
			}
			if list, _ := svc.Executions(ctx, r.ID, 10); len(list) != 1 {
				t.Fatalf("executions %v", list)
			}
			// Pruning keeps what finished after the cut.
			if err := svc.store.prune(ctx, time.Now().Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
			if list, _ := svc.Executions(ctx, r.ID, 10); len(list) != 1 {
				t.Fatalf("a recent execution was pruned: %v", list)
			}
			if err := svc.store.prune(ctx, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if list, _ := svc.Executions(ctx, r.ID, 10); len(list) != 0 {
				t.Fatalf("an old execution was kept: %v", list)
			}
			id, _ = svc.store.startExecution(ctx, r.ID, "manual")
			if err := svc.Delete(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Execution(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("execution of a deleted rule: %v", err)
			}
		})
	}
}

func TestBatchEnd(t *testing.T) {
	var arts []artifact
	for i := 0; i < 250; i++ {
		arts = append(arts, artifact{repo: fmt.Sprintf("r%03d", i/2), ref: fmt.Sprint(":", i)})
	}
	// 125 repositories of 2 artifacts: batches of 100 repositories (200 artifacts), then 25.
	if got := batchEnd(arts, 0); got != 200 {
		t.Fatalf("first batch ends at %d, want 200", got)
	}
	if got := batchEnd(arts, 200); got != 250 {
		t.Fatalf("second batch ends at %d, want 250", got)
	}
}
