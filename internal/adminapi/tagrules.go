package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/tagrules"
)

// TagRules is what the API needs of retention policies and immutable-tag rules
// (package tagrules).
type TagRules interface {
	Policy(ctx context.Context, project string) (tagrules.StoredPolicy, error)
	PutPolicy(ctx context.Context, project string, p tagrules.Policy) (tagrules.StoredPolicy, error)
	DeletePolicy(ctx context.Context, project string) error
	Run(ctx context.Context, project string, dryRun bool, actor string) (tagrules.Report, error)
	ImmutableRules(ctx context.Context, project string) ([]tagrules.ImmutableRule, error)
	AddImmutable(ctx context.Context, r tagrules.ImmutableRule) (tagrules.ImmutableRule, error)
	DeleteImmutable(ctx context.Context, project string, id int64) error
}

// WithTagRules serves retention and immutability from t.
func (a *API) WithTagRules(t TagRules) *API {
	a.tagRules = t
	return a
}

// tagRulesErr maps the rules' errors to the API's.
func tagRulesErr(err error, what string) error {
	var inv *tagrules.InvalidError
	switch {
	case errors.As(err, &inv):
		return invalid("%s", inv.Error())
	case errors.Is(err, tagrules.ErrNotFound):
		return errcode.NotFound.New(what + " not found")
	case errors.Is(err, tagrules.ErrMirrored), errors.Is(err, tagrules.ErrExists):
		return errcode.Conflict.New(err.Error())
	}
	return storeErr(err, what)
}

// tagRulesProject parses the project of a rules route and checks the caller's right:
// changes are for the project's administrators, reads for whoever sees the project.
func (a *API) tagRulesProject(r *http.Request, c *caller, change bool, params ...string) (string, error) {
	if a.tagRules == nil {
		return "", errcode.Unsupported.New("retention and immutable-tag rules are not available on this server")
	}
	return a.projectRoute(r, c, change, params...)
}

// projectRoute parses a project settings route's project (retention, immutability,
// scan policy) and checks the caller's right: changes are for the project's
// administrators, reads for whoever sees the project.
func (a *API) projectRoute(r *http.Request, c *caller, change bool, params ...string) (string, error) {
	if err := onlyParams(r, params...); err != nil {
		return "", err
	}
	name, err := pathProject(r)
	if err != nil {
		return "", err
	}
	ctx := r.Context()
	if change {
		err = a.requireProjectAdmin(ctx, c, name)
	} else if ok, verr := a.visible(ctx, c, name); verr != nil {
		err = verr
	} else if !ok {
		err = denied("project " + name + " is not visible to you")
	}
	if err != nil {
		return "", err
	}
	if _, err := a.meta.ProjectByName(ctx, name); err != nil {
		return "", storeErr(err, "project "+name)
	}
	return name, nil
}

func (a *API) getRetention(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := a.tagRulesProject(r, c, false)
	if err != nil {
		return err
	}
	p, err := a.tagRules.Policy(r.Context(), name)
	if err != nil {
		return tagRulesErr(err, "retention policy of project "+name)
	}
	return writeJSON(w, http.StatusOK, p)
}

func (a *API) putRetention(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := a.tagRulesProject(r, c, true)
	if err != nil {
		return err
	}
	var p tagrules.Policy
	if err := decode(w, r, &p); err != nil {
		return err
	}
	stored, err := a.tagRules.PutPolicy(r.Context(), name, p)
	if err != nil {
		return tagRulesErr(err, "")
	}
	a.record(c, "retention.put", name, fmt.Sprintf("%d rules, schedule %s", len(p.Rules), scheduleText(p.Schedule)))
	return writeJSON(w, http.StatusOK, stored)
}

func scheduleText(d tagrules.Duration) string {
	if d <= 0 {
		return "by hand"
	}
	b, _ := d.MarshalJSON()
	return string(b[1 : len(b)-1])
}

func (a *API) deleteRetention(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := a.tagRulesProject(r, c, true)
	if err != nil {
		return err
	}
	if err := a.tagRules.DeletePolicy(r.Context(), name); err != nil {
		return tagRulesErr(err, "retention policy of project "+name)
	}
	a.record(c, "retention.delete", name, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// runRetention runs the policy now. A dry run (?dryRun=true) shows what would go to
// anyone who sees the project; a real run is for its administrators.
func (a *API) runRetention(w http.ResponseWriter, r *http.Request, c *caller) error {
	dry, err := boolParam(r, "dryRun")
	if err != nil {
		return err
	}
	name, err := a.tagRulesProject(r, c, !dry, "dryRun")
	if err != nil {
		return err
	}
	rep, err := a.tagRules.Run(r.Context(), name, dry, c.p.Name)
	if err != nil {
		return tagRulesErr(err, "retention policy of project "+name)
	}
	if !dry {
		a.record(c, "retention.run", name, rep.Summary())
	}
	return writeJSON(w, http.StatusOK, rep)
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalid("%s must be true or false", name)
	}
	return b, nil
}

func (a *API) listImmutable(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := a.tagRulesProject(r, c, false)
	if err != nil {
		return err
	}
	rules, err := a.tagRules.ImmutableRules(r.Context(), name)
	if err != nil {
		return tagRulesErr(err, "")
	}
	if rules == nil {
		rules = []tagrules.ImmutableRule{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"rules": rules})
}

type immutablePost struct {
	Tags         string `json:"tags"`
	Repositories string `json:"repositories"`
}

func (a *API) addImmutable(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := a.tagRulesProject(r, c, true)
	if err != nil {
		return err
	}
	var req immutablePost
	if err := decode(w, r, &req); err != nil {
		return err
	}
	rule, err := a.tagRules.AddImmutable(r.Context(), tagrules.ImmutableRule{Project: name, Tags: req.Tags, Repositories: req.Repositories})
	if err != nil {
		return tagRulesErr(err, "")
	}
	a.record(c, "immutable.add", name, rule.String())
	return writeJSON(w, http.StatusCreated, rule)
}

func (a *API) deleteImmutable(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := a.tagRulesProject(r, c, true)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("rule"), 10, 64)
	if err != nil || id <= 0 {
		return invalid("rule must be a rule id (a positive number)")
	}
	if err := a.tagRules.DeleteImmutable(r.Context(), name, id); err != nil {
		return tagRulesErr(err, fmt.Sprintf("immutable rule %d of project %s", id, name))
	}
	a.record(c, "immutable.delete", name, fmt.Sprintf("rule %d", id))
	w.WriteHeader(http.StatusNoContent)
	return nil
}
