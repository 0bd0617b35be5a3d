package adminapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
)

// user is an account as the API shows it: never its password hash.
type user struct {
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Admin     bool      `json:"admin"`
	Source    string    `json:"source"` // local, ldap or oidc
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"createdAt"`
}

func toUser(u meta.User) user {
	return user{Name: u.Name, Email: u.Email, Admin: u.Admin, Source: u.Source, Disabled: u.Disabled, CreatedAt: u.CreatedAt.UTC()}
}

// reservedUserNames are path segments under /users that are not accounts.
var reservedUserNames = []string{"me", "import"}

func validNewUserName(name string) error {
	if !accountName.MatchString(name) {
		return invalid("user name %q must match [a-z0-9][a-z0-9._-]{0,63}", name)
	}
	if slices.Contains(reservedUserNames, name) {
		return invalid("user name %q is reserved", name)
	}
	return nil
}

func validEmail(email string) error {
	if email == "" {
		return nil
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		return invalid("email %q is not a plain address (name@example.com)", email)
	}
	return nil
}

func pathUser(r *http.Request) (string, error) {
	name := r.PathValue("user")
	if !validPathName(name) {
		return "", invalid("invalid user name %q", name)
	}
	return name, nil
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	if err := onlyParams(r, "n", "last"); err != nil {
		return err
	}
	n, last, err := page(r)
	if err != nil {
		return err
	}
	us, err := a.meta.Users(r.Context(), last, n)
	if err != nil {
		return storeErr(err, "")
	}
	out := []user{}
	for _, u := range us {
		out = append(out, toUser(u))
	}
	if len(out) == n {
		setNext(w, r, "last", out[len(out)-1].Name)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

type createUserRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Email    string `json:"email"`
	Admin    bool   `json:"admin"`
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	var req createUserRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := validNewUserName(req.Name); err != nil {
		return err
	}
	if err := validEmail(req.Email); err != nil {
		return err
	}
	hash, err := auth.HashPassword(req.Password)
	if err != nil {
		return invalid("password: %s", strings.TrimPrefix(err.Error(), "auth: "))
	}
	u, err := a.meta.CreateUser(r.Context(), meta.User{Name: req.Name, PasswordHash: hash, Email: req.Email, Admin: req.Admin})
	if err != nil {
		return storeErr(err, "user "+req.Name)
	}
	a.record(c, "user.create", userResource(u.Name), fmt.Sprintf("admin=%t", u.Admin))
	w.Header().Set("Location", Prefix+"/users/"+u.Name)
	return writeJSON(w, http.StatusCreated, toUser(u))
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	name, err := pathUser(r)
	if err != nil {
		return err
	}
	u, err := a.meta.UserByName(r.Context(), name)
	if err != nil {
		return storeErr(err, "user "+name)
	}
	return writeJSON(w, http.StatusOK, toUser(u))
}

type patchUserRequest struct {
	Password *string `json:"password"`
	Email    *string `json:"email"`
	Admin    *bool   `json:"admin"`
	Disabled *bool   `json:"disabled"`
}

func (a *API) patchUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	name, err := pathUser(r)
	if err != nil {
		return err
	}
	var req patchUserRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Password == nil && req.Email == nil && req.Admin == nil && req.Disabled == nil {
		return invalid("nothing to change: set password, email, admin or disabled")
	}
	if name == c.p.Name && ((req.Admin != nil && !*req.Admin) || (req.Disabled != nil && *req.Disabled)) {
		return errcode.Conflict.New("you cannot remove your own admin rights or disable yourself; ask another administrator")
	}
	ctx := r.Context()
	u, err := a.meta.UserByName(ctx, name)
	if err != nil {
		return storeErr(err, "user "+name)
	}
	var changed []string
	if req.Password != nil {
		if u.Source != "local" {
			return invalid("user %s logs in through the directory (%s) and has no local password", name, u.Source)
		}
		if u.PasswordHash, err = auth.HashPassword(*req.Password); err != nil {
			return invalid("password: %s", strings.TrimPrefix(err.Error(), "auth: "))
		}
		changed = append(changed, "password")
	}
	if req.Email != nil {
		if err := validEmail(*req.Email); err != nil {
			return err
		}
		u.Email = *req.Email
		changed = append(changed, "email")
	}
	if req.Admin != nil {
		u.Admin = *req.Admin
		changed = append(changed, fmt.Sprintf("admin=%t", u.Admin))
	}
	if req.Disabled != nil {
		u.Disabled = *req.Disabled
		changed = append(changed, fmt.Sprintf("disabled=%t", u.Disabled))
	}
	if err := a.meta.UpdateUser(ctx, u); err != nil {
		return storeErr(err, "user "+name)
	}
	a.svc.Forget(name)
	a.record(c, "user.update", userResource(name), strings.Join(changed, " "))
	return writeJSON(w, http.StatusOK, toUser(u))
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	name, err := pathUser(r)
	if err != nil {
		return err
	}
	if name == c.p.Name {
		return errcode.Conflict.New("you cannot delete yourself; ask another administrator")
	}
	if err := a.meta.DeleteUser(r.Context(), name); err != nil {
		return storeErr(err, "user "+name)
	}
	a.svc.Forget(name)
	a.record(c, "user.delete", userResource(name), "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// whoami is the caller as GET /users/me shows it.
type whoami struct {
	Name        string                 `json:"name"`
	Kind        string                 `json:"kind"` // user or robot
	Admin       bool                   `json:"admin"`
	Email       string                 `json:"email,omitempty"`
	Source      string                 `json:"source,omitempty"`
	Groups      []string               `json:"groups,omitempty"`
	Permissions []auth.RobotPermission `json:"permissions,omitempty"`
}

func (a *API) me(w http.ResponseWriter, r *http.Request, c *caller) error {
	out := whoami{Name: c.p.Name, Kind: c.p.Kind, Admin: c.p.Admin, Groups: c.p.Groups, Permissions: c.p.RobotPerms}
	if c.p.Kind == "user" {
		u, err := a.meta.UserByName(r.Context(), c.p.Name)
		if err != nil && !errors.Is(err, meta.ErrNotFound) {
			return storeErr(err, "")
		}
		out.Email, out.Source = u.Email, u.Source
	}
	return writeJSON(w, http.StatusOK, out)
}
