package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/meta"
)

// Webhooks is what the API needs of webhook subscriptions (package events).
type Webhooks interface {
	Create(ctx context.Context, s events.Subscription) (events.Subscription, error)
	Update(ctx context.Context, id int64, p events.Patch) (events.Subscription, error)
	Delete(ctx context.Context, id int64) error
	Subscription(ctx context.Context, id int64) (events.Subscription, error)
	Subscriptions(ctx context.Context, project string, all bool) ([]events.Subscription, error)
	Deliveries(ctx context.Context, id int64, f events.DeliveryFilter) ([]events.Delivery, error)
	Delivery(ctx context.Context, id, delivery int64) (events.Delivery, error)
	Replay(ctx context.Context, id int64, deliveries []int64) ([]int64, error)
	Ping(ctx context.Context, id int64, actor string) (int64, error)
}

// WithWebhooks serves webhook subscriptions from w (nil: UNSUPPORTED).
func (a *API) WithWebhooks(w Webhooks) *API {
	a.webhooks = w
	return a
}

func webhookErr(err error, what string) error {
	var inv *events.InvalidError
	switch {
	case errors.As(err, &inv):
		return invalid("%s", inv.Error())
	case errors.Is(err, events.ErrNotFound):
		return errcode.NotFound.New(what + " not found")
	}
	return storeErr(err, what)
}

func (a *API) webhooksOn() error {
	if a.webhooks == nil {
		return errcode.Unsupported.New("webhooks are not available on this server (events.enabled is off)")
	}
	return nil
}

// webhookInput is a subscription as a client creates it.
type webhookInput struct {
	Name         string   `json:"name"`
	URL          string   `json:"url"`
	Format       string   `json:"format"`
	Events       []string `json:"events"`
	Repositories []string `json:"repositories"`
	Secret       string   `json:"secret"`
	Enabled      *bool    `json:"enabled"`
}

func (a *API) createWebhook(w http.ResponseWriter, r *http.Request, c *caller, project string) error {
	var in webhookInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	enabled := in.Enabled == nil || *in.Enabled
	sub, err := a.webhooks.Create(r.Context(), events.Subscription{Name: in.Name, Project: project, URL: in.URL, Format: in.Format,
		Events: in.Events, Repositories: in.Repositories, Secret: in.Secret, Enabled: enabled, CreatedBy: c.p.Name})
	if errors.Is(err, meta.ErrExists) {
		return errcode.Conflict.New(fmt.Sprintf("a webhook named %s already exists here", in.Name))
	}
	if err != nil {
		return webhookErr(err, "")
	}
	a.record(c, "webhook.create", webhookResource(sub), "url "+sub.URL)
	return writeJSON(w, http.StatusCreated, sub) // the only answer carrying the secret
}

// webhookResource names a subscription in the audit trail.
func webhookResource(s events.Subscription) string {
	if s.Project == "" {
		return fmt.Sprintf("webhook$%d", s.ID)
	}
	return fmt.Sprintf("%s/webhook$%d", s.Project, s.ID)
}

// listWebhooks lists every subscription (system administrators).
func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.webhooksOn(); err != nil {
		return err
	}
	if err := onlyParams(r); err != nil {
		return err
	}
	if err := requireAdmin(c); err != nil {
		return err
	}
	subs, err := a.webhooks.Subscriptions(r.Context(), "", true)
	if err != nil {
		return webhookErr(err, "")
	}
	return writeJSON(w, http.StatusOK, subs)
}

// createSystemWebhook creates a system-wide subscription (system administrators).
func (a *API) createSystemWebhook(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.webhooksOn(); err != nil {
		return err
	}
	if err := onlyParams(r); err != nil {
		return err
	}
	if err := requireAdmin(c); err != nil {
		return err
	}
	return a.createWebhook(w, r, c, "")
}

// webhooksProject checks a project webhook route: the project's administrators only
// (subscriptions show where its events go).
func (a *API) webhooksProject(r *http.Request, c *caller) (string, error) {
	if err := a.webhooksOn(); err != nil {
		return "", err
	}
	return a.projectRoute(r, c, true)
}

func (a *API) listProjectWebhooks(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := a.webhooksProject(r, c)
	if err != nil {
		return err
	}
	subs, err := a.webhooks.Subscriptions(r.Context(), name, false)
	if err != nil {
		return webhookErr(err, "")
	}
	return writeJSON(w, http.StatusOK, subs)
}

func (a *API) createProjectWebhook(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := a.webhooksProject(r, c)
	if err != nil {
		return err
	}
	return a.createWebhook(w, r, c, name)
}

// pathWebhook loads the {webhook} of the path and checks the caller administers it:
// system-wide ones belong to system administrators, a project's to its administrators.
func (a *API) pathWebhook(r *http.Request, c *caller, params ...string) (events.Subscription, error) {
	if err := a.webhooksOn(); err != nil {
		return events.Subscription{}, err
	}
	if err := onlyParams(r, params...); err != nil {
		return events.Subscription{}, err
	}
	id, err := strconv.ParseInt(r.PathValue("webhook"), 10, 64)
	if err != nil || id <= 0 {
		return events.Subscription{}, invalid("webhook must be a webhook id (a positive number)")
	}
	sub, err := a.webhooks.Subscription(r.Context(), id)
	if errors.Is(err, events.ErrNotFound) && !c.p.Admin {
		return sub, denied("only administrators of a webhook's project may do this") // absent looks like foreign
	}
	if err != nil {
		return sub, webhookErr(err, fmt.Sprintf("webhook %d", id))
	}
	if sub.Project == "" {
		err = requireAdmin(c)
	} else {
		err = a.requireProjectAdmin(r.Context(), c, sub.Project)
	}
	return sub, err
}

func (a *API) getWebhook(w http.ResponseWriter, r *http.Request, c *caller) error {
	sub, err := a.pathWebhook(r, c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sub)
}

func (a *API) patchWebhook(w http.ResponseWriter, r *http.Request, c *caller) error {
	sub, err := a.pathWebhook(r, c)
	if err != nil {
		return err
	}
	var p events.Patch
	if err := decode(w, r, &p); err != nil {
		return err
	}
	out, err := a.webhooks.Update(r.Context(), sub.ID, p)
	if err != nil {
		return webhookErr(err, fmt.Sprintf("webhook %d", sub.ID))
	}
	detail := "updated"
	if p.RotateSecret {
		detail = "secret rotated"
	}
	a.record(c, "webhook.update", webhookResource(out), detail)
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request, c *caller) error {
	sub, err := a.pathWebhook(r, c)
	if err != nil {
		return err
	}
	if err := a.webhooks.Delete(r.Context(), sub.ID); err != nil {
		return webhookErr(err, fmt.Sprintf("webhook %d", sub.ID))
	}
	a.record(c, "webhook.delete", webhookResource(sub), "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) pingWebhook(w http.ResponseWriter, r *http.Request, c *caller) error {
	sub, err := a.pathWebhook(r, c)
	if err != nil {
		return err
	}
	id, err := a.webhooks.Ping(r.Context(), sub.ID, c.p.Name)
	if err != nil {
		return webhookErr(err, "")
	}
	return writeJSON(w, http.StatusAccepted, map[string]int64{"delivery": id})
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, c *caller) error {
	sub, err := a.pathWebhook(r, c, "state", "before", "n")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := events.DeliveryFilter{State: q.Get("state"), Limit: 100}
	switch f.State {
	case "", events.Pending, events.Delivered, events.Failed, events.Skipped:
	default:
		return invalid("state must be pending, delivered, failed or skipped")
	}
	if s := q.Get("n"); s != "" {
		if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit < 1 || f.Limit > 1000 {
			return invalid("n must be an integer from 1 to 1000")
		}
	}
	if s := q.Get("before"); s != "" {
		if f.Before, err = strconv.ParseInt(s, 10, 64); err != nil || f.Before < 1 {
			return invalid("before must be a delivery id")
		}
	}
	ds, err := a.webhooks.Deliveries(r.Context(), sub.ID, f)
	if err != nil {
		return webhookErr(err, "")
	}
	if len(ds) == f.Limit {
		setNext(w, r, "before", strconv.FormatInt(ds[len(ds)-1].ID, 10))
	}
	return writeJSON(w, http.StatusOK, ds)
}

func pathDelivery(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	if err != nil || id <= 0 {
		return 0, invalid("delivery must be a delivery id (a positive number)")
	}
	return id, nil
}

func (a *API) getDelivery(w http.ResponseWriter, r *http.Request, c *caller) error {
	sub, err := a.pathWebhook(r, c)
	if err != nil {
		return err
	}
	id, err := pathDelivery(r)
	if err != nil {
		return err
	}
	d, err := a.webhooks.Delivery(r.Context(), sub.ID, id)
	if err != nil {
		return webhookErr(err, fmt.Sprintf("delivery %d of webhook %d", id, sub.ID))
	}
	return writeJSON(w, http.StatusOK, d)
}

// replayDelivery sends one delivery's event again.
func (a *API) replayDelivery(w http.ResponseWriter, r *http.Request, c *caller) error {
	sub, err := a.pathWebhook(r, c)
	if err != nil {
		return err
	}
	id, err := pathDelivery(r)
	if err != nil {
		return err
	}
	return a.replay(w, c, r, sub, []int64{id})
}

// replayFailed sends every failed delivery of the webhook again.
func (a *API) replayFailed(w http.ResponseWriter, r *http.Request, c *caller) error {
	sub, err := a.pathWebhook(r, c)
	if err != nil {
		return err
	}
	return a.replay(w, c, r, sub, nil)
}

func (a *API) replay(w http.ResponseWriter, c *caller, r *http.Request, sub events.Subscription, ids []int64) error {
	out, err := a.webhooks.Replay(r.Context(), sub.ID, ids)
	if err != nil {
		return webhookErr(err, fmt.Sprintf("delivery of webhook %d", sub.ID))
	}
	if out == nil {
		out = []int64{}
	}
	a.record(c, "webhook.replay", webhookResource(sub), fmt.Sprintf("%d deliveries", len(out)))
	return writeJSON(w, http.StatusAccepted, map[string][]int64{"deliveries": out})
}
