package trust

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

// ErrInvalid reports a policy document that does not load.
var ErrInvalid = errors.New("trust: invalid policy")

// ErrReadOnly reports a change to a policy from the configuration file.
var ErrReadOnly = errors.New("trust: the policy comes from the configuration file")

// PutPolicy validates and stores a policy, making every cached verdict stale.
func (e *Evaluator) PutPolicy(ctx context.Context, p Policy) (Policy, error) {
	if p.ScopeKind != ScopeProject && p.ScopeKind != ScopeUpstream {
		return Policy{}, fmt.Errorf("%w: scopeKind %q: want project or upstream", ErrInvalid, p.ScopeKind)
	}
	if p.Scope == "" {
		return Policy{}, fmt.Errorf("%w: scope (the project or upstream name) is required", ErrInvalid)
	}
	if e.configured(p.Name) {
		return Policy{}, ErrReadOnly
	}
	if p.ScopeKind == ScopeProject {
		if err := oci.ValidateName(p.Scope); err != nil || oci.Project(p.Scope) != p.Scope {
			return Policy{}, fmt.Errorf("%w: scope %q is not a project name", ErrInvalid, p.Scope)
		}
	}
	if err := Validate(p.Name, p.Spec); err != nil {
		return Policy{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if p.Spec.Mode == "" {
		p.Spec.Mode = ModeEnforce
	}
	out, err := e.store.Put(ctx, p)
	if err != nil {
		return Policy{}, err
	}
	return out, e.reload(ctx)
}

// DeletePolicy removes a stored policy.
func (e *Evaluator) DeletePolicy(ctx context.Context, name string) error {
	if e.configured(name) {
		return ErrReadOnly
	}
	if err := e.store.Delete(ctx, name); err != nil {
		return err
	}
	return e.reload(ctx)
}

// GetPolicy returns a stored or configured policy.
func (e *Evaluator) GetPolicy(ctx context.Context, name string) (Policy, error) {
	for _, p := range e.Policies() {
		if p.Name == name && p.FromConfig {
			return p, nil
		}
	}
	return e.store.Get(ctx, name)
}

func (e *Evaluator) configured(name string) bool {
	for _, c := range e.fromConfig {
		if c.name == name {
			return true
		}
	}
	return false
}

// VerifyImage reaches a fresh verdict for repo at ref, the way a pull would: a
// repository under a mirror upstream's name (registry.k8s.io/pause) is checked against
// that upstream's policy.
func (e *Evaluator) VerifyImage(ctx context.Context, repo string, ref registry.Reference) (Verdict, error) {
	up := oci.Project(repo)
	e.mu.RLock()
	_, stored := e.upstream[up]
	e.mu.RUnlock()
	if _, ok := e.fromConfig[up]; !ok && !stored {
		up = ""
	}
	return e.Verify(ctx, repo, up, ref)
}
