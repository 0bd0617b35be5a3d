package distribution

import (
	"context"
	"net/http"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/registry"
)

// ScannerKind is the principal kind of the vulnerability scanner's tokens: it may read
// what it scans whatever the pull policies say.
const ScannerKind = "scanner"

// ScanPolicy decides whether a manifest may be served under its project's
// vulnerability scan policy (package scan), and hears of pushes to scan them.
type ScanPolicy interface {
	// Check returns nil to serve m from repo, or an errcode error (DENIED) naming the
	// policy and the findings. exempt, when not nil, tells (lazily) whether the caller
	// may push to repo and asked by digest.
	Check(ctx context.Context, repo string, m meta.Manifest, exempt func() bool) error
	// Pushed is told about every manifest push.
	Pushed(ctx context.Context, repo, digest, subject string)
}

func (a *API) checkScan(r *http.Request, c *caller, repo, upstream string, ref registry.Reference, m meta.Manifest) error {
	if a.opts.Scan == nil {
		return nil
	}
	return a.opts.Scan.Check(r.Context(), repo, m, a.signer(r, c, repo, upstream, ref))
}
