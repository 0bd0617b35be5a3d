package distribution

import (
	"context"
	"errors"
	"net/http"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/errcode"
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
//
// An anonymous HEAD by digest that fails is answered 401 with a challenge instead of
// 403: notation sign HEADs the manifest it signs without credentials first and sends
// them only when challenged (a public project challenges no reader). A HEAD carries no
// message anyway, and a node gets a failure either way.
func (a *API) checkPull(w http.ResponseWriter, r *http.Request, repo, upstream string, ref registry.Reference, m meta.Manifest) error {
	c := callerOf(r)
	if c != nil && c.p.Kind == ScannerKind {
		return nil // the scanner reads what it scans, before any verdict exists
	}
	if err := a.checkTrust(w, r, c, repo, upstream, ref, m); err != nil {
		return err
	}
	return a.checkScan(r, c, repo, upstream, ref, m)
}

func (a *API) checkTrust(w http.ResponseWriter, r *http.Request, c *caller, repo, upstream string, ref registry.Reference, m meta.Manifest) error {
	if a.opts.Trust == nil {
		return nil
	}
	signable := a.guard != nil && c != nil && upstream == "" && ref.Digest != ""
	signer := a.signer(r, c, repo, upstream, ref)
	err := a.opts.Trust.Check(r.Context(), repo, upstream, m, signer)
	if signable && c.p.Kind == "anonymous" && r.Method == http.MethodHead && errors.Is(err, errcode.Denied) {
		a.guard.challenge(w, r, repo, []auth.Action{auth.Pull}, false)
		return errcode.Unauthorized.New("authentication required: " + err.Error())
	}
	return err
}

// signer returns, for a caller reading a local repository by digest with auth on, a
// check (lazy: it may query the database) of whether the caller may push to repo; nil
// otherwise.
func (a *API) signer(r *http.Request, c *caller, repo, upstream string, ref registry.Reference) func() bool {
	signable := a.guard != nil && c != nil && upstream == "" && ref.Digest != ""
	var signer func() bool
	if signable && c.p.Kind != "anonymous" {
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
	return signer
}
