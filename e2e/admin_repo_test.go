package e2e

// The admin API's repository endpoints (issue 13): listing with sizes (a shared blob
// counted once) and pagination, rights from the matrix (guest reads, only delete
// rights delete), online deletes of a tag, a manifest and a repository, and GC then
// freeing the bytes.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

func TestAdminRepositories(t *testing.T) {
	w := startAuthBerth(t, "gc:\n  reviewAfter: 0s\n")
	w.setup(t)
	a, b := newAuImage(t, "image a"), newAuImage(t, "image b")
	w.seed(t, "team/app", "v1", a.manifest, a.config, a.layer)
	w.seed(t, "team/app", "v2", b.manifest, b.config, b.layer)
	w.seed(t, "team/tools/x", "v1", a.manifest, a.config, a.layer) // shares every blob with team/app:v1

	if n := len(gcStored(t, filepath.Join(w.b.Data, "storage"))); n != 4 {
		t.Fatalf("the blob store holds %d blobs, want the 4 distinct ones", n)
	}
	as := func(user, pass, method, path string) auResp {
		t.Helper()
		return auDo(t, method, w.b.URL("/api/v1"+path), map[string]string{"Authorization": auBasic(user, pass)}, nil)
	}
	type repo struct {
		Name          string `json:"name"`
		Size          int64  `json:"size"`
		TagCount      int    `json:"tagCount"`
		ManifestCount int    `json:"manifestCount"`
	}
	list := func(path string) ([]repo, string) {
		t.Helper()
		r := as("gina", auPass, http.MethodGet, path) // a guest may read
		if r.status != http.StatusOK {
			t.Fatalf("GET %s as guest: %d %s", path, r.status, r.body)
		}
		var out struct{ Repositories []repo }
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		return out.Repositories, r.header.Get("Link")
	}
	all, _ := list("/projects/team/repositories")
	if len(all) != 2 {
		t.Fatalf("repositories of team: %+v", all)
	}
	var app repo
	for _, r := range all {
		if strings.HasSuffix(r.Name, "app") {
			app = r
		}
	}
	want := int64(len(a.config) + len(a.layer) + len(b.config) + len(b.layer) + len(a.manifest) + len(b.manifest))
	if app.Size != want || app.TagCount != 2 || app.ManifestCount != 2 {
		t.Errorf("team/app: %+v, want size %d (each blob once, plus manifests), 2 tags, 2 manifests", app, want)
	}
	// Pagination: one per page, the Link header leads to the other.
	first, link := list("/projects/team/repositories?n=1")
	if len(first) != 1 || !strings.Contains(link, "rel=\"next\"") {
		t.Fatalf("page 1: %+v, Link %q", first, link)
	}
	next := link[strings.Index(link, "<")+1 : strings.Index(link, ">")]
	u, _ := url.Parse(next)
	second, _ := list(strings.TrimPrefix(u.Path, "/api/v1") + "?" + u.RawQuery)
	if len(second) != 1 || second[0].Name == first[0].Name {
		t.Fatalf("page 2: %+v after %+v", second, first)
	}

	// Rights: outsiders read nothing; guest and developer may not delete; a
	// maintainer deletes a tag, the project admin a manifest, a delete robot the rest.
	if r := as("olga", auPass, http.MethodGet, "/projects/team/repositories"); r.status != http.StatusForbidden {
		t.Errorf("outsider lists team: %d", r.status)
	}
	for _, u := range []string{"gina", "dave"} {
		if r := as(u, auPass, http.MethodDelete, "/projects/team/repositories/app/tags/v2"); r.status != http.StatusForbidden {
			t.Errorf("%s deletes a tag: %d %s", u, r.status, r.body)
		}
	}
	// The CLI: berth admin repo list / tag list / tag delete, here as the maintainer.
	cli := func(user, pass string, args ...string) string {
		t.Helper()
		out, errOut, err := admCLI(w.b, []string{"BERTH_ADMIN_USERNAME=" + user, "BERTH_ADMIN_PASSWORD=" + pass}, "", args...)
		if err != nil {
			t.Fatalf("berth admin %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	if out := cli("mia", auPass, "repo", "list", "team"); !strings.Contains(out, "tools/x") || !strings.Contains(out, "LAST PUSH") {
		t.Errorf("berth admin repo list team:\n%s", out)
	}
	if out := cli("mia", auPass, "tag", "list", "team/app"); !strings.Contains(out, auDigest(b.manifest)) || !strings.Contains(out, "v1") {
		t.Errorf("berth admin tag list team/app:\n%s", out)
	}
	cli("mia", auPass, "tag", "delete", "team/app:v2")
	if w.exists(t, "team/app", "v2") {
		t.Fatal("team/app:v2 still served after its online delete")
	}
	cli("paul", auPass, "tag", "delete", "team/app@"+auDigest(a.manifest))
	if r := as("robot$team+delete", auRobotPass, http.MethodDelete, "/projects/team/repositories/tools%2Fx"); r.status != http.StatusNoContent {
		t.Fatalf("delete robot deletes team/tools/x: %d %s", r.status, r.body)
	}
	if w.exists(t, "team/tools/x", "v1") {
		t.Fatal("team/tools/x:v1 still served after the repository delete")
	}

	// GC (reviewAfter 0) frees every byte: nothing references any blob any more.
	root := filepath.Join(w.b.Data, "storage")
	deadline := time.Now().Add(30 * time.Second)
	for left := gcStored(t, root); len(left) > 0; left = gcStored(t, root) {
		if time.Now().After(deadline) {
			t.Fatalf("blobs left 30 s after every image was deleted online: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	auWaitAudit(t, w, []auAuditWant{
		{"tag delete", meta.AuditFilter{Action: "tag.delete", Actor: "mia", Result: "ok"}},
		{"repository delete", meta.AuditFilter{Action: "repository.delete", Actor: "robot$team+delete", Result: "ok"}},
	})
}
