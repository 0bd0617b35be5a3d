package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/quota"
)

// Quotas is what the API needs of project byte quotas (package quota).
type Quotas interface {
	Usage(ctx context.Context, project string) (quota.Usage, error)
	All(ctx context.Context) ([]quota.Usage, error)
	Set(ctx context.Context, project string, limit int64) (quota.Usage, error)
}

// WithQuotas serves project quotas and usage from q.
func (a *API) WithQuotas(q Quotas) *API {
	a.quotas = q
	return a
}

// quotaBody is a project's quota and usage; QuotaBytes absent (null): unlimited.
type quotaBody struct {
	Project    string     `json:"project"`
	QuotaBytes *int64     `json:"quotaBytes"`
	UsageBytes int64      `json:"usageBytes"`
	UsageBlobs int64      `json:"usageBlobs"`
	UpdatedAt  *time.Time `json:"updatedAt,omitempty"`
}

func toQuota(u quota.Usage) quotaBody {
	b := quotaBody{Project: u.Project, UsageBytes: u.Bytes, UsageBlobs: u.Blobs}
	if u.Limit >= 0 {
		limit := u.Limit
		b.QuotaBytes = &limit
	}
	if !u.UpdatedAt.IsZero() {
		t := u.UpdatedAt.UTC()
		b.UpdatedAt = &t
	}
	return b
}

// withUsage fills the projects' quota and usage fields (left out without quotas).
func (a *API) withUsage(ctx context.Context, ps []project) error {
	if a.quotas == nil || len(ps) == 0 {
		return nil
	}
	byName := map[string]quota.Usage{}
	if len(ps) == 1 {
		u, err := a.quotas.Usage(ctx, ps[0].Name)
		if err != nil {
			return storeErr(err, "")
		}
		byName[u.Project] = u
	} else {
		all, err := a.quotas.All(ctx)
		if err != nil {
			return storeErr(err, "")
		}
		for _, u := range all {
			byName[u.Project] = u
		}
	}
	for i := range ps {
		u, ok := byName[ps[i].Name]
		if !ok {
			u = quota.Usage{Limit: quota.Unlimited}
		}
		q := toQuota(u)
		ps[i].QuotaBytes, ps[i].UsageBytes, ps[i].UsageBlobs = q.QuotaBytes, &q.UsageBytes, &q.UsageBlobs
	}
	return nil
}

func (a *API) quotasEnabled() error {
	if a.quotas == nil {
		return errcode.Unsupported.New("project quotas are not available on this server")
	}
	return nil
}

// getQuota serves a project's quota and usage to callers who can see the project.
func (a *API) getQuota(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.quotasEnabled(); err != nil {
		return err
	}
	name, err := pathProject(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if ok, err := a.visible(ctx, c, name); err != nil {
		return err
	} else if !ok {
		return denied("project " + name + " is not visible to you")
	}
	if _, err := a.meta.ProjectByName(ctx, name); err != nil {
		return storeErr(err, "project "+name)
	}
	u, err := a.quotas.Usage(ctx, name)
	if err != nil {
		return storeErr(err, "")
	}
	return writeJSON(w, http.StatusOK, toQuota(u))
}

type quotaPut struct {
	QuotaBytes *int64 `json:"quotaBytes"`
}

// putQuota sets (or, with quotaBytes null, removes) a project's quota: system
// administrators only, since quotas are the platform's budget for the project.
func (a *API) putQuota(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.quotasEnabled(); err != nil {
		return err
	}
	if err := requireAdmin(c); err != nil {
		return err
	}
	name, err := pathProject(r)
	if err != nil {
		return err
	}
	var req quotaPut
	if err := decode(w, r, &req); err != nil {
		return err
	}
	limit := int64(quota.Unlimited)
	if req.QuotaBytes != nil {
		if *req.QuotaBytes < 0 {
			return invalid("quotaBytes must be 0 or more (null: unlimited)")
		}
		limit = *req.QuotaBytes
	}
	ctx := r.Context()
	if _, err := a.meta.ProjectByName(ctx, name); err != nil {
		return storeErr(err, "project "+name)
	}
	u, err := a.quotas.Set(ctx, name, limit)
	if errors.Is(err, quota.ErrMirrored) {
		return errcode.Conflict.New(err.Error())
	} else if err != nil {
		return storeErr(err, "")
	}
	detail := "quota=unlimited"
	if limit >= 0 {
		detail = fmt.Sprintf("quota=%d", limit)
	}
	a.record(c, "project.quota", name, detail)
	return writeJSON(w, http.StatusOK, toQuota(u))
}
