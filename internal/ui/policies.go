package ui

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Policies are edited as the JSON documents the admin API takes (README "Retention and
// immutable tags", "Vulnerability scanning", "Trust"): the page shows the stored document,
// the API validates what comes back and explains what it refuses.

type immutableJSON struct {
	ID           int64     `json:"id"`
	Tags         string    `json:"tags"`
	Repositories string    `json:"repositories"`
	CreatedAt    time.Time `json:"createdAt"`
}

// jsonField reads a form's JSON document; "" when the field is empty.
func jsonField(r *http.Request, name string) (json.RawMessage, bool, error) {
	s := strings.TrimSpace(r.PostFormValue(name))
	if s == "" {
		return nil, false, nil
	}
	if !json.Valid([]byte(s)) {
		return nil, false, errStatus(http.StatusBadRequest, "the "+name+" is not valid JSON")
	}
	return json.RawMessage(s), true, nil
}

// putOrDelete stores the form's document at path, or deletes what is there when the
// document is empty.
func (u *UI) putOrDelete(w http.ResponseWriter, r *http.Request, v *visit, field, path, back string) error {
	doc, ok, err := jsonField(r, field)
	if err != nil {
		return err
	}
	if ok {
		_, err = u.call(r, v, http.MethodPut, path, nil, doc, nil)
	} else {
		_, err = u.call(r, v, http.MethodDelete, path, nil, nil, nil)
		if isStatus(err, http.StatusNotFound) {
			err = nil // nothing was set
		}
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

func (u *UI) setRetention(w http.ResponseWriter, r *http.Request, v *visit) error {
	return u.putOrDelete(w, r, v, "policy", projectPath(r)+"/retention", projectPath(r)+"/settings")
}

func (u *UI) runRetention(w http.ResponseWriter, r *http.Request, v *visit) error {
	if _, err := u.call(r, v, http.MethodPost, projectPath(r)+"/retention/run", nil, map[string]any{}, nil); err != nil {
		return err
	}
	return back(w, r, projectPath(r)+"/settings")
}

func (u *UI) setScanPolicy(w http.ResponseWriter, r *http.Request, v *visit) error {
	return u.putOrDelete(w, r, v, "policy", projectPath(r)+"/scan-policy", projectPath(r)+"/settings")
}

func (u *UI) addImmutable(w http.ResponseWriter, r *http.Request, v *visit) error {
	body := map[string]string{"tags": strings.TrimSpace(r.PostFormValue("tags")), "repositories": strings.TrimSpace(r.PostFormValue("repositories"))}
	if _, err := u.call(r, v, http.MethodPost, projectPath(r)+"/immutable", nil, body, nil); err != nil {
		return err
	}
	return back(w, r, projectPath(r)+"/settings")
}

func (u *UI) deleteImmutable(w http.ResponseWriter, r *http.Request, v *visit) error {
	if _, err := u.call(r, v, http.MethodDelete, projectPath(r)+"/immutable/"+url.PathEscape(r.PostFormValue("id")), nil, nil, nil); err != nil {
		return err
	}
	return back(w, r, projectPath(r)+"/settings")
}

// setTrustPolicy stores (or, with an empty document, deletes) a signature policy.
func (u *UI) setTrustPolicy(w http.ResponseWriter, r *http.Request, v *visit) error {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		return errStatus(http.StatusBadRequest, "a policy needs a name")
	}
	return u.putOrDelete(w, r, v, "policy", "/policies/"+url.PathEscape(name), "/system")
}
