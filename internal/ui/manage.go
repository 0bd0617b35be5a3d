package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
)

// Every change goes through the admin API as the session's user: the API decides what
// is allowed, validates and audits; the page only collects the form.

func projectPath(r *http.Request) string {
	return "/projects/" + url.PathEscape(r.PathValue("project"))
}

// back answers a successful change by sending the browser to the page it came from
// (post/redirect/get), so a reload does not repeat the change.
func back(w http.ResponseWriter, r *http.Request, to string) error {
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

func (u *UI) createProject(w http.ResponseWriter, r *http.Request, v *visit) error {
	name := strings.TrimSpace(r.PostFormValue("name"))
	body := map[string]any{"name": name, "public": r.PostFormValue("public") == "on"}
	if _, err := u.call(r, v, http.MethodPost, "/projects", nil, body, nil); err != nil {
		return err
	}
	return back(w, r, "/projects/"+url.PathEscape(name))
}

func (u *UI) updateProject(w http.ResponseWriter, r *http.Request, v *visit) error {
	body := map[string]any{"public": r.PostFormValue("public") == "on"}
	if _, err := u.call(r, v, http.MethodPatch, projectPath(r), nil, body, nil); err != nil {
		return err
	}
	return back(w, r, "/projects/"+url.PathEscape(r.PathValue("project"))+"/settings")
}

func (u *UI) deleteProject(w http.ResponseWriter, r *http.Request, v *visit) error {
	if _, err := u.call(r, v, http.MethodDelete, projectPath(r), nil, nil, nil); err != nil {
		return err
	}
	return back(w, r, "/projects")
}

type memberJSON struct {
	Principal string `json:"principal"`
	Role      string `json:"role"`
}

type robotJSON struct {
	Name        string                 `json:"name"`
	Project     string                 `json:"project"`
	Permissions []auth.RobotPermission `json:"permissions"`
	ExpiresAt   *time.Time             `json:"expiresAt"`
	Expired     bool                   `json:"expired"`
	Disabled    bool                   `json:"disabled"`
	CreatedAt   time.Time              `json:"createdAt"`
	Secret      string                 `json:"secret"`
}

// projectTab renders one of a project's management tabs with the project and rights.
func (u *UI) projectTab(w http.ResponseWriter, r *http.Request, v *visit, tab string, data map[string]any) error {
	name := r.PathValue("project")
	var p projectJSON
	if _, err := u.get(r, v, "/projects/"+url.PathEscape(name), nil, &p); err != nil {
		return err
	}
	rt, err := u.rights(r, v, name)
	if err != nil {
		return err
	}
	data["Title"], data["Project"], data["Rights"], data["Tab"] = name+" · "+tab, p, rt, tab
	u.render(w, r, v, http.StatusOK, "project-"+tab, data)
	return nil
}

func (u *UI) members(w http.ResponseWriter, r *http.Request, v *visit) error {
	var out struct{ Members []memberJSON }
	if _, err := u.get(r, v, projectPath(r)+"/members", nil, &out); err != nil {
		return err
	}
	return u.projectTab(w, r, v, "members", map[string]any{"Members": out.Members, "Roles": []string{"guest", "developer", "maintainer", "admin"}})
}

func (u *UI) setMember(w http.ResponseWriter, r *http.Request, v *visit) error {
	principal := strings.TrimSpace(r.PostFormValue("principal"))
	if !strings.Contains(principal, ":") {
		principal = "user:" + principal
	}
	body := memberJSON{Principal: principal, Role: r.PostFormValue("role")}
	if _, err := u.call(r, v, http.MethodPut, projectPath(r)+"/members", nil, body, nil); err != nil {
		return err
	}
	return back(w, r, projectPath(r)+"/members")
}

func (u *UI) removeMember(w http.ResponseWriter, r *http.Request, v *visit) error {
	principal := r.PostFormValue("principal")
	if _, err := u.call(r, v, http.MethodDelete, projectPath(r)+"/members/"+url.PathEscape(principal), nil, nil, nil); err != nil {
		return err
	}
	return back(w, r, projectPath(r)+"/members")
}

func (u *UI) robots(w http.ResponseWriter, r *http.Request, v *visit) error {
	var out struct{ Robots []robotJSON }
	if _, err := u.get(r, v, projectPath(r)+"/robots", nil, &out); err != nil {
		return err
	}
	return u.projectTab(w, r, v, "robots", map[string]any{"Robots": out.Robots})
}

// createRobot shows the new robot's secret on the answer page itself, once: it is not
// stored anywhere it could be read again, and the page is not cached.
func (u *UI) createRobot(w http.ResponseWriter, r *http.Request, v *visit) error {
	project := r.PathValue("project")
	var actions []auth.Action
	for _, a := range []auth.Action{auth.Pull, auth.Push, auth.Delete} {
		if r.PostFormValue(string(a)) == "on" {
			actions = append(actions, a)
		}
	}
	body := map[string]any{
		"name":        strings.TrimSpace(r.PostFormValue("name")),
		"permissions": []auth.RobotPermission{{Project: project, Actions: actions}},
	}
	if e := strings.TrimSpace(r.PostFormValue("expiresIn")); e != "" {
		body["expiresIn"] = e
	}
	var created robotJSON
	if _, err := u.call(r, v, http.MethodPost, projectPath(r)+"/robots", nil, body, &created); err != nil {
		return err
	}
	var out struct{ Robots []robotJSON }
	if _, err := u.get(r, v, projectPath(r)+"/robots", nil, &out); err != nil {
		return err
	}
	return u.projectTab(w, r, v, "robots", map[string]any{"Robots": out.Robots, "Created": created})
}

func (u *UI) deleteRobot(w http.ResponseWriter, r *http.Request, v *visit) error {
	name := r.PostFormValue("name")
	suffix := name[strings.LastIndexByte(name, '+')+1:]
	if _, err := u.call(r, v, http.MethodDelete, projectPath(r)+"/robots/"+url.PathEscape(suffix), nil, nil, nil); err != nil {
		return err
	}
	return back(w, r, projectPath(r)+"/robots")
}

func (u *UI) settings(w http.ResponseWriter, r *http.Request, v *visit) error {
	data := map[string]any{}
	// Each policy area shows when its feature is on (the API answers 501 otherwise) and
	// the visitor may read it; an area with nothing set shows an empty document.
	read := func(key, path string) {
		var out json.RawMessage
		_, err := u.get(r, v, projectPath(r)+path, nil, &out)
		switch {
		case err == nil:
			data[key], data[key+"On"] = indented(out), true
		case isStatus(err, http.StatusNotFound):
			data[key], data[key+"On"] = "", true
		}
	}
	read("Retention", "/retention")
	read("Scan", "/scan-policy")
	var imm struct{ Rules []immutableJSON }
	if _, err := u.get(r, v, projectPath(r)+"/immutable", nil, &imm); err == nil {
		data["Immutable"] = imm.Rules
	}
	var q struct {
		QuotaBytes *int64 `json:"quotaBytes"`
		UsageBytes int64  `json:"usageBytes"`
	}
	if _, err := u.get(r, v, projectPath(r)+"/quota", nil, &q); err == nil {
		data["Quota"] = q
	}
	return u.projectTab(w, r, v, "settings", data)
}

func (u *UI) setQuota(w http.ResponseWriter, r *http.Request, v *visit) error {
	s := strings.TrimSpace(r.PostFormValue("quota"))
	var limit *int64
	if s != "" {
		n, err := parseSize(s)
		if err != nil {
			return errStatus(http.StatusBadRequest, err.Error())
		}
		limit = &n
	}
	if _, err := u.call(r, v, http.MethodPut, projectPath(r)+"/quota", nil, map[string]any{"quotaBytes": limit}, nil); err != nil {
		return err
	}
	return back(w, r, projectPath(r)+"/settings")
}

// parseSize reads "500MiB", "2 GiB", "10GB" or a plain byte count.
func parseSize(in string) (int64, error) {
	s := strings.ToUpper(strings.ReplaceAll(in, " ", ""))
	units := []struct {
		suffix string
		mult   int64
	}{{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || n*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("quota %q: give a size such as 500MiB or 10GB", in)
	}
	return int64(n * float64(mult)), nil
}

// deleteTag and deleteManifest take the repository from the form: names hold slashes.
func (u *UI) deleteTag(w http.ResponseWriter, r *http.Request, v *visit) error {
	rf, err := parseRef(r.PostFormValue("repo"))
	if err != nil {
		return err
	}
	tag := r.PostFormValue("tag")
	if _, err := u.call(r, v, http.MethodDelete, apiRepoPath(rf.Repo)+"/tags/"+url.PathEscape(tag), nil, nil, nil); err != nil {
		return err
	}
	return back(w, r, repoURL(rf.Repo))
}

func (u *UI) deleteManifest(w http.ResponseWriter, r *http.Request, v *visit) error {
	rf, err := parseRef(r.PostFormValue("repo"))
	if err != nil {
		return err
	}
	dgst := r.PostFormValue("digest")
	if _, err := u.call(r, v, http.MethodDelete, apiRepoPath(rf.Repo)+"/manifests/"+url.PathEscape(dgst), nil, nil, nil); err != nil {
		return err
	}
	return back(w, r, repoURL(rf.Repo))
}
