package limits

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

type fixedCounts SessionCounts

func (f fixedCounts) Counts(context.Context, string, string) (SessionCounts, error) {
	return SessionCounts(f), nil
}

func TestSessionsAdmit(t *testing.T) {
	lim := SessionLimits{PerClient: 2, PerRepository: 3, PerProject: 4, BytesPerProject: 100, RetryAfter: 7 * time.Second}
	for _, tc := range []struct {
		name      string
		owner     string
		counts    SessionCounts
		lim       SessionLimits
		wantLimit string // "" admitted
	}{
		{"under every bound", "a:1.2.3.4", SessionCounts{1, 2, 3, 99}, lim, ""},
		{"client at its bound", "a:1.2.3.4", SessionCounts{2, 2, 3, 0}, lim, "perClient"},
		{"no owner: no client bound", "", SessionCounts{2, 2, 3, 0}, lim, ""},
		{"repository at its bound", "p:user:x", SessionCounts{0, 3, 3, 0}, lim, "perRepository"},
		{"project at its bound", "p:user:x", SessionCounts{0, 0, 4, 0}, lim, "perProject"},
		{"project bytes at their bound", "p:user:x", SessionCounts{0, 0, 0, 100}, lim, "bytesPerProject"},
		{"zero switches a bound off", "a:x", SessionCounts{50, 50, 50, 1 << 40}, SessionLimits{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewRefusals(nil, nil)
			err := NewSessions(tc.lim, fixedCounts(tc.counts), f).AdmitSession(context.Background(), tc.owner, "proj/app")
			if tc.wantLimit == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, errcode.TooManyRequests) || !strings.Contains(err.Error(), tc.wantLimit) {
				t.Fatalf("err %v, want TOOMANYREQUESTS naming %s", err, tc.wantLimit)
			}
			if got := RetryAfter(err); got != 7*time.Second {
				t.Fatalf("retry after %v", got)
			}
		})
	}
}

func TestSessionStoreCounts(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			m := b.Open(t)
			add := func(id, repo, owner string, size int64) {
				t.Helper()
				if err := m.CreateUpload(ctx, meta.Upload{ID: id, Repository: repo, Handle: "h" + id, Owner: owner}); err != nil {
					t.Fatal(err)
				}
				if size > 0 {
					if err := m.AdvanceUpload(ctx, meta.Upload{ID: id, Size: size}, 0); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i := range 3 {
				add(fmt.Sprint("a", i), "proj/app", "a:10.0.0.1", 10)
			}
			add("b0", "proj/other", "p:user:bob", 5)
			add("c0", "proj", "a:10.0.0.1", 0) // a repository named as its project
			add("d0", "projx/app", "a:10.0.0.1", 1000)
			s := NewSessionStore(m.DB())
			for _, tc := range []struct {
				owner, repo string
				want        SessionCounts
			}{
				{"a:10.0.0.1", "proj/app", SessionCounts{Client: 5, Repository: 3, Project: 5, ProjectBytes: 35}},
				{"p:user:bob", "proj/other", SessionCounts{Client: 1, Repository: 1, Project: 5, ProjectBytes: 35}},
				{"a:nobody", "new/repo", SessionCounts{}},
				{"a:nobody", "projx/app", SessionCounts{Repository: 1, Project: 1, ProjectBytes: 1000}},
			} {
				got, err := s.Counts(ctx, tc.owner, tc.repo)
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("Counts(%s, %s) = %+v, want %+v", tc.owner, tc.repo, got, tc.want)
				}
			}
			if err := m.DeleteUpload(ctx, "a0"); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Counts(ctx, "a:10.0.0.1", "proj/app"); got.Client != 4 || got.Repository != 2 {
				t.Errorf("after a delete: %+v", got)
			}
		})
	}
}
