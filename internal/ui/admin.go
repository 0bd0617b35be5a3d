package ui

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/proxy"
)

// Mirror reports the mirror's upstreams (package proxy) for the mirror page.
type Mirror interface {
	Status() []proxy.UpstreamStatus
}

type userJSON struct {
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Admin     bool      `json:"admin"`
	Source    string    `json:"source"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"createdAt"`
}

func (u *UI) users(w http.ResponseWriter, r *http.Request, v *visit) error {
	q := url.Values{"n": {strconv.Itoa(pageSize)}}
	if last := r.URL.Query().Get("last"); last != "" {
		q.Set("last", last)
	}
	var out struct{ Users []userJSON }
	h, err := u.get(r, v, "/users", q, &out)
	if err != nil {
		return err
	}
	u.render(w, r, v, http.StatusOK, "users", map[string]any{"Title": "Users", "Users": out.Users, "Next": nextParam(h, "last")})
	return nil
}

func (u *UI) createUser(w http.ResponseWriter, r *http.Request, v *visit) error {
	body := map[string]any{
		"name": strings.TrimSpace(r.PostFormValue("name")), "password": r.PostFormValue("password"),
		"email": strings.TrimSpace(r.PostFormValue("email")), "admin": r.PostFormValue("admin") == "on",
	}
	if _, err := u.call(r, v, http.MethodPost, "/users", nil, body, nil); err != nil {
		return err
	}
	return back(w, r, "/admin/users")
}

// updateUser applies one of the user row's buttons: admin on/off, disable/enable.
func (u *UI) updateUser(w http.ResponseWriter, r *http.Request, v *visit) error {
	name := r.PathValue("user")
	body := map[string]any{}
	switch r.PostFormValue("set") {
	case "admin":
		body["admin"] = true
	case "not-admin":
		body["admin"] = false
	case "disabled":
		body["disabled"] = true
	case "enabled":
		body["disabled"] = false
	default:
		return errStatus(http.StatusBadRequest, "unknown change")
	}
	if _, err := u.call(r, v, http.MethodPatch, "/users/"+url.PathEscape(name), nil, body, nil); err != nil {
		return err
	}
	if body["disabled"] == true {
		_ = u.d.Sessions.EndAll(r.Context(), name) // a disabled account is logged out everywhere
	}
	return back(w, r, "/admin/users")
}

func (u *UI) deleteUser(w http.ResponseWriter, r *http.Request, v *visit) error {
	name := r.PathValue("user")
	if _, err := u.call(r, v, http.MethodDelete, "/users/"+url.PathEscape(name), nil, nil, nil); err != nil {
		return err
	}
	_ = u.d.Sessions.EndAll(r.Context(), name)
	return back(w, r, "/admin/users")
}

type auditJSON struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	ActorType string    `json:"actorType"`
	Action    string    `json:"action"`
	Resource  string    `json:"resource"`
	Result    string    `json:"result"`
	Remote    string    `json:"remote"`
	Detail    string    `json:"detail"`
}

// audit lists the trail, newest first, filtered as the API filters (project admins see
// their projects' entries).
func (u *UI) audit(w http.ResponseWriter, r *http.Request, v *visit) error {
	in := r.URL.Query()
	q := url.Values{"limit": {strconv.Itoa(pageSize)}}
	filters := map[string]string{}
	for _, k := range []string{"actor", "action", "resource", "result", "before"} {
		if s := strings.TrimSpace(in.Get(k)); s != "" {
			q.Set(k, s)
			filters[k] = s
		}
	}
	var out struct{ Entries []auditJSON }
	if _, err := u.get(r, v, "/audit", q, &out); err != nil {
		return err
	}
	next := ""
	if len(out.Entries) == pageSize {
		nq := url.Values{}
		for k, s := range filters {
			nq.Set(k, s)
		}
		nq.Set("before", strconv.FormatInt(out.Entries[len(out.Entries)-1].ID, 10))
		next = "?" + nq.Encode()
	}
	u.render(w, r, v, http.StatusOK, "audit", map[string]any{"Title": "Audit log", "Entries": out.Entries, "Filters": filters, "Next": next})
	return nil
}

func (u *UI) account(w http.ResponseWriter, r *http.Request, v *visit) error {
	var me struct {
		Name, Email, Source, Kind string
		Admin                     bool
		Groups                    []string
	}
	if _, err := u.get(r, v, "/users/me", nil, &me); err != nil {
		return err
	}
	sessions, err := u.d.Sessions.Store().List(r.Context(), v.s.User)
	if err != nil {
		return err
	}
	data := map[string]any{"Title": "Account", "Me": me, "Sessions": sessions, "Current": v.s}
	if u.d.CLISecrets != nil && me.Source == "oidc" {
		created, exists, err := u.d.CLISecrets.Status(r.Context(), v.s.User)
		if err != nil {
			return err
		}
		data["CLI"] = map[string]any{"Created": created, "Exists": exists}
	}
	u.render(w, r, v, http.StatusOK, "account", data)
	return nil
}

// rotateCLISecret makes a new CLI secret and shows it once, on this answer only.
func (u *UI) rotateCLISecret(w http.ResponseWriter, r *http.Request, v *visit) error {
	if u.d.CLISecrets == nil {
		return errStatus(http.StatusNotFound, "CLI secrets belong to OpenID Connect logins, which are not configured")
	}
	secret, err := u.d.CLISecrets.Rotate(r.Context(), v.s.User)
	if err != nil {
		return err
	}
	u.render(w, r, v, http.StatusOK, "secret", map[string]any{"Title": "CLI secret", "User": v.s.User, "Secret": secret, "Host": registryHost(r)})
	return nil
}

func (u *UI) mirror(w http.ResponseWriter, r *http.Request, v *visit) error {
	if !v.p.Admin {
		return errStatus(http.StatusForbidden, "only system administrators see the mirror's upstreams")
	}
	var ups []proxy.UpstreamStatus
	if u.d.Mirror != nil {
		ups = u.d.Mirror.Status()
	}
	sort.Slice(ups, func(i, j int) bool { return ups[i].Name < ups[j].Name })
	type row struct {
		proxy.UpstreamStatus
		Cached []repositoryJSON
	}
	var rows []row
	for _, s := range ups {
		var out struct{ Repositories []repositoryJSON }
		_, _ = u.get(r, v, "/projects/"+url.PathEscape(s.Name)+"/repositories", url.Values{"sort": {"pulled"}, "n": {"20"}}, &out)
		rows = append(rows, row{UpstreamStatus: s, Cached: out.Repositories})
	}
	u.render(w, r, v, http.StatusOK, "mirror", map[string]any{"Title": "Mirror", "Upstreams": rows})
	return nil
}

// warm caches the listed images now and shows what happened.
func (u *UI) warm(w http.ResponseWriter, r *http.Request, v *visit) error {
	var images []string
	for _, l := range strings.Fields(r.PostFormValue("images")) {
		images = append(images, l)
	}
	rec, err := u.do(r, v, http.MethodPost, "/mirror/warm", nil, map[string]any{"images": images})
	if err != nil {
		return err
	}
	// The API streams one JSON object per line: progress, then the summary.
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(rec.body.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			lines = append(lines, m)
		}
	}
	u.render(w, r, v, http.StatusOK, "warm", map[string]any{"Title": "Warm-up", "Lines": lines})
	return nil
}
