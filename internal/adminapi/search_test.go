package adminapi_test

import (
	"slices"
	"testing"

	"github.com/berth-registry/berth/internal/meta"
)

func TestSearchRepositories(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, repo := range []string{"team/web", "team/db", "open/web", "other/web"} {
		if err := w.meta.PutManifest(t.Context(), meta.Manifest{Repository: repo, Digest: "sha256:" + repo, MediaType: "application/vnd.oci.image.manifest.v1+json", Payload: []byte("{}")}, []string{"v1"}); err != nil {
			t.Fatal(err)
		}
	}
	names := func(r resp) []string {
		var v struct{ Repositories []struct{ Name string } }
		r.decode(t, &v)
		var out []string
		for _, x := range v.Repositories {
			out = append(out, x.Name)
		}
		return out
	}
	for _, tt := range []struct {
		who  cred
		path string
		want []string
	}{
		{root, "/api/v1/repositories?q=web", []string{"open/web", "other/web", "team/web"}},
		{bob, "/api/v1/repositories?q=web", []string{"open/web", "team/web"}},
		{carol, "/api/v1/repositories?q=web", []string{"open/web"}},
		{tbot, "/api/v1/repositories?q=w", []string{"open/web", "team/web"}},
		{bob, "/api/v1/repositories?q=web&n=1&offset=1", []string{"team/web"}},
		{bob, "/api/v1/projects/team/repositories?q=d", []string{"team/db"}},
		{bob, "/api/v1/projects/team/repositories?sort=name&offset=1", []string{"team/web"}},
	} {
		if got := names(w.expect(tt.who, "GET", tt.path, nil, 200)); !slices.Equal(got, tt.want) {
			t.Errorf("%s GET %s: %v, want %v", tt.who.user, tt.path, got, tt.want)
		}
	}
	var team struct{ RepositoryCount int }
	w.expect(bob, "GET", "/api/v1/projects/team", nil, 200).decode(t, &team)
	if team.RepositoryCount != 2 {
		t.Errorf("team's repositoryCount = %d, want 2", team.RepositoryCount)
	}
	w.expect(bob, "GET", "/api/v1/repositories?sort=size", nil, 400)
	w.expect(bob, "GET", "/api/v1/repositories?offset=-1", nil, 400)
	w.expect(carol, "GET", "/api/v1/projects/team/repositories?q=web", nil, 403)
	w.expect(anon, "GET", "/api/v1/repositories?q=web", nil, 401)
}
