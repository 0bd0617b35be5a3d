package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
)

type project struct {
	Name      string    `json:"name"`
	Public    bool      `json:"public"`
	CreatedAt time.Time `json:"createdAt"`
	// Quota and usage (quotas.go); QuotaBytes absent: unlimited.
	QuotaBytes *int64 `json:"quotaBytes,omitempty"`
	UsageBytes *int64 `json:"usageBytes,omitempty"`
	UsageBlobs *int64 `json:"usageBlobs,omitempty"`
	// Repositories counts the project's repositories (absent without the repository routes).
	Repositories *int `json:"repositoryCount,omitempty"`
}

func toProject(p meta.Project) project {
	return project{Name: p.Name, Public: p.Public, CreatedAt: p.CreatedAt.UTC()}
}

// validProject checks a project name: one repository name component.
func validProject(name string) error {
	if strings.Contains(name, "/") {
		return invalid("project name %q: one path component, without /", name)
	}
	if err := oci.ValidateName(name); err != nil {
		return invalid("project name %q: %v", name, err)
	}
	return nil
}

// pathProject returns the {project} of the path, validated.
func pathProject(r *http.Request) (string, error) {
	name := r.PathValue("project")
	return name, validProject(name)
}

// requireAdmin refuses callers that are not system administrators.
func requireAdmin(c *caller) error {
	if !c.p.Admin {
		return denied("only system administrators may do this")
	}
	return nil
}

// requireProjectAdmin refuses callers that administer neither the system nor the
// project. A missing project looks the same as a foreign one to non-administrators.
func (a *API) requireProjectAdmin(ctx context.Context, c *caller, project string) error {
	if c.p.Admin {
		return nil
	}
	role, _, _, err := a.svc.ProjectRole(ctx, c.p, project)
	if err != nil {
		return storeErr(err, "")
	}
	if role != auth.Admin {
		return denied("only administrators of project " + project + " may do this")
	}
	return nil
}

// visible tells whether the caller may see the project: administrators see all,
// others public projects and those they hold a role or a robot permission in.
func (a *API) visible(ctx context.Context, c *caller, name string) (bool, error) {
	if c.p.Admin {
		return true, nil
	}
	if c.p.Kind == "robot" {
		for _, perm := range c.p.RobotPerms {
			// The metrics permission is about the registry, not its projects.
			opens := slices.ContainsFunc(perm.Actions, func(a auth.Action) bool { return a != auth.Metrics })
			if (perm.Project == name || perm.Project == "*") && opens {
				return true, nil
			}
		}
	}
	role, _, public, err := a.svc.ProjectRole(ctx, c.p, name)
	if err != nil {
		return false, storeErr(err, "")
	}
	return public || role != "", nil
}

func (a *API) listProjects(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := onlyParams(r, "n", "last"); err != nil {
		return err
	}
	n, last, err := page(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	out := []project{}
	const batch = 500
	full := false
	for cursor := last; !full; {
		ps, err := a.meta.Projects(ctx, cursor, batch)
		if err != nil {
			return storeErr(err, "")
		}
		for _, p := range ps {
			ok, err := a.visible(ctx, c, p.Name)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, toProject(p))
				if full = len(out) == n; full {
					break
				}
			}
		}
		if len(ps) < batch {
			break
		}
		cursor = ps[len(ps)-1].Name
	}
	if full {
		setNext(w, r, "last", out[len(out)-1].Name)
	}
	if err := a.withUsage(ctx, out); err != nil {
		return err
	}
	if err := a.withCounts(ctx, out); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"projects": out})
}

type createProjectRequest struct {
	Name   string `json:"name"`
	Public bool   `json:"public"`
}

func (a *API) createProject(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	var req createProjectRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := validProject(req.Name); err != nil {
		return err
	}
	p, err := a.meta.CreateProject(r.Context(), meta.Project{Name: req.Name, Public: req.Public}, "", "")
	if err != nil {
		return storeErr(err, "project "+req.Name)
	}
	a.record(c, "project.create", p.Name, fmt.Sprintf("public=%t", p.Public))
	w.Header().Set("Location", Prefix+"/projects/"+p.Name)
	return writeJSON(w, http.StatusCreated, toProject(p))
}

func (a *API) getProject(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := pathProject(r)
	if err != nil {
		return err
	}
	if ok, err := a.visible(r.Context(), c, name); err != nil {
		return err
	} else if !ok {
		return denied("project " + name + " is not visible to you")
	}
	p, err := a.meta.ProjectByName(r.Context(), name)
	if err != nil {
		return storeErr(err, "project "+name)
	}
	out := []project{toProject(p)}
	if err := a.withUsage(r.Context(), out); err != nil {
		return err
	}
	if err := a.withCounts(r.Context(), out); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out[0])
}

type patchProjectRequest struct {
	Public *bool `json:"public"`
}

func (a *API) patchProject(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := pathProject(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := a.requireProjectAdmin(ctx, c, name); err != nil {
		return err
	}
	var req patchProjectRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Public == nil {
		return invalid("nothing to change: set public")
	}
	if err := a.meta.SetProjectPublic(ctx, name, *req.Public); err != nil {
		return storeErr(err, "project "+name)
	}
	a.record(c, "project.update", name, fmt.Sprintf("public=%t", *req.Public))
	p, err := a.meta.ProjectByName(ctx, name)
	if err != nil {
		return storeErr(err, "project "+name)
	}
	return writeJSON(w, http.StatusOK, toProject(p))
}

// deleteProject removes a project with its members and robots. A project that still
// has repositories is not deleted: the next push would recreate it with the pusher as
// its administrator, handing them the old repositories.
func (a *API) deleteProject(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	name, err := pathProject(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := a.meta.ProjectByName(ctx, name); err != nil {
		return storeErr(err, "project "+name)
	}
	robots, err := a.meta.Robots(ctx, name)
	if err != nil {
		return storeErr(err, "")
	}
	// The repository check is inside the delete's transaction (meta.ErrNotEmpty).
	if err := a.meta.DeleteProject(ctx, name); errors.Is(err, meta.ErrNotEmpty) {
		return errcode.Conflict.New("project " + name + " still has repositories: delete them first (berth repo delete)")
	} else if err != nil {
		return storeErr(err, "project "+name)
	}
	for _, rb := range robots {
		a.svc.Forget(rb.Name) // deleted with the project
	}
	a.record(c, "project.delete", name, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// record adds a successful change to the audit trail.
func (a *API) record(c *caller, action, resource, detail string) {
	a.svc.Record(meta.AuditEntry{Actor: c.p.Name, ActorType: c.p.Kind, Action: action, Resource: resource,
		Result: "ok", Remote: c.remote, Detail: detail})
}

// adminProjects lists the projects the caller administers (all, for a system admin: nil).
func (a *API) adminProjects(ctx context.Context, c *caller) ([]string, error) {
	if c.p.Admin {
		return nil, nil
	}
	out := []string{}
	if c.p.Kind == "robot" {
		return out, nil
	}
	for cursor := ""; ; {
		ps, err := a.meta.Projects(ctx, cursor, 500)
		if err != nil {
			return nil, storeErr(err, "")
		}
		for _, p := range ps {
			role, _, _, err := a.svc.ProjectRole(ctx, c.p, p.Name)
			if err != nil {
				return nil, storeErr(err, "")
			}
			if role == auth.Admin && !slices.Contains(out, p.Name) {
				out = append(out, p.Name)
			}
		}
		if len(ps) < 500 {
			return out, nil
		}
		cursor = ps[len(ps)-1].Name
	}
}
