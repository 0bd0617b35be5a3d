package ui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/oci"
)

// The API's JSON, as the pages read it.
type (
	projectJSON struct {
		Name       string    `json:"name"`
		Public     bool      `json:"public"`
		CreatedAt  time.Time `json:"createdAt"`
		QuotaBytes *int64    `json:"quotaBytes"`
		UsageBytes *int64    `json:"usageBytes"`
		Repos      *int      `json:"repositoryCount"`
	}
	repositoryJSON struct {
		Name       string     `json:"name"`
		Size       int64      `json:"size"`
		TagCount   int        `json:"tagCount"`
		Manifests  int        `json:"manifestCount"`
		LastPushAt *time.Time `json:"lastPushAt"`
		LastPullAt *time.Time `json:"lastPullAt"`
		PullCount  int64      `json:"pullCount"`
	}
	artifactJSON struct {
		Digest        string     `json:"digest"`
		MediaType     string     `json:"mediaType"`
		ArtifactType  string     `json:"artifactType"`
		Subject       string     `json:"subject"`
		Size          int64      `json:"size"`
		Tags          []string   `json:"tags"`
		Platforms     []string   `json:"platforms"`
		Referrers     int        `json:"referrerCount"`
		ReferrerTypes []string   `json:"referrerTypes"`
		PushedAt      time.Time  `json:"pushedAt"`
		LastPullAt    *time.Time `json:"lastPullAt"`
		PullCount     int64      `json:"pullCount"`
	}
	tagJSON struct {
		Name      string       `json:"name"`
		UpdatedAt time.Time    `json:"updatedAt"`
		Artifact  artifactJSON `json:"artifact"`
	}
)

// pageSize is the rows per page of every listing.
const pageSize = 50

func (u *UI) home(w http.ResponseWriter, r *http.Request, v *visit) error {
	http.Redirect(w, r, "/projects", http.StatusSeeOther)
	return nil
}

func (u *UI) projects(w http.ResponseWriter, r *http.Request, v *visit) error {
	q := url.Values{"n": {strconv.Itoa(pageSize)}}
	if last := r.URL.Query().Get("last"); last != "" {
		q.Set("last", last)
	}
	var out struct{ Projects []projectJSON }
	h, err := u.get(r, v, "/projects", q, &out)
	if err != nil {
		return err
	}
	u.render(w, r, v, http.StatusOK, "projects", map[string]any{
		"Title": "Projects", "Projects": out.Projects, "Next": nextParam(h, "last"), "CanCreate": v.p.Admin,
	})
	return nil
}

// rights are what the visitor may do in a project, so pages offer only those.
type rights struct {
	Role                     string
	Push, Delete, ManageProj bool
	SystemAdmin              bool
}

func (u *UI) rights(r *http.Request, v *visit, project string) (rights, error) {
	rt := rights{SystemAdmin: v.p.Admin}
	role, _, _, err := u.d.Auth.ProjectRole(r.Context(), v.p, project)
	if err != nil {
		return rt, err
	}
	rt.Role = string(role)
	acts, err := u.d.Auth.Allowed(r.Context(), v.p, project+"/x", []auth.Action{auth.Push, auth.Delete})
	if err != nil {
		return rt, err
	}
	for _, a := range acts {
		rt.Push = rt.Push || a == auth.Push
		rt.Delete = rt.Delete || a == auth.Delete
	}
	rt.ManageProj = v.p.Admin || role == auth.Admin
	return rt, nil
}

func (u *UI) project(w http.ResponseWriter, r *http.Request, v *visit) error {
	name := r.PathValue("project")
	var p projectJSON
	if _, err := u.get(r, v, "/projects/"+url.PathEscape(name), nil, &p); err != nil {
		return err
	}
	in := r.URL.Query()
	sort := in.Get("sort")
	if sort == "" {
		sort = "name"
	}
	offset, _ := strconv.Atoi(in.Get("offset"))
	q := url.Values{"sort": {sort}, "offset": {strconv.Itoa(max(offset, 0))}, "n": {strconv.Itoa(pageSize)}}
	if s := in.Get("q"); s != "" {
		q.Set("q", s)
	}
	var out struct{ Repositories []repositoryJSON }
	h, err := u.get(r, v, "/projects/"+url.PathEscape(name)+"/repositories", q, &out)
	if err != nil {
		return err
	}
	rt, err := u.rights(r, v, name)
	if err != nil {
		return err
	}
	next := ""
	if o := nextParam(h, "offset"); o != "" {
		nq := url.Values{"sort": {sort}, "offset": {o}, "q": {in.Get("q")}}
		next = "?" + nq.Encode()
	}
	u.render(w, r, v, http.StatusOK, "project", map[string]any{
		"Title": name, "Project": p, "Repos": out.Repositories, "Sort": sort, "Query": in.Get("q"),
		"Next": next, "Rights": rt, "Tab": "repositories",
	})
	return nil
}

func (u *UI) search(w http.ResponseWriter, r *http.Request, v *visit) error {
	in := r.URL.Query()
	query := strings.TrimSpace(in.Get("q"))
	sort := in.Get("sort")
	if sort == "" {
		sort = "name"
	}
	offset, _ := strconv.Atoi(in.Get("offset"))
	var out struct{ Repositories []repositoryJSON }
	h, err := u.get(r, v, "/repositories", url.Values{"q": {query}, "sort": {sort}, "offset": {strconv.Itoa(max(offset, 0))}, "n": {strconv.Itoa(pageSize)}}, &out)
	if err != nil {
		return err
	}
	next := ""
	if o := nextParam(h, "offset"); o != "" {
		next = "?" + url.Values{"q": {query}, "sort": {sort}, "offset": {o}}.Encode()
	}
	u.render(w, r, v, http.StatusOK, "search", map[string]any{
		"Title": "Search", "Query": query, "Sort": sort, "Repos": out.Repositories, "Next": next,
	})
	return nil
}

// apiRepoPath is a repository's admin API path: the project, then the rest of the name
// with "/" escaped (the API routes on escaped segments).
func apiRepoPath(name string) string {
	project, rest, ok := strings.Cut(name, "/")
	if !ok {
		rest = name // a repository named like its project
	}
	return "/projects/" + url.PathEscape(project) + "/repositories/" + url.PathEscape(rest)
}

// ref is what a /r/ path names: a repository, a tag or a digest in it.
type ref struct {
	Repo, Tag string
	Digest    oci.Digest
}

func parseRef(s string) (ref, error) {
	var rf ref
	name, dgst, hasDigest := strings.Cut(s, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, rf.Tag = name[:i], name[i+1:]
		if oci.ValidateTag(rf.Tag) != nil {
			return rf, errStatus(http.StatusBadRequest, "invalid tag")
		}
	}
	if err := oci.ValidateName(name); err != nil {
		return rf, errStatus(http.StatusBadRequest, "invalid repository name")
	}
	rf.Repo = name
	if hasDigest {
		d, err := oci.ParseDigest(dgst)
		if err != nil {
			return rf, errStatus(http.StatusBadRequest, "invalid digest")
		}
		rf.Digest = d
	}
	return rf, nil
}

// repository serves /r/<name>, /r/<name>:<tag> and /r/<name>@<digest>.
func (u *UI) repository(w http.ResponseWriter, r *http.Request, v *visit) error {
	rf, err := parseRef(r.PathValue("ref"))
	if err != nil {
		return err
	}
	if rf.Digest != "" || rf.Tag != "" {
		return u.manifest(w, r, v, rf)
	}
	var repo repositoryJSON
	if _, err := u.get(r, v, apiRepoPath(rf.Repo), nil, &repo); err != nil {
		return err
	}
	q := url.Values{"n": {strconv.Itoa(pageSize)}}
	if last := r.URL.Query().Get("last"); last != "" {
		q.Set("last", last)
	}
	var out struct{ Tags []tagJSON }
	h, err := u.get(r, v, apiRepoPath(rf.Repo)+"/tags", q, &out)
	if err != nil {
		return err
	}
	var untagged struct{ Artifacts []artifactJSON }
	if _, err := u.get(r, v, apiRepoPath(rf.Repo)+"/artifacts", url.Values{"n": {"200"}}, &untagged); err != nil {
		return err
	}
	var loose []artifactJSON
	for _, a := range untagged.Artifacts {
		if len(a.Tags) == 0 && a.Subject == "" {
			loose = append(loose, a)
		}
	}
	project, _, _ := strings.Cut(rf.Repo, "/")
	rt, err := u.rights(r, v, project)
	if err != nil {
		return err
	}
	u.render(w, r, v, http.StatusOK, "repository", map[string]any{
		"Title": rf.Repo, "Repo": repo, "Project": project, "Tags": out.Tags, "Untagged": loose,
		"Next": nextParam(h, "last"), "Rights": rt, "Pull": pullCommands(r, rf.Repo, pullTag(out.Tags), ""),
	})
	return nil
}

// pullTag is the tag a repository's pull commands name: latest when it exists, else
// the first listed.
func pullTag(tags []tagJSON) string {
	for _, t := range tags {
		if t.Name == "latest" {
			return t.Name
		}
	}
	if len(tags) > 0 {
		return tags[0].Name
	}
	return "latest"
}
