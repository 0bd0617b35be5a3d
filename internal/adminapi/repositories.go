package adminapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/inventory"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/registry"
)

// Repository routes live under /projects/{project}/repositories/{repository}, where
// {repository} is the name inside the project with any "/" escaped as %2F (the API is
// routed on escaped path segments): team/tools/app is
// /projects/team/repositories/tools%2Fapp. Reads need the pull right on the
// repository, deletes the delete right, as on /v2/.

// WithRepositories serves the repository routes: listings from inv, deletes through reg
// (whose row deletions queue garbage-collection reviews; the bytes go online later).
func (a *API) WithRepositories(reg *registry.Registry, inv *inventory.Store) *API {
	a.reg, a.inv = reg, inv
	return a
}

type repositoryJSON struct {
	Name       string     `json:"name"`
	Size       int64      `json:"size"`
	TagCount   int        `json:"tagCount"`
	Manifests  int        `json:"manifestCount"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastPushAt *time.Time `json:"lastPushAt"`
	LastPullAt *time.Time `json:"lastPullAt"`
	PullCount  int64      `json:"pullCount"`
}

type artifactJSON struct {
	Digest        string     `json:"digest"`
	MediaType     string     `json:"mediaType"`
	ArtifactType  string     `json:"artifactType,omitempty"`
	Subject       string     `json:"subject,omitempty"`
	Size          int64      `json:"size"`
	Tags          []string   `json:"tags"`     // the first 100 in name order
	TagCount      int        `json:"tagCount"` // all of them
	Platforms     []string   `json:"platforms,omitempty"`
	Referrers     int        `json:"referrerCount"`
	ReferrerTypes []string   `json:"referrerTypes"`
	PushedAt      time.Time  `json:"pushedAt"`
	LastPullAt    *time.Time `json:"lastPullAt"`
	PullCount     int64      `json:"pullCount"`
}

type tagJSON struct {
	Name      string       `json:"name"`
	UpdatedAt time.Time    `json:"updatedAt"`
	Artifact  artifactJSON `json:"artifact"`
}

// optTime is nil for a zero time (never), so JSON says null instead of year 1.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func toRepository(r inventory.Repository) repositoryJSON {
	return repositoryJSON{Name: r.Name, Size: r.Size, TagCount: r.Tags, Manifests: r.Manifests, CreatedAt: r.CreatedAt.UTC(),
		LastPushAt: optTime(r.LastPushAt), LastPullAt: optTime(r.LastPullAt), PullCount: r.Pulls}
}

func toArtifact(x inventory.Artifact) artifactJSON {
	return artifactJSON{Digest: x.Digest, MediaType: x.MediaType, ArtifactType: x.ArtifactType, Subject: x.Subject, Size: x.Size,
		Tags: x.Tags, TagCount: x.TagCount, Platforms: x.Platforms, Referrers: x.Referrers, ReferrerTypes: x.ReferrerTypes, PushedAt: x.PushedAt.UTC(),
		LastPullAt: optTime(x.LastPullAt), PullCount: x.Pulls}
}

func (a *API) repositoriesEnabled() error {
	if a.inv == nil || a.reg == nil {
		return errcode.Unsupported.New("repository management is not available on this server")
	}
	return nil
}

// pathRepository returns the full repository name of the path, validated.
func pathRepository(r *http.Request) (string, error) {
	project, err := pathProject(r)
	if err != nil {
		return "", err
	}
	name := project + "/" + r.PathValue("repository")
	return name, registry.ValidateName(name)
}

// repoResource names what a repository route is about, as /v2/'s audit entries do:
// "team/app", "team/app:v1", "team/app:sha256:…".
func repoResource(r *http.Request) string {
	name := r.PathValue("project") + "/" + r.PathValue("repository")
	if ref := r.PathValue("tag") + r.PathValue("digest"); ref != "" {
		return name + ":" + ref
	}
	return name
}

// requireRight refuses callers without the action on repo (a project's name stands for
// all its repositories). A repository the caller may not read looks the same whether or
// not it exists.
func (a *API) requireRight(ctx context.Context, c *caller, repo string, act auth.Action) error {
	got, err := a.svc.Allowed(ctx, c.p, repo, []auth.Action{act})
	if err != nil {
		return storeErr(err, "")
	}
	if len(got) == 0 {
		return denied("you may not " + string(act) + " " + repo)
	}
	return nil
}

// repoRoute parses and authorizes a repository route: enabled, valid name, the right.
func (a *API) repoRoute(r *http.Request, c *caller, act auth.Action, params ...string) (string, error) {
	if err := a.repositoriesEnabled(); err != nil {
		return "", err
	}
	if err := onlyParams(r, params...); err != nil {
		return "", err
	}
	repo, err := pathRepository(r)
	if err != nil {
		return "", err
	}
	return repo, a.requireRight(r.Context(), c, repo, act)
}

func repoNotFound(err error, repo string) error {
	if errors.Is(err, meta.ErrNotFound) {
		return errcode.NameUnknown.New("repository " + repo + " not found")
	}
	return storeErr(err, "")
}

func (a *API) listRepositories(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.repositoriesEnabled(); err != nil {
		return err
	}
	if err := onlyParams(r, "n", "last", "q", "sort", "offset"); err != nil {
		return err
	}
	project, err := pathProject(r)
	if err != nil {
		return err
	}
	n, last, err := page(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := a.requireRight(ctx, c, project, auth.Pull); err != nil {
		return err
	}
	if q := r.URL.Query(); q.Has("q") || q.Has("sort") || q.Has("offset") {
		return a.findRepositories(w, r, c, project)
	}
	repos, err := a.inv.Repositories(ctx, project, last, n)
	if err != nil {
		return storeErr(err, "")
	}
	out := make([]repositoryJSON, len(repos))
	for i, rp := range repos {
		out[i] = toRepository(rp)
	}
	if len(out) == n {
		setNext(w, r, "last", out[len(out)-1].Name)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"repositories": out})
}

func (a *API) getRepository(w http.ResponseWriter, r *http.Request, c *caller) error {
	repo, err := a.repoRoute(r, c, auth.Pull)
	if err != nil {
		return err
	}
	rp, err := a.inv.Repository(r.Context(), repo)
	if err != nil {
		return repoNotFound(err, repo)
	}
	return writeJSON(w, http.StatusOK, toRepository(rp))
}

// deleteRepository removes the repository's rows in one transaction while the registry
// serves; garbage collection frees the bytes reviewAfter later.
func (a *API) deleteRepository(w http.ResponseWriter, r *http.Request, c *caller) error {
	repo, err := a.repoRoute(r, c, auth.Delete)
	if err != nil {
		return err
	}
	if err := a.reg.DeleteRepository(r.Context(), repo); err != nil {
		return err
	}
	a.record(c, "repository.delete", repo, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listArtifacts(w http.ResponseWriter, r *http.Request, c *caller) error {
	repo, err := a.repoRoute(r, c, auth.Pull, "n", "last")
	if err != nil {
		return err
	}
	n, last, err := page(r)
	if err != nil {
		return err
	}
	arts, err := a.inv.Artifacts(r.Context(), repo, last, n)
	if err != nil {
		return repoNotFound(err, repo)
	}
	out := make([]artifactJSON, len(arts))
	for i, x := range arts {
		out[i] = toArtifact(x)
	}
	if len(out) == n {
		setNext(w, r, "last", out[len(out)-1].Digest)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"artifacts": out})
}

func (a *API) listTags(w http.ResponseWriter, r *http.Request, c *caller) error {
	repo, err := a.repoRoute(r, c, auth.Pull, "n", "last")
	if err != nil {
		return err
	}
	n, last, err := page(r)
	if err != nil {
		return err
	}
	tags, err := a.inv.Tags(r.Context(), repo, last, n)
	if err != nil {
		return repoNotFound(err, repo)
	}
	out := make([]tagJSON, len(tags))
	for i, t := range tags {
		out[i] = tagJSON{Name: t.Name, UpdatedAt: t.UpdatedAt.UTC(), Artifact: toArtifact(t.Artifact)}
	}
	if len(out) == n {
		setNext(w, r, "last", out[len(out)-1].Name)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tags": out})
}

// deleteTag removes one tag; the manifest stays (and is reviewed by GC if untagged now).
func (a *API) deleteTag(w http.ResponseWriter, r *http.Request, c *caller) error {
	return a.deleteReference(w, r, c, "tag.delete", r.PathValue("tag"))
}

// deleteManifest removes a manifest and every tag naming it, as DELETE on /v2/ does.
func (a *API) deleteManifest(w http.ResponseWriter, r *http.Request, c *caller) error {
	return a.deleteReference(w, r, c, "manifest.delete", r.PathValue("digest"))
}

func (a *API) deleteReference(w http.ResponseWriter, r *http.Request, c *caller, action, ref string) error {
	repo, err := a.repoRoute(r, c, auth.Delete)
	if err != nil {
		return err
	}
	parsed, err := registry.ParseReference(ref)
	if err != nil {
		return err
	}
	if (action == "tag.delete") != (parsed.Digest == "") {
		return invalid("%q is not a %s", ref, map[bool]string{true: "tag", false: "digest"}[action == "tag.delete"])
	}
	if err := a.reg.DeleteManifest(r.Context(), repo, parsed); err != nil {
		return err
	}
	a.record(c, action, repo+":"+ref, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
