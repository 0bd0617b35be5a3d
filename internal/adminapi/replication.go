package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/replication"
)

// Replication is what the API needs of replication rules (package replication).
type Replication interface {
	Create(ctx context.Context, r replication.Rule) (replication.Rule, error)
	Rules(ctx context.Context) ([]replication.Rule, error)
	Rule(ctx context.Context, id int64) (replication.Rule, error)
	SetEnabled(ctx context.Context, id int64, on bool) (replication.Rule, error)
	Delete(ctx context.Context, id int64) error
	Start(ctx context.Context, id int64) error
	Executions(ctx context.Context, id int64, n int) ([]replication.Execution, error)
	Execution(ctx context.Context, id int64) (replication.Execution, error)
}

// WithReplication serves replication rules from r (nil: UNSUPPORTED).
func (a *API) WithReplication(r Replication) *API {
	a.replication = r
	return a
}

func replicationErr(err error, what string) error {
	var inv *replication.InvalidError
	switch {
	case errors.As(err, &inv):
		return invalid("%s", inv.Error())
	case errors.Is(err, replication.ErrNotFound):
		return errcode.NotFound.New(what + " not found")
	case errors.Is(err, meta.ErrExists):
		return errcode.Conflict.New(what + " already exists")
	}
	return storeErr(err, what)
}

// replicationRoute checks a replication route: rules hold other registries'
// credentials and write anywhere, so they are for system administrators.
func (a *API) replicationRoute(r *http.Request, c *caller, params ...string) error {
	if a.replication == nil {
		return errcode.Unsupported.New("replication is not available on this server (replication.enabled is off)")
	}
	if err := onlyParams(r, params...); err != nil {
		return err
	}
	return requireAdmin(c)
}

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, invalid("%s must be an id (a positive number)", name)
	}
	return id, nil
}

func (a *API) listReplicationRules(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.replicationRoute(r, c); err != nil {
		return err
	}
	rules, err := a.replication.Rules(r.Context())
	if err != nil {
		return replicationErr(err, "")
	}
	return writeJSON(w, http.StatusOK, rules)
}

func (a *API) createReplicationRule(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.replicationRoute(r, c); err != nil {
		return err
	}
	var in replication.Rule
	if err := decode(w, r, &in); err != nil {
		return err
	}
	in.ID, in.CreatedBy = 0, c.p.Name
	out, err := a.replication.Create(r.Context(), in)
	if err != nil {
		return replicationErr(err, "replication rule "+in.Name)
	}
	a.record(c, "replication.create", "replication$"+out.Name, fmt.Sprintf("%s %s", out.Direction, out.Remote.URL))
	return writeJSON(w, http.StatusCreated, out)
}

func (a *API) getReplicationRule(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.replicationRoute(r, c); err != nil {
		return err
	}
	id, err := pathID(r, "rule")
	if err != nil {
		return err
	}
	rule, err := a.replication.Rule(r.Context(), id)
	if err != nil {
		return replicationErr(err, fmt.Sprintf("replication rule %d", id))
	}
	return writeJSON(w, http.StatusOK, rule)
}

func (a *API) patchReplicationRule(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.replicationRoute(r, c); err != nil {
		return err
	}
	id, err := pathID(r, "rule")
	if err != nil {
		return err
	}
	var p struct {
		Enabled *bool `json:"enabled"`
	}
	if err := decode(w, r, &p); err != nil {
		return err
	}
	if p.Enabled == nil {
		return invalid("give enabled (true or false)")
	}
	rule, err := a.replication.SetEnabled(r.Context(), id, *p.Enabled)
	if err != nil {
		return replicationErr(err, fmt.Sprintf("replication rule %d", id))
	}
	a.record(c, "replication.update", "replication$"+rule.Name, fmt.Sprintf("enabled %v", rule.Enabled))
	return writeJSON(w, http.StatusOK, rule)
}

func (a *API) deleteReplicationRule(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.replicationRoute(r, c); err != nil {
		return err
	}
	id, err := pathID(r, "rule")
	if err != nil {
		return err
	}
	if err := a.replication.Delete(r.Context(), id); err != nil {
		return replicationErr(err, fmt.Sprintf("replication rule %d", id))
	}
	a.record(c, "replication.delete", fmt.Sprintf("replication$%d", id), "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) runReplicationRule(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.replicationRoute(r, c); err != nil {
		return err
	}
	id, err := pathID(r, "rule")
	if err != nil {
		return err
	}
	if err := a.replication.Start(r.Context(), id); err != nil {
		return replicationErr(err, fmt.Sprintf("replication rule %d", id))
	}
	a.record(c, "replication.run", fmt.Sprintf("replication$%d", id), "")
	return writeJSON(w, http.StatusAccepted, map[string]string{"state": "queued"})
}

func (a *API) listReplicationExecutions(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.replicationRoute(r, c, "n"); err != nil {
		return err
	}
	id, err := pathID(r, "rule")
	if err != nil {
		return err
	}
	n := 50
	if s := r.URL.Query().Get("n"); s != "" {
		if n, err = strconv.Atoi(s); err != nil || n < 1 || n > 1000 {
			return invalid("n must be an integer from 1 to 1000")
		}
	}
	if _, err := a.replication.Rule(r.Context(), id); err != nil {
		return replicationErr(err, fmt.Sprintf("replication rule %d", id))
	}
	ex, err := a.replication.Executions(r.Context(), id, n)
	if err != nil {
		return replicationErr(err, "")
	}
	return writeJSON(w, http.StatusOK, ex)
}

func (a *API) getReplicationExecution(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.replicationRoute(r, c); err != nil {
		return err
	}
	id, err := pathID(r, "execution")
	if err != nil {
		return err
	}
	ex, err := a.replication.Execution(r.Context(), id)
	if err != nil {
		return replicationErr(err, fmt.Sprintf("replication execution %d", id))
	}
	return writeJSON(w, http.StatusOK, ex)
}
