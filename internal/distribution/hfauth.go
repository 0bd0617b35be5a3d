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
		// @huggingface/hub refuses tokens that do not start with hf_: the prefix is
		// dropped (HF_TOKEN=hf_name:secret).
		v := strings.TrimPrefix(strings.TrimPrefix(h, "Bearer "), "hf_")
		r = r.Clone(r.Context())
		if _, err := g.svc.Tokens.Verify(v); err == nil {
			r.Header.Set("Authorization", "Bearer "+v)
		} else if name, secret, ok := strings.Cut(v, ":"); ok && name != "" {
			r.SetBasicAuth(name, secret)
		} else {
			return errcode.Unauthorized.New("invalid or expired token (HF_TOKEN is a token from /token or name:secret, either with an hf_ prefix)")
		}
	}
	c, err := g.authenticate(r)
	if err != nil {
		return err
	}
	return g.authorize(w, r, c, repo, []auth.Action{auth.Pull})
}
