package distribution

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/oci"
)

// Page sizes: a request without n gets at most the default page (and a Link to the
// next); n is clamped to the maximum, also with a Link, as the spec allows.
const (
	defaultTagPage     = 1000
	maxTagPage         = 10000
	defaultCatalogPage = 100
	maxCatalogPage     = 1000
)

// pageParams reads n and last. n < 0 means "not given".
func pageParams(r *http.Request, def, max int) (n int, last string, err error) {
	q := r.URL.Query()
	n = def
	if v := q.Get("n"); v != "" {
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, "", errcode.PaginationInvalid.New("n must be a non-negative integer")
		}
		if n > max {
			n = max
		}
	}
	return n, q.Get("last"), nil
}

func (a *API) tags(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, a, "GET, HEAD")
		return
	}
	n, last, err := pageParams(r, defaultTagPage, maxTagPage)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if last != "" {
		if err := oci.ValidateTag(last); err != nil {
			a.fail(w, r, errcode.PaginationInvalid.New("last must be a tag"))
			return
		}
	}
	var tags []string
	if n > 0 {
		// One extra row tells whether a next page exists.
		if tags, err = a.reg.Tags(r.Context(), name, last, n+1); err != nil {
			a.fail(w, r, err)
			return
		}
	} else if _, err = a.reg.Tags(r.Context(), name, "", 1); err != nil {
		a.fail(w, r, err) // still answer 404 for an unknown repository
		return
	}
	tags = writePageLink(w, "/v2/"+name+"/tags/list", tags, n)
	writeJSON(w, r, struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, tags})
}

func (a *API) catalog(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, a, "GET, HEAD")
		return
	}
	n, last, err := pageParams(r, defaultCatalogPage, maxCatalogPage)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var repos []string
	if n > 0 {
		if repos, err = a.reg.Repositories(r.Context(), last, n+1); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	repos = writePageLink(w, "/v2/_catalog", repos, n)
	if a.guard != nil {
		// Filtered after paging: a page may come out short, its Link still leads on.
		if repos, err = a.visible(r, repos); err != nil {
			w.Header().Del("Link")
			a.fail(w, r, err)
			return
		}
	}
	writeJSON(w, r, struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

// writePageLink trims a list fetched with one extra row to n and, when the extra row was
// there, sets the RFC 5988 Link to the next page.
func writePageLink(w http.ResponseWriter, path string, items []string, n int) []string {
	if items == nil {
		items = []string{}
	}
	if len(items) > n {
		items = items[:n]
		q := url.Values{"n": {strconv.Itoa(n)}, "last": {items[n-1]}}
		w.Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
	}
	return items
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		errcode.Write(w, r, errcode.Internal.Wrap(err, ""))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// visible keeps the repositories the caller may pull from.
func (a *API) visible(r *http.Request, repos []string) ([]string, error) {
	c := callerOf(r)
	if c == nil {
		return nil, nil
	}
	p, err := a.guard.svc.Principal(r.Context(), c.p.Kind, c.p.Name, c.p.Groups)
	if err != nil {
		return nil, errcode.Unauthorized.New("account no longer valid")
	}
	out := repos[:0:0]
	for _, name := range repos {
		got, err := a.guard.svc.Allowed(r.Context(), p, name, []auth.Action{auth.Pull})
		if err != nil {
			return nil, err
		}
		if len(got) == 1 {
			out = append(out, name)
		}
	}
	return out, nil
}
