package adminapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/meta"
)

type member struct {
	Principal string `json:"principal"` // user:<name> or group:<group>
	Role      string `json:"role"`
}

// validPrincipal checks "user:<name>" or "group:<group>".
func validPrincipal(p string) error {
	kind, name, ok := strings.Cut(p, ":")
	if !ok || (kind != "user" && kind != "group") || !validPathName(name) {
		return invalid("principal %q: want user:<name> or group:<group>", p)
	}
	if kind == "user" && strings.HasPrefix(name, "robot$") {
		return invalid("principal %q: robots are not members; give them permissions instead", p)
	}
	return nil
}

// projectForMembers authorizes a members or robots operation on the path's project and
// checks that it exists.
func (a *API) projectForMembers(r *http.Request, c *caller) (string, error) {
	name, err := pathProject(r)
	if err != nil {
		return "", err
	}
	if err := a.requireProjectAdmin(r.Context(), c, name); err != nil {
		return "", err
	}
	if _, err := a.meta.ProjectByName(r.Context(), name); err != nil {
		return "", storeErr(err, "project "+name)
	}
	return name, nil
}

func (a *API) listMembers(w http.ResponseWriter, r *http.Request, c *caller) error {
	project, err := a.projectForMembers(r, c)
	if err != nil {
		return err
	}
	ms, err := a.meta.Members(r.Context(), project)
	if err != nil {
		return storeErr(err, "")
	}
	out := []member{}
	for _, m := range ms {
		out = append(out, member{Principal: m.Principal, Role: m.Role})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"members": out})
}

// setMember adds a member or changes its role. A user must exist (directory users exist
// after their first login; until then, grant the role to one of their groups).
func (a *API) setMember(w http.ResponseWriter, r *http.Request, c *caller) error {
	project, err := a.projectForMembers(r, c)
	if err != nil {
		return err
	}
	var req member
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := validPrincipal(req.Principal); err != nil {
		return err
	}
	if !auth.ValidRole(req.Role) {
		return invalid("role %q: want guest, developer, maintainer or admin", req.Role)
	}
	ctx := r.Context()
	if name, ok := strings.CutPrefix(req.Principal, "user:"); ok {
		if _, err := a.meta.UserByName(ctx, name); errors.Is(err, meta.ErrNotFound) {
			return invalid("no user %q (directory users exist after their first login; a group:<group> member works before)", name)
		} else if err != nil {
			return storeErr(err, "")
		}
	}
	if err := a.meta.SetMember(ctx, meta.Member{Project: project, Principal: req.Principal, Role: req.Role}); err != nil {
		return storeErr(err, "project "+project)
	}
	a.record(c, "member.set", project, req.Principal+" role="+req.Role)
	return writeJSON(w, http.StatusOK, req)
}

func (a *API) removeMember(w http.ResponseWriter, r *http.Request, c *caller) error {
	project, err := a.projectForMembers(r, c)
	if err != nil {
		return err
	}
	principal := r.PathValue("principal")
	if err := validPrincipal(principal); err != nil {
		return err
	}
	if err := a.meta.RemoveMember(r.Context(), project, principal); err != nil {
		return storeErr(err, "member "+principal+" of project "+project)
	}
	a.record(c, "member.remove", project, principal)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
