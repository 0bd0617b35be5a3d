package distribution

import (
	"context"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/registry"
)

// PullPolicy decides whether a manifest may be served: signature policies (package
// trust). Nil in Options means none.
type PullPolicy interface {
	// Check returns nil to serve m from repo, or an errcode error (DENIED) naming the
	// policy and what was missing. upstream names the mirror upstream repo is cached
	// from, "" for local repositories.
	Check(ctx context.Context, repo, upstream string, m meta.Manifest) error
	// Stored is told about every manifest push, so that a signature arriving makes
	// cached verdicts stale.
	Stored(ctx context.Context, repo string, res registry.PutResult)
}

// checkPull applies the pull policy to a manifest about to be served.
func (a *API) checkPull(ctx context.Context, repo, upstream string, m meta.Manifest) error {
	if a.opts.Trust == nil {
		return nil
	}
	return a.opts.Trust.Check(ctx, repo, upstream, m)
}
