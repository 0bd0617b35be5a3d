package auth

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/berth-registry/berth/internal/meta"
)

// TestOwnerlessRepositories: a project without a row but with repositories under its
// name (pushed while authentication was off) is never "created by the first push": it
// is adopted for the system administrators, and no ordinary user gains any right on it.
func TestOwnerlessRepositories(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.m.CommitBlob(ctx, "legacy/app", meta.Blob{Digest: "sha256:" + fortyHex, Size: 1, Location: "x"}, ""); err != nil {
		t.Fatal(err)
	}
	s, closeS := w.service(t, Options{ProjectCreation: "everyone"})
	for _, p := range []*Principal{user("olga"), user("dave"), Anonymous, robot("robot$team+all", perm("team", all...))} {
		if got, err := s.Allowed(ctx, p, "legacy/app", all); err != nil || len(got) != 0 {
			t.Errorf("%s on ownerless legacy/app: %v %v, want nothing", p.Name, got, err)
		}
		if got, _ := s.Allowed(ctx, p, "legacy/new", all); len(got) != 0 {
			t.Errorf("%s on a new name in ownerless project legacy: %v, want nothing", p.Name, got)
		}
	}
	pr, err := w.m.ProjectByName(ctx, "legacy")
	if err != nil || pr.Public {
		t.Fatalf("project legacy after the first look: %+v %v, want adopted and private", pr, err)
	}
	if members, _ := w.m.Members(ctx, "legacy"); len(members) != 0 {
		t.Errorf("adopted project has members %+v", members)
	}
	if got, _ := s.Allowed(ctx, &Principal{Kind: "user", Name: "root", Admin: true}, "legacy/app", all); !slices.Equal(got, all) {
		t.Errorf("system admin on adopted legacy/app: %v", got)
	}
	// A truly new project is still created by its first push.
	if got, _ := s.Allowed(ctx, user("olga"), "brandnew/app", all); !slices.Equal(got, all) {
		t.Errorf("olga on brandnew/app (nothing stored): %v, want all", got)
	}
	closeS()
	entries, err := w.m.Audit(ctx, meta.AuditFilter{Action: "project.adopt"})
	if err != nil || len(entries) != 1 || entries[0].Resource != "legacy" {
		t.Errorf("project.adopt audit entries: %+v %v", entries, err)
	}
}

// TestExplicitProjects: beside a default upstream no push creates a project, whatever
// projectCreation says; existing projects work as before.
func TestExplicitProjects(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	s, _ := w.service(t, Options{ProjectCreation: "everyone", ExplicitProjects: true})
	if got, _ := s.Allowed(ctx, user("olga"), "library/nginx", all); len(got) != 0 {
		t.Errorf("olga on library/nginx beside a default upstream: %v, want nothing", got)
	}
	if got, _ := s.Allowed(ctx, user("dave"), "team/app", all); !slices.Equal(got, []Action{Pull, Push}) {
		t.Errorf("developer dave on team/app: %v", got)
	}
}

// TestEnsureProjectRace: of two users racing to create a project by pushing, the loser
// must not push into the winner's project.
func TestEnsureProjectRace(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	s, _ := w.service(t, Options{ProjectCreation: "everyone"})
	// Both were authorized while the project did not exist.
	for _, name := range []string{"olga", "dave"} {
		if got, _ := s.Allowed(ctx, user(name), "race/app", []Action{Push}); len(got) != 1 {
			t.Fatalf("%s before the race: %v", name, got)
		}
	}
	if err := s.EnsureProject(ctx, user("olga"), "race/app"); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureProject(ctx, user("dave"), "race/app"); !errors.Is(err, ErrProjectTaken) {
		t.Errorf("the loser's EnsureProject = %v, want ErrProjectTaken", err)
	}
	if err := s.EnsureProject(ctx, user("olga"), "race/other"); err != nil {
		t.Errorf("the winner's second push: %v", err)
	}
}

const fortyHex = "0000000000000000000000000000000000000000000000000000000000000001"
