package registry

import "context"

// SessionGuard bounds open upload sessions per client, repository and project (package
// limits), counted from the upload rows so every replica sees the same numbers.
type SessionGuard interface {
	// AdmitSession returns the refusal (an errcode) of a new session owner would open
	// in repo, nil when it may.
	AdmitSession(ctx context.Context, owner, repo string) error
}

// Uploader is who starts an upload session: Owner is recorded on the session and
// counted against that client's bound; an Exempt caller (a trusted network) is not
// bounded at all.
type Uploader struct {
	Owner  string
	Exempt bool
}

// admitSession asks the session guard, if any, about a new session.
func (r *Registry) admitSession(ctx context.Context, repo string, by Uploader) error {
	if r.opts.Sessions == nil || by.Exempt {
		return nil
	}
	if err := r.opts.Sessions.AdmitSession(ctx, by.Owner, repo); err != nil {
		return r.internal(err, "")
	}
	return nil
}
