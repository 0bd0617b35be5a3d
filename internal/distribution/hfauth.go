package distribution

import (
	"net/http"
	"strings"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/errcode"
)

// AuthorizePull authenticates a request made outside /v2/ (the Hugging Face mirror,
// package hf) and checks that its caller may pull repo, as a /v2/ pull of it would.
// Hugging Face clients send only "Authorization: Bearer <HF_TOKEN>": the bearer is a
// token from /token, or, for a setting that does not expire, "name:secret" (a user's
// password or a robot's secret) in HF_TOKEN. Basic credentials work too. The error is
// an errcode value (401 with a challenge set on w, 403, 429, 503).
func (g *Guard) AuthorizePull(w http.ResponseWriter, r *http.Request, repo string) error {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		v := strings.TrimPrefix(h, "Bearer ")
		if _, err := g.svc.Tokens.Verify(v); err != nil {
			if name, secret, ok := strings.Cut(v, ":"); ok && name != "" {
				r = r.Clone(r.Context())
				r.SetBasicAuth(name, secret)
			} else {
				return errcode.Unauthorized.New("invalid or expired token (HF_TOKEN is a token from /token or name:secret)")
			}
		}
	}
	c, err := g.authenticate(r)
	if err != nil {
		return err
	}
	return g.authorize(w, r, c, repo, []auth.Action{auth.Pull})
}
