package adminapi

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
)

// robot is a robot account as the API lists it: never its secret or the secret's hash.
type robot struct {
	Name        string                 `json:"name"`              // robot$ci or robot$team+ci
	Project     string                 `json:"project,omitempty"` // empty for a system robot
	Permissions []auth.RobotPermission `json:"permissions"`
	ExpiresAt   *time.Time             `json:"expiresAt,omitempty"`
	Expired     bool                   `json:"expired"`
	Disabled    bool                   `json:"disabled"`
	CreatedAt   time.Time              `json:"createdAt"`
}

// robotWithSecret answers creation and rotation: the only time a secret is sent.
type robotWithSecret struct {
	robot
	Secret string `json:"secret"`
}

func toRobot(r meta.Robot) (robot, error) {
	out := robot{Name: r.Name, Project: r.Project, Disabled: r.Disabled, CreatedAt: r.CreatedAt.UTC(), Permissions: []auth.RobotPermission{}}
	if err := json.Unmarshal([]byte(r.Permissions), &out.Permissions); err != nil {
		return robot{}, err
	}
	if !r.ExpiresAt.IsZero() {
		t := r.ExpiresAt.UTC()
		out.ExpiresAt = &t
		out.Expired = time.Now().After(r.ExpiresAt)
	}
	return out, nil
}

// robotName returns the full name of the robot a path names (its full name, or the
// suffix after robot$ / robot$<project>+) and checks that it belongs to the scope of
// the route: the project, or the system robots when project is empty.
func robotName(project, raw string) (string, error) {
	suffix := raw
	if rest, ok := strings.CutPrefix(raw, "robot$"); ok {
		suffix = rest
		if project != "" {
			var found bool
			if suffix, found = strings.CutPrefix(rest, project+"+"); !found {
				return "", errcode.NotFound.New("robot " + raw + " does not belong to project " + project)
			}
		} else if strings.Contains(rest, "+") {
			return "", errcode.NotFound.New("robot " + raw + " is a project robot: use /projects/{project}/robots")
		}
	}
	if !accountName.MatchString(suffix) {
		return "", invalid("robot name %q: the part after robot$ (and project+) must match [a-z0-9][a-z0-9._-]{0,63}", raw)
	}
	if project == "" {
		return "robot$" + suffix, nil
	}
	return "robot$" + project + "+" + suffix, nil
}

// robotScope returns the project of a robots route ("" for system robots), authorized.
func (a *API) robotScope(r *http.Request, c *caller) (string, error) {
	if r.PathValue("project") == "" {
		return "", requireAdmin(c)
	}
	return a.projectForMembers(r, c)
}

// pathRobot loads the robot the path names, within the route's scope.
func (a *API) pathRobot(r *http.Request, c *caller) (meta.Robot, error) {
	project, err := a.robotScope(r, c)
	if err != nil {
		return meta.Robot{}, err
	}
	name, err := robotName(project, r.PathValue("robot"))
	if err != nil {
		return meta.Robot{}, err
	}
	rb, err := a.meta.RobotByName(r.Context(), name)
	if err == nil && rb.Project != project {
		err = meta.ErrNotFound
	}
	return rb, storeErr(err, "robot "+name)
}

var robotActions = []auth.Action{auth.Pull, auth.Push, auth.Delete, auth.Metrics}

// validPermissions checks and normalizes permissions: a project robot's always name
// its project; a system robot's name a project or "*" (every project).
func validPermissions(project string, perms []auth.RobotPermission) ([]auth.RobotPermission, error) {
	if len(perms) == 0 {
		return nil, invalid(`permissions are required: [{"project": "team", "actions": ["pull", "push"]}]`)
	}
	out := make([]auth.RobotPermission, 0, len(perms))
	for _, p := range perms {
		switch {
		case project != "" && p.Project == "":
			p.Project = project
		case project != "" && p.Project != project:
			return nil, invalid("a robot of project %s has permissions in %s only", project, project)
		case p.Project == "*":
		default:
			if err := validProject(p.Project); err != nil {
				return nil, err
			}
		}
		if len(p.Actions) == 0 {
			return nil, invalid("permission on %s: actions are required (pull, push, delete)", p.Project)
		}
		var actions []auth.Action
		for _, act := range p.Actions {
			if !slices.Contains(robotActions, act) {
				return nil, invalid("action %q: want pull, push, delete or metrics", act)
			}
			if act == auth.Metrics && p.Project != "*" {
				// Metrics are registry-wide: a project robot reading them would see
				// other projects' names and traffic.
				return nil, invalid(`action metrics: only for system robots, on project "*"`)
			}
			if !slices.Contains(actions, act) {
				actions = append(actions, act)
			}
		}
		p.Actions = actions
		out = append(out, p)
	}
	return out, nil
}

func permissionsText(perms []auth.RobotPermission) string {
	var parts []string
	for _, p := range perms {
		acts := make([]string, len(p.Actions))
		for i, a := range p.Actions {
			acts[i] = string(a)
		}
		parts = append(parts, p.Project+":"+strings.Join(acts, ","))
	}
	return strings.Join(parts, " ")
}

// newSecret returns 32 random bytes, base64url.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// parseExpiresIn parses a duration: Go's (90m, 12h) or whole days (30d).
func parseExpiresIn(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 36500 {
			return 0, invalid("expiresIn %q: want a duration such as 30d, 12h or 90m", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, invalid("expiresIn %q: want a positive duration such as 30d, 12h or 90m", s)
	}
	return d, nil
}

type createRobotRequest struct {
	Name        string                 `json:"name"` // the suffix: ci → robot$ci or robot$team+ci
	Permissions []auth.RobotPermission `json:"permissions"`
	ExpiresIn   string                 `json:"expiresIn"`
	ExpiresAt   *time.Time             `json:"expiresAt"`
}

func (a *API) createRobot(w http.ResponseWriter, r *http.Request, c *caller) error {
	project, err := a.robotScope(r, c)
	if err != nil {
		return err
	}
	var req createRobotRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if strings.Contains(req.Name, "$") || strings.Contains(req.Name, "+") {
		return invalid("robot name %q: give the suffix only (ci); the full name is made from it", req.Name)
	}
	name, err := robotName(project, req.Name)
	if err != nil {
		return err
	}
	perms, err := validPermissions(project, req.Permissions)
	if err != nil {
		return err
	}
	var expires time.Time
	switch {
	case req.ExpiresIn != "" && req.ExpiresAt != nil:
		return invalid("set expiresIn or expiresAt, not both")
	case req.ExpiresIn != "":
		d, err := parseExpiresIn(req.ExpiresIn)
		if err != nil {
			return err
		}
		expires = time.Now().Add(d)
	case req.ExpiresAt != nil:
		if !req.ExpiresAt.After(time.Now()) {
			return invalid("expiresAt %s is in the past", req.ExpiresAt.Format(time.RFC3339))
		}
		expires = *req.ExpiresAt
	}
	secret := newSecret()
	hash, err := auth.HashPassword(secret)
	if err != nil {
		return err
	}
	permJSON, err := json.Marshal(perms)
	if err != nil {
		return err
	}
	rb, err := a.meta.CreateRobot(r.Context(), meta.Robot{Name: name, Project: project, SecretHash: hash,
		Permissions: string(permJSON), ExpiresAt: expires})
	if err != nil {
		if project != "" && errors.Is(err, meta.ErrNotFound) {
			return storeErr(err, "project "+project)
		}
		return storeErr(err, "robot "+name)
	}
	out, err := toRobot(rb)
	if err != nil {
		return err
	}
	detail := "permissions=" + permissionsText(perms)
	if !expires.IsZero() {
		detail += " expires=" + expires.UTC().Format(time.RFC3339)
	}
	a.record(c, "robot.create", name, detail)
	w.Header().Set("Location", Prefix+robotsPath(project)+"/"+name)
	return writeJSON(w, http.StatusCreated, robotWithSecret{robot: out, Secret: secret})
}

func robotsPath(project string) string {
	if project == "" {
		return "/robots"
	}
	return "/projects/" + project + "/robots"
}

func (a *API) listRobots(w http.ResponseWriter, r *http.Request, c *caller) error {
	project, err := a.robotScope(r, c)
	if err != nil {
		return err
	}
	rbs, err := a.meta.Robots(r.Context(), project)
	if err != nil {
		return storeErr(err, "")
	}
	out := []robot{}
	for _, rb := range rbs {
		if rb.Project != project {
			continue // the store lists every robot for project ""
		}
		v, err := toRobot(rb)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"robots": out})
}

func (a *API) getRobot(w http.ResponseWriter, r *http.Request, c *caller) error {
	rb, err := a.pathRobot(r, c)
	if err != nil {
		return err
	}
	out, err := toRobot(rb)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

type patchRobotRequest struct {
	Disabled    *bool                   `json:"disabled"`
	Permissions *[]auth.RobotPermission `json:"permissions"`
}

func (a *API) patchRobot(w http.ResponseWriter, r *http.Request, c *caller) error {
	rb, err := a.pathRobot(r, c)
	if err != nil {
		return err
	}
	var req patchRobotRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Disabled == nil && req.Permissions == nil {
		return invalid("nothing to change: set disabled or permissions")
	}
	var changed []string
	if req.Permissions != nil {
		perms, err := validPermissions(rb.Project, *req.Permissions)
		if err != nil {
			return err
		}
		b, err := json.Marshal(perms)
		if err != nil {
			return err
		}
		rb.Permissions = string(b)
		changed = append(changed, "permissions="+permissionsText(perms))
	}
	if req.Disabled != nil {
		rb.Disabled = *req.Disabled
		changed = append(changed, fmt.Sprintf("disabled=%t", rb.Disabled))
	}
	if err := a.meta.UpdateRobot(r.Context(), rb); err != nil {
		return storeErr(err, "robot "+rb.Name)
	}
	a.svc.Forget(rb.Name)
	a.record(c, "robot.update", rb.Name, strings.Join(changed, " "))
	out, err := toRobot(rb)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// rotateRobot replaces the secret; the old one stops working at once on this replica.
func (a *API) rotateRobot(w http.ResponseWriter, r *http.Request, c *caller) error {
	rb, err := a.pathRobot(r, c)
	if err != nil {
		return err
	}
	secret := newSecret()
	if rb.SecretHash, err = auth.HashPassword(secret); err != nil {
		return err
	}
	if err := a.meta.UpdateRobot(r.Context(), rb); err != nil {
		return storeErr(err, "robot "+rb.Name)
	}
	a.svc.Forget(rb.Name)
	a.record(c, "robot.rotate", rb.Name, "")
	out, err := toRobot(rb)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, robotWithSecret{robot: out, Secret: secret})
}

func (a *API) deleteRobot(w http.ResponseWriter, r *http.Request, c *caller) error {
	rb, err := a.pathRobot(r, c)
	if err != nil {
		return err
	}
	if err := a.meta.DeleteRobot(r.Context(), rb.Name); err != nil {
		return storeErr(err, "robot "+rb.Name)
	}
	a.svc.Forget(rb.Name)
	a.record(c, "robot.delete", rb.Name, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
