package distribution

import "net/http"

// PullCounter counts manifest pulls; it must not block (inventory.Pulls adds to memory
// and writes in batches).
type PullCounter interface{ Pulled(repo, digest string) }

// countPull counts a served manifest GET (a 304 to If-None-Match too: the client pulled
// and had it) of repo, the repository as stored. HEADs are not pulls: clients send them
// to check for updates, and Docker Hub does not count them either.
func (a *API) countPull(w http.ResponseWriter, r *http.Request, rt route, repo string) {
	if a.opts.Pulls == nil || rt.kind != routeManifest || r.Method != http.MethodGet {
		return
	}
	st, ok := w.(interface{ Status() int })
	if !ok || st.Status() != http.StatusOK && st.Status() != http.StatusNotModified {
		return
	}
	if d := w.Header().Get("Docker-Content-Digest"); d != "" {
		a.opts.Pulls.Pulled(repo, d)
	}
}
