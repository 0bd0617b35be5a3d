package metatest

import (
	"errors"
	"testing"

	"github.com/berth-registry/berth/internal/meta"
)

// testProjectOwnership: which projects own stored repositories, found by one index
// range per project (names under "<p>/" but not "<p>-x/" or "<p>x"), and a project that
// still has repositories cannot be deleted.
func testProjectOwnership(t *testing.T, s *meta.Store) {
	ctx := t.Context()
	for _, repo := range []string{"team/app", "team/sub/lib", "teams/x", "team-b/y", "solo", "docker.io/library/nginx", "owned/app"} {
		commit(t, s, repo, "content of "+repo)
	}
	if _, err := s.CreateProject(ctx, meta.Project{Name: "owned"}, "user:alice", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateProject(ctx, meta.Project{Name: "empty"}, "", ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		project string
		want    bool
	}{
		{"team", true}, {"teams", true}, {"team-b", true}, {"solo", true}, {"owned", true},
		{"tea", false}, {"empty", false}, {"sol", false}, {"library", false},
	} {
		got, err := s.HasRepositories(ctx, c.project)
		if err != nil || got != c.want {
			t.Errorf("HasRepositories(%q) = %v, %v; want %v", c.project, got, err, c.want)
		}
	}
	if ok, err := s.ProjectExists(ctx, "owned"); err != nil || !ok {
		t.Errorf("ProjectExists(owned) = %v, %v", ok, err)
	}
	if ok, err := s.ProjectExists(ctx, "team"); err != nil || ok {
		t.Errorf("ProjectExists(team) = %v, %v", ok, err)
	}
	got, err := s.UnownedProjects(ctx, func(p string) bool { return p == "docker.io" })
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "unowned projects", got, []string{"solo", "team-b", "team", "teams"})

	if err := s.DeleteProject(ctx, "owned"); !errors.Is(err, meta.ErrNotEmpty) {
		t.Errorf("DeleteProject(owned) with a repository = %v, want ErrNotEmpty", err)
	}
	if ok, _ := s.ProjectExists(ctx, "owned"); !ok {
		t.Error("the refused delete removed project owned")
	}
	if err := s.DeleteProject(ctx, "empty"); err != nil {
		t.Errorf("DeleteProject(empty) = %v", err)
	}
	if _, err := s.DeleteRepository(ctx, "owned/app"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProject(ctx, "owned"); err != nil {
		t.Errorf("DeleteProject(owned) once empty = %v", err)
	}
}
