package adminapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/internal/inventory"
)

// findQuery parses the search parameters: q (a substring of the name), sort (name,
// pushed, pulled) and offset/n (a page of that order).
func findQuery(r *http.Request) (inventory.Query, error) {
	v := r.URL.Query()
	q := inventory.Query{Contains: v.Get("q"), Order: inventory.ByName}
	if len(q.Contains) > 255 {
		return q, invalid("q is at most 255 bytes")
	}
	if s := v.Get("sort"); s != "" {
		if !inventory.ValidOrder(s) {
			return q, invalid("sort must be name, pushed or pulled")
		}
		q.Order = inventory.Order(s)
	}
	if s := v.Get("offset"); s != "" {
		o, err := strconv.Atoi(s)
		if err != nil || o < 0 || o > 1_000_000 {
			return q, invalid("offset must be an integer from 0 to 1000000")
		}
		q.Offset = o
	}
	n, _, err := page(r)
	q.N = n
	return q, err
}

// findRepositories answers one project's listing with search and order (the caller
// checked the pull right on the project).
func (a *API) findRepositories(w http.ResponseWriter, r *http.Request, c *caller, project string) error {
	q, err := findQuery(r)
	if err != nil {
		return err
	}
	q.Project = project
	repos, err := a.inv.Find(r.Context(), q)
	if err != nil {
		return storeErr(err, "")
	}
	return a.writeFound(w, r, repos, q)
}

func (a *API) writeFound(w http.ResponseWriter, r *http.Request, repos []inventory.Repository, q inventory.Query) error {
	out := make([]repositoryJSON, len(repos))
	for i, rp := range repos {
		out[i] = toRepository(rp)
	}
	if len(out) == q.N {
		setNext(w, r, "offset", strconv.Itoa(q.Offset+q.N))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"repositories": out})
}

// searchBudget bounds how many rows one cross-project search reads past the ones the
// caller may not see.
const searchBudget = 20000

// searchRepositories finds repositories across the projects the caller may see.
func (a *API) searchRepositories(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.repositoriesEnabled(); err != nil {
		return err
	}
	if err := onlyParams(r, "n", "q", "sort", "offset"); err != nil {
		return err
	}
	q, err := findQuery(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if c.p.Admin {
		repos, err := a.inv.Find(ctx, q)
		if err != nil {
			return storeErr(err, "")
		}
		return a.writeFound(w, r, repos, q)
	}
	// Others see the repositories of visible projects only: read in batches, keep
	// those, skip the first offset of them.
	seen := map[string]bool{}
	var out []inventory.Repository
	skip := q.Offset
	batch := inventory.Query{Contains: q.Contains, Order: q.Order, N: 500}
	for batch.Offset < searchBudget && len(out) < q.N {
		repos, err := a.inv.Find(ctx, batch)
		if err != nil {
			return storeErr(err, "")
		}
		for _, rp := range repos {
			project, _, _ := strings.Cut(rp.Name, "/")
			ok, known := seen[project]
			if !known {
				if ok, err = a.visible(ctx, c, project); err != nil {
					return err
				}
				seen[project] = ok
			}
			if !ok {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			if out = append(out, rp); len(out) == q.N {
				break
			}
		}
		if len(repos) < batch.N {
			break
		}
		batch.Offset += batch.N
	}
	return a.writeFound(w, r, out, q)
}

// withCounts fills in the projects' repository counts.
func (a *API) withCounts(ctx context.Context, ps []project) error {
	if a.inv == nil {
		return nil
	}
	for i := range ps {
		n, err := a.inv.Count(ctx, ps[i].Name)
		if err != nil {
			return storeErr(err, "")
		}
		ps[i].Repositories = &n
	}
	return nil
}
