package adminapi

import (
	"context"
	"net/http"

	"github.com/berth-registry/berth/internal/auth"
)

// asKey carries a principal the caller authenticated itself (the web UI, from its
// session). Only code in this process can set a context value, so no request from the
// network can claim one.
type asKey struct{}

// ServeAs serves r on behalf of p, authenticated elsewhere: the web UI calls the API
// in process with the session's user, so every permission check, validation and audit
// entry is the API's own.
func (a *API) ServeAs(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	a.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), asKey{}, p)))
}

func principalFrom(r *http.Request) (*auth.Principal, bool) {
	p, ok := r.Context().Value(asKey{}).(*auth.Principal)
	return p, ok && p != nil && p.Kind != "anonymous"
}
