// Package distribution is the OCI distribution HTTP API (/v2/): it routes requests,
// parses and bounds their inputs, calls the registry domain and writes responses. It is
// deliberately thin: rules live in package registry, status codes in package errcode.
package distribution

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/limits"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/proxy"
	"github.com/berth-registry/berth/internal/registry"
)

// Options configure the API.
type Options struct {
	// MaxManifestSize bounds a manifest body in bytes.
	MaxManifestSize int64
	// Mirror serves mirrored repositories; nil disables mirroring.
	Mirror *proxy.Mirror
	// Guard authenticates and authorizes requests; nil leaves the API open.
	Guard *Guard
	// CanRead reports whether the request's caller may read a repository (for mounts
	// without "from"). Nil allows everything.
	CanRead func(r *http.Request, repo string) bool
	// Trust checks signature policies before a manifest is served; nil checks none.
	Trust PullPolicy
	// Scan checks vulnerability scan policies before a manifest is served and hears of
	// pushes (scan.go); nil checks none.
	Scan ScanPolicy
	// Pulls counts manifest pulls (pulls.go); nil counts none.
	Pulls PullCounter
	// ReadOnly refuses writes to repositories another component fills (the Hugging
	// Face mirror's project) with the error it returns; nil refuses none.
	ReadOnly func(repo string) error
}

// API serves /v2/.
type API struct {
	reg    *registry.Registry
	mirror *proxy.Mirror
	guard  *Guard
	opts   Options
	log    *slog.Logger
}

// New returns the API handler.
func New(reg *registry.Registry, opts Options, log *slog.Logger) *API {
	if opts.MaxManifestSize <= 0 {
		opts.MaxManifestSize = 4 << 20
	}
	if opts.CanRead == nil {
		opts.CanRead = func(*http.Request, string) bool { return true }
	}
	if opts.Guard != nil {
		g := opts.Guard
		opts.CanRead = func(r *http.Request, repo string) bool {
			c := callerOf(r)
			if c == nil {
				return false
			}
			ok, err := g.allows(r.Context(), c, repo, []auth.Action{auth.Pull})
			return err == nil && ok
		}
	}
	return &API{reg: reg, mirror: opts.Mirror, guard: opts.Guard, opts: opts, log: log}
}

// route is a parsed /v2/ path.
type route struct {
	kind string // ping, catalog, tags, manifest, blob, upload, referrers
	name string // repository
	ref  string // tag, digest or upload id
}

// Route names used as metric labels.
const (
	routePing      = "ping"
	routeCatalog   = "catalog"
	routeTags      = "tags"
	routeManifest  = "manifest"
	routeBlob      = "blob"
	routeUpload    = "upload"
	routeReferrers = "referrers"
)

// parseRoute splits a /v2/ path. Repository names contain slashes, so the path is read
// from the right: the last segment is the reference, the one before it the resource.
func parseRoute(path string) (route, bool) {
	rt, ok := splitRoute(path)
	if ok && rt.kind != routePing && rt.kind != routeCatalog && rt.name == "" {
		return route{}, false // "/v2//tags/list" names no repository
	}
	return rt, ok
}

func splitRoute(path string) (route, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/v2" {
			return route{kind: routePing}, true
		}
		return route{}, false
	}
	switch rest {
	case "":
		return route{kind: routePing}, true
	case "_catalog":
		return route{kind: routeCatalog}, true
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return route{kind: routeTags, name: name}, true
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads/"); ok {
		return route{kind: routeUpload, name: name}, true
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads"); ok {
		return route{kind: routeUpload, name: name}, true
	}
	j := strings.LastIndexByte(rest, '/')
	if j <= 0 {
		return route{}, false
	}
	ref, head := rest[j+1:], rest[:j]
	if name, ok := strings.CutSuffix(head, "/blobs/uploads"); ok && ref != "" {
		return route{kind: routeUpload, name: name, ref: ref}, true
	}
	k := strings.LastIndexByte(head, '/')
	if k <= 0 || ref == "" {
		return route{}, false
	}
	name := head[:k]
	switch head[k+1:] {
	case "manifests":
		return route{kind: routeManifest, name: name, ref: ref}, true
	case "blobs":
		return route{kind: routeBlob, name: name, ref: ref}, true
	case "referrers":
		return route{kind: routeReferrers, name: name, ref: ref}, true
	}
	return route{}, false
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		a.fail(w, r, errcode.NameInvalid.New("no such API endpoint or invalid repository name"))
		return
	}
	setRouteLabel(r, rt.kind)
	if rt.name != "" {
		if err := registry.ValidateName(rt.name); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	var ns string
	if r.URL.RawQuery != "" {
		if ns = r.URL.Query().Get("ns"); ns != "" {
			// containerd names the upstream a mirror request is meant for; echo it as the
			// spec's proxying section asks.
			w.Header().Set("OCI-Namespace", ns)
		}
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	var target *proxy.Target
	if a.mirror != nil && rt.name != "" {
		t, err := a.mirror.Resolve(r.Context(), rt.name, ns)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		target = t
	}
	stored := rt.name
	if target != nil {
		stored = target.LocalRepo
	}
	defer a.countPull(w, r, rt, stored)
	if a.guard != nil {
		// Authorization is on the repository as stored: a mirrored pull of "pause" with
		// ns=registry.k8s.io reads registry.k8s.io/pause.
		effective := rt
		if target != nil {
			effective.name = target.LocalRepo
		}
		admitted, ok := a.admit(w, r, effective, target != nil && !read)
		// Audited either way: denied pushes, pulls and deletes are part of the trail.
		defer func() {
			if st, ok := w.(interface{ Status() int }); ok {
				a.guard.audited(admitted, effective, st.Status())
			}
		}()
		if !ok {
			return
		}
		r = admitted
	}
	if !read && target == nil && a.opts.ReadOnly != nil && rt.name != "" {
		if err := a.opts.ReadOnly(rt.name); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if target != nil {
		if !read {
			a.fail(w, r, a.mirror.ReadOnly(target, rt.name))
			return
		}
		a.serveMirror(w, r, rt, target)
		return
	}
	switch rt.kind {
	case routePing:
		a.ping(w, r)
	case routeCatalog:
		a.catalog(w, r)
	case routeTags:
		a.tags(w, r, rt.name)
	case routeManifest:
		a.manifest(w, r, rt.name, rt.ref)
	case routeBlob:
		a.blob(w, r, rt.name, rt.ref)
	case routeUpload:
		a.upload(w, r, rt.name, rt.ref)
	case routeReferrers:
		a.referrers(w, r, rt.name, rt.ref)
	}
}

// admit authenticates and authorizes the request; false means it was answered. A write
// to a mirrored name (mirrorWrite) is only authenticated: every caller who could
// authenticate gets the same refusal, which says why, instead of a bare denial.
func (a *API) admit(w http.ResponseWriter, r *http.Request, rt route, mirrorWrite bool) (*http.Request, bool) {
	c, err := a.guard.authenticate(r)
	if err != nil {
		if errors.Is(err, errcode.Unauthorized) {
			a.guard.challenge(w, r, rt.name, requiredActions(rt, r.Method), false)
		}
		a.fail(w, r, err)
		return r, false
	}
	r = r.WithContext(meta.WithActor(context.WithValue(r.Context(), callerKey{}, c), c.p.Name)) // events name who changed what
	// Credentials are charged to their principal's budget once known; anonymous callers
	// were charged by address before this.
	if err := limits.Charge(w, r, c.budgetKey()); err != nil {
		a.fail(w, r, err)
		return r, false
	}
	if mirrorWrite {
		if c.p.Kind == "anonymous" {
			a.guard.challenge(w, r, rt.name, requiredActions(rt, r.Method), c.claims != nil)
			a.fail(w, r, errcode.Unauthorized.New("authentication required"))
			return r, false
		}
		return r, true
	}
	if err := a.guard.authorize(w, r, c, rt.name, requiredActions(rt, r.Method)); err != nil {
		a.fail(w, r, err)
		return r, false
	}
	creates := (rt.kind == routeManifest && r.Method == http.MethodPut) || (rt.kind == routeUpload && r.Method == http.MethodPost)
	if creates {
		err := a.ensureProject(r.Context(), c, rt.name)
		switch {
		case errors.Is(err, auth.ErrProjectTaken):
			a.fail(w, r, errcode.Denied.New("project "+oci.Project(rt.name)+" was just created by someone else; ask its administrator for access"))
			return r, false
		case errors.Is(err, auth.ErrInvalidCredentials):
			a.fail(w, r, errcode.Unauthorized.New("the account this token names is gone or disabled"))
			return r, false
		case err != nil:
			a.fail(w, r, errcode.Internal.Wrap(err, ""))
			return r, false
		}
	}
	return r, true
}

// ensureProject creates the project a push names, or re-checks the push right when
// it exists. A token caller's principal carries only what the token says (no admin
// flag, no robot permissions), so it is rebuilt from the database first.
func (a *API) ensureProject(ctx context.Context, c *caller, repo string) error {
	p := c.p
	if c.claims != nil {
		live, err := a.guard.svc.Principal(ctx, p.Kind, p.Name, p.Groups)
		if err != nil {
			return err
		}
		p = live
	}
	return a.guard.svc.EnsureProject(ctx, p, repo)
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	// A body cut for idling fails whatever read it; the client is told the real reason.
	err = limits.BodyError(r, err)
	if d := limits.RetryAfter(err); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
	e := errcode.Write(w, r, err)
	if e.Desc == errcode.Internal || e.Desc == errcode.Unavailable {
		a.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	setError(r, e.Desc.Code)
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, a *API, allowed string) {
	w.Header().Set("Allow", allowed)
	a.fail(w, r, errcode.Unsupported.New("method "+r.Method+" is not allowed here"))
}

func (a *API) ping(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, a, "GET, HEAD")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte("{}"))
	}
}
