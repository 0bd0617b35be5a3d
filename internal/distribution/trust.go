package distribution

import (
	"context"
	"net/http"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/registry"
)

// PullPolicy decides whether a manifest may be served: signature policies (package
// trust). Nil in Options means none.
type PullPolicy interface {
	// Check returns nil to serve m from repo, or an errcode error (DENIED) naming the
	// policy and what was missing. upstream names the mirror upstream repo is cached
	// from, "" for local repositories. signer, when not nil, tells (lazily: it may
	// query the database) whether the caller may push to repo and asked by digest,
	// which signing tools need to read the manifest they sign.
	Check(ctx context.Context, repo, upstream string, m meta.Manifest, signer func() bool) error
	// Stored is told about every manifest push, so that a signature arriving makes
	// cached verdicts stale.
	Stored(ctx context.Context, repo string, res registry.PutResult)
}

// checkPull applies the pull policy to a manifest about to be served. Only with auth
// on, only for a local repository read by digest, can a caller count as a signer.
func (a *API) checkPull(r *http.Request, repo, upstream string, ref registry.Reference, m meta.Manifest) error {
	if a.opts.Trust == nil {
		return nil
	}
	var signer func() bool
	if c := callerOf(r); a.guard != nil && c != nil && c.p.Kind != "anonymous" && upstream == "" && ref.Digest != "" {
		// Who may push, not what this token grants: signing tools read with a
		// pull-only token and ask for push only when they write the signature.
		signer = func() bool {
			p := c.p
			if c.claims != nil {
				live, err := a.guard.svc.Principal(r.Context(), p.Kind, p.Name, p.Groups)
				if err != nil {
					return false
				}
				p = live
			}
			got, err := a.guard.svc.Allowed(r.Context(), p, repo, []auth.Action{auth.Push})
			return err == nil && len(got) == 1
		}
	}
	return a.opts.Trust.Check(r.Context(), repo, upstream, m, signer)
}
