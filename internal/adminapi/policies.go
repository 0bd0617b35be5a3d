package adminapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/trust"
)

// WithTrust serves the signature policy routes from ev.
func (a *API) WithTrust(ev *trust.Evaluator) *API {
	a.trust = ev
	return a
}

type policyBody struct {
	ScopeKind string             `json:"scopeKind"`
	Scope     string             `json:"scope"`
	Policy    config.TrustPolicy `json:"policy"`
}

func (a *API) trustEnabled() error {
	if a.trust == nil {
		return errcode.Unsupported.New("signature policies are not available on this server")
	}
	return nil
}

func trustErr(err error, name string) error {
	switch {
	case errors.Is(err, trust.ErrNotFound):
		return errcode.NotFound.New("policy " + name + " not found")
	case errors.Is(err, trust.ErrConflict):
		return errcode.Conflict.New(err.Error())
	case errors.Is(err, trust.ErrReadOnly):
		return errcode.Conflict.New("policy " + name + " comes from the configuration file; change it there")
	case errors.Is(err, trust.ErrInvalid):
		return invalid("%s", strings.TrimPrefix(err.Error(), trust.ErrInvalid.Error()+": "))
	}
	return storeErr(err, "")
}

// listPolicies serves every policy, stored and configured (system administrators).
func (a *API) listPolicies(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.trustEnabled(); err != nil {
		return err
	}
	if err := requireAdmin(c); err != nil {
		return err
	}
	out := a.trust.Policies()
	if out == nil {
		out = []trust.Policy{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"policies": out})
}

func (a *API) getPolicy(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.trustEnabled(); err != nil {
		return err
	}
	if err := requireAdmin(c); err != nil {
		return err
	}
	p, err := a.trust.GetPolicy(r.Context(), r.PathValue("policy"))
	if err != nil {
		return trustErr(err, r.PathValue("policy"))
	}
	return writeJSON(w, http.StatusOK, p)
}

// putPolicy creates or replaces a policy; every cached verdict becomes stale on every
// replica.
func (a *API) putPolicy(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.trustEnabled(); err != nil {
		return err
	}
	if err := requireAdmin(c); err != nil {
		return err
	}
	var body policyBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	name := r.PathValue("policy")
	p, err := a.trust.PutPolicy(r.Context(), trust.Policy{Name: name, ScopeKind: body.ScopeKind, Scope: body.Scope, Spec: body.Policy})
	if err != nil {
		return trustErr(err, name)
	}
	a.record(c, "policy.put", "policy$"+name, p.ScopeKind+" "+p.Scope+" mode="+p.Spec.Mode)
	return writeJSON(w, http.StatusOK, p)
}

func (a *API) deletePolicy(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.trustEnabled(); err != nil {
		return err
	}
	if err := requireAdmin(c); err != nil {
		return err
	}
	name := r.PathValue("policy")
	if err := a.trust.DeletePolicy(r.Context(), name); err != nil {
		return trustErr(err, name)
	}
	a.record(c, "policy.delete", "policy$"+name, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// verifyImage checks ?image=REPOSITORY[:TAG|@DIGEST] against its policy without the
// verdict cache and answers every signature found with why it passed or failed.
func (a *API) verifyImage(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.trustEnabled(); err != nil {
		return err
	}
	if err := requireAdmin(c); err != nil {
		return err
	}
	if err := onlyParams(r, "image"); err != nil {
		return err
	}
	repo, ref, err := parseImage(r.URL.Query().Get("image"))
	if err != nil {
		return err
	}
	v, err := a.trust.VerifyImage(r.Context(), repo, ref)
	switch {
	case errors.Is(err, errcode.ManifestUnknown), errors.Is(err, errcode.NameUnknown):
		return errcode.NotFound.New("image " + r.URL.Query().Get("image") + " not found")
	case err != nil:
		return storeErr(err, "")
	}
	return writeJSON(w, http.StatusOK, v)
}

// parseImage splits repository[:tag][@digest]; a digest wins over a tag.
func parseImage(s string) (string, registry.Reference, error) {
	repo, dgst, hasDigest := strings.Cut(s, "@")
	tag := "latest"
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo, tag = repo[:i], repo[i+1:]
	}
	if err := oci.ValidateName(repo); err != nil {
		return "", registry.Reference{}, invalid("image %q: %v", s, err)
	}
	if hasDigest {
		d, err := oci.ParseDigest(dgst)
		if err != nil {
			return "", registry.Reference{}, invalid("image %q: %v", s, err)
		}
		return repo, registry.Reference{Digest: d}, nil
	}
	ref, err := registry.ParseReference(tag)
	if err != nil {
		return "", registry.Reference{}, invalid("image %q: bad tag", s)
	}
	return repo, ref, nil
}
