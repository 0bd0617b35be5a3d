package adminapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

type auditEntry struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	ActorType string    `json:"actorType"`
	Action    string    `json:"action"`
	Resource  string    `json:"resource"`
	Result    string    `json:"result"`
	Remote    string    `json:"remote"`
	Detail    string    `json:"detail,omitempty"`
}

// listAudit serves the audit trail, newest first, filtered, one page at a time: the
// Link header's URL continues before the page's last entry. System administrators see
// every entry, project administrators those about their projects.
func (a *API) listAudit(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := onlyParams(r, "actor", "action", "resource", "result", "since", "until", "limit", "before"); err != nil {
		return err
	}
	q := r.URL.Query()
	f := meta.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Resource: q.Get("resource"), Result: q.Get("result"), Limit: 100}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(t.name); s != "" {
			v, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return invalid("%s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", t.name, s)
			}
			*t.dst = v
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return invalid("limit must be an integer from 1 to 1000")
		}
		f.Limit = n
	}
	if s := q.Get("before"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 1 {
			return invalid("before must be a positive entry id")
		}
		f.BeforeID = id
	}
	projects, err := a.adminProjects(r.Context(), c)
	if err != nil {
		return err
	}
	if projects != nil && len(projects) == 0 {
		return denied("the audit trail is for system administrators and project administrators")
	}
	f.Projects = projects
	entries, err := a.meta.Audit(r.Context(), f)
	if err != nil {
		return storeErr(err, "")
	}
	out := []auditEntry{}
	for _, e := range entries {
		out = append(out, auditEntry{ID: e.ID, At: e.At.UTC(), Actor: e.Actor, ActorType: e.ActorType, Action: e.Action,
			Resource: e.Resource, Result: e.Result, Remote: e.Remote, Detail: e.Detail})
	}
	if len(out) == f.Limit {
		setNext(w, r, "before", strconv.FormatInt(out[len(out)-1].ID, 10))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"entries": out})
}
