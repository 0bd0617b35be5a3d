package adminapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/berth-registry/berth/internal/auth"
)

// CLI secrets are the passwords of OIDC users for docker login, crane and helm
// (auth.CLISecrets). The secret is in the answer of a rotation only; reads show
// whether one exists and since when.

type cliSecretStatus struct {
	Exists    bool       `json:"exists"`
	CreatedAt *time.Time `json:"createdAt,omitempty"`
}

type cliSecret struct {
	User      string    `json:"user"`
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"createdAt"`
}

// cliSecretUser is the user a CLI secret route is about: the caller for /users/me/…,
// any user for a system administrator.
func cliSecretUser(r *http.Request, c *caller) (string, error) {
	if r.PathValue("user") == "" {
		if c.p.Kind != "user" {
			return "", denied("only users have CLI secrets; robots have their own secret")
		}
		return c.p.Name, nil
	}
	if err := requireAdmin(c); err != nil {
		return "", err
	}
	return pathUser(r)
}

func cliSecretErr(err error, user string) error {
	if errors.Is(err, auth.ErrNotOIDCUser) {
		return invalid("user %s logs in with a password and has no CLI secret", user)
	}
	return storeErr(err, "user "+user)
}

func (a *API) getCLISecret(w http.ResponseWriter, r *http.Request, c *caller) error {
	user, err := cliSecretUser(r, c)
	if err != nil {
		return err
	}
	st, err := a.svc.CLISecrets().Status(r.Context(), user)
	if err != nil {
		return storeErr(err, "")
	}
	out := cliSecretStatus{Exists: st.Exists}
	if st.Exists {
		t := st.CreatedAt.UTC()
		out.CreatedAt = &t
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) rotateCLISecret(w http.ResponseWriter, r *http.Request, c *caller) error {
	user, err := cliSecretUser(r, c)
	if err != nil {
		return err
	}
	secret, err := a.svc.CLISecrets().Rotate(r.Context(), user)
	if err != nil {
		return cliSecretErr(err, user)
	}
	a.record(c, "user.cli-secret", userResource(user), "rotated")
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, cliSecret{User: user, Secret: secret, CreatedAt: time.Now().UTC()})
}

func (a *API) revokeCLISecret(w http.ResponseWriter, r *http.Request, c *caller) error {
	user, err := cliSecretUser(r, c)
	if err != nil {
		return err
	}
	if err := a.svc.CLISecrets().Revoke(r.Context(), user); err != nil {
		return storeErr(err, "")
	}
	a.record(c, "user.cli-secret", userResource(user), "revoked")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
