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
		if a.guard == nil {
			repos, err = a.reg.Repositories(r.Context(), last, n+1)
		} else {
			repos, err = a.visibleRepositories(r, last, n+1)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
	}
	repos = writePageLink(w, "/v2/_catalog", repos, n)
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

// catalogScan is how many names are read per query while filling a catalog page.
const catalogScan = 500

// visibleRepositories lists up to n repositories after last that the caller may pull
// from. The filter runs before paging: the next-page cursor is the last name on the
// page, so it never names a repository the caller may not see (filtering a page after
// fetching it leaked one hidden name per request through the Link header).
func (a *API) visibleRepositories(r *http.Request, last string, n int) ([]string, error) {
	c := callerOf(r)
	if c == nil {
		return nil, nil
	}
	ctx := r.Context()
	p, err := a.guard.svc.Principal(ctx, c.p.Kind, c.p.Name, c.p.Groups)
	if err != nil {
		return nil, errcode.Unauthorized.New("account no longer valid")
	}
	// Pull rights are per project (the permission matrix), so each project is asked
	// about once, and a hidden project's repositories are skipped in one step: every
	// name in project "p" but "p" itself starts with "p/", and "p/~" sorts after all of
	// them ('~' is above every character a name may hold; names compare bytewise).
	visible := map[string]bool{}
	out := make([]string, 0, n)
	cursor, limit := last, max(catalogScan, n)
	for {
		names, err := a.reg.Repositories(ctx, cursor, limit)
		if err != nil {
			return nil, err
		}
		skipped := false
		for _, name := range names {
			cursor = name
			project := oci.Project(name)
			ok, seen := visible[project]
			if !seen {
				got, err := a.guard.svc.Allowed(ctx, p, name, []auth.Action{auth.Pull})
				if err != nil {
					return nil, err
				}
				ok = len(got) == 1
				visible[project] = ok
			}
			switch {
			case ok:
				if out = append(out, name); len(out) == n {
					return out, nil
				}
			case name != project:
				cursor, skipped = project+"/~", true
			}
			if skipped {
				break
			}
		}
		if !skipped && len(names) < limit {
			return out, nil // the end of the catalog
		}
	}
}
