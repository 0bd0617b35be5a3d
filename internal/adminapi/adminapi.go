// Package adminapi serves Berth's admin REST API under /api/v1: projects and their
// members, users, robot accounts, the audit trail and an htpasswd import, described by
// the OpenAPI 3 document at /api/v1/openapi.json.
//
// Callers authenticate as on /v2/: Basic credentials (a user's password or a robot's
// secret) or a Bearer token from /token. System administrators may do everything;
// project administrators manage their projects' settings, members and robots and read
// their projects' audit entries. Handlers are thin: parse and validate, authorize, call
// the metadata store or the auth service, record the change in the audit trail, write
// JSON. Errors use the registry's error body, {"errors":[{"code","message"}]}.
package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/inventory"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/trust"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// maxBody bounds request bodies (JSON objects and htpasswd files).
const maxBody = 1 << 20

// API is the admin API handler.
type API struct {
	svc  *auth.Service
	meta *meta.Store
	log  *slog.Logger
	mux  *http.ServeMux
	// trust serves the signature policy routes; nil answers them UNSUPPORTED.
	trust *trust.Evaluator
	// quotas serves project quotas and usage (quotas.go); nil answers them UNSUPPORTED.
	quotas Quotas
	// tagRules serves retention policies and immutable-tag rules (tagrules.go); nil
	// answers them UNSUPPORTED.
	tagRules TagRules
	// scanner serves scan policies and reports (scan.go); nil answers them UNSUPPORTED.
	scanner Scanner
	// webhooks serves webhook subscriptions (webhooks.go); nil answers them UNSUPPORTED.
	webhooks Webhooks
	// replication serves replication rules (replication.go); nil answers them UNSUPPORTED.
	replication Replication
	// reg and inv serve the repository routes (repositories.go); nil answers them
	// UNSUPPORTED.
	reg *registry.Registry
	inv *inventory.Store
	// warm runs mirror warm-ups (nil: no upstreams), one at a time (warmSlots).
	warm      WarmFunc
	warmSlots chan struct{}
}

// caller is an authenticated request's principal and client address.
type caller struct {
	p      *auth.Principal
	remote string
}

// handlerFunc serves one route; a returned error is written as the error body.
type handlerFunc func(a *API, w http.ResponseWriter, r *http.Request, c *caller) error

// route is one operation: method and path (relative to Prefix, with {wildcards}).
type route struct {
	method, path string
	action       string // audit action of a change (recorded when denied, too; reads as api.read)
	public       bool   // served without credentials
	h            handlerFunc
}

// routes is the API: the router is built from it, and a test checks it against the
// OpenAPI document.
var routes = []route{
	{method: "GET", path: "/openapi.json", public: true, h: (*API).openAPI},

	{method: "GET", path: "/projects", h: (*API).listProjects},
	{method: "POST", path: "/projects", action: "project.create", h: (*API).createProject},
	{method: "GET", path: "/projects/{project}", h: (*API).getProject},
	{method: "PATCH", path: "/projects/{project}", action: "project.update", h: (*API).patchProject},
	{method: "DELETE", path: "/projects/{project}", action: "project.delete", h: (*API).deleteProject},

	{method: "GET", path: "/projects/{project}/quota", h: (*API).getQuota},
	{method: "PUT", path: "/projects/{project}/quota", action: "project.quota", h: (*API).putQuota},

	{method: "GET", path: "/projects/{project}/retention", h: (*API).getRetention},
	{method: "PUT", path: "/projects/{project}/retention", action: "retention.put", h: (*API).putRetention},
	{method: "DELETE", path: "/projects/{project}/retention", action: "retention.delete", h: (*API).deleteRetention},
	{method: "POST", path: "/projects/{project}/retention/run", action: "retention.run", h: (*API).runRetention},
	{method: "GET", path: "/projects/{project}/immutable", h: (*API).listImmutable},
	{method: "POST", path: "/projects/{project}/immutable", action: "immutable.add", h: (*API).addImmutable},
	{method: "DELETE", path: "/projects/{project}/immutable/{rule}", action: "immutable.delete", h: (*API).deleteImmutable},

	{method: "GET", path: "/projects/{project}/scan-policy", h: (*API).getScanPolicy},
	{method: "PUT", path: "/projects/{project}/scan-policy", action: "scan.policy", h: (*API).putScanPolicy},
	{method: "DELETE", path: "/projects/{project}/scan-policy", action: "scan.policy.delete", h: (*API).deleteScanPolicy},
	{method: "GET", path: "/upstreams/{upstream}/scan-policy", h: (*API).getScanPolicy},
	{method: "PUT", path: "/upstreams/{upstream}/scan-policy", action: "scan.policy", h: (*API).putScanPolicy},
	{method: "DELETE", path: "/upstreams/{upstream}/scan-policy", action: "scan.policy.delete", h: (*API).deleteScanPolicy},
	{method: "GET", path: "/projects/{project}/repositories/{repository}/manifests/{digest}/scan", h: (*API).getScanReport},
	{method: "POST", path: "/projects/{project}/repositories/{repository}/manifests/{digest}/scan", action: "scan.request", h: (*API).requestScan},
	{method: "GET", path: "/projects/{project}/scan/reports", h: (*API).projectReports},
	{method: "GET", path: "/vulnerabilities/{id}", h: (*API).affected},
	{method: "GET", path: "/scan/db", h: (*API).scanDB},
	{method: "GET", path: "/scan/sbom-key", h: (*API).sbomKey},

	{method: "GET", path: "/webhooks", h: (*API).listWebhooks},
	{method: "POST", path: "/webhooks", action: "webhook.create", h: (*API).createSystemWebhook},
	{method: "GET", path: "/projects/{project}/webhooks", h: (*API).listProjectWebhooks},
	{method: "POST", path: "/projects/{project}/webhooks", action: "webhook.create", h: (*API).createProjectWebhook},
	{method: "GET", path: "/webhooks/{webhook}", h: (*API).getWebhook},
	{method: "PATCH", path: "/webhooks/{webhook}", action: "webhook.update", h: (*API).patchWebhook},
	{method: "DELETE", path: "/webhooks/{webhook}", action: "webhook.delete", h: (*API).deleteWebhook},
	{method: "POST", path: "/webhooks/{webhook}/ping", action: "webhook.ping", h: (*API).pingWebhook},
	{method: "GET", path: "/webhooks/{webhook}/deliveries", h: (*API).listDeliveries},
	{method: "GET", path: "/webhooks/{webhook}/deliveries/{delivery}", h: (*API).getDelivery},
	{method: "POST", path: "/webhooks/{webhook}/deliveries/{delivery}/replay", action: "webhook.replay", h: (*API).replayDelivery},
	{method: "POST", path: "/webhooks/{webhook}/replay", action: "webhook.replay", h: (*API).replayFailed},

	{method: "GET", path: "/replication/rules", h: (*API).listReplicationRules},
	{method: "POST", path: "/replication/rules", action: "replication.create", h: (*API).createReplicationRule},
	{method: "GET", path: "/replication/rules/{rule}", h: (*API).getReplicationRule},
	{method: "PATCH", path: "/replication/rules/{rule}", action: "replication.update", h: (*API).patchReplicationRule},
	{method: "DELETE", path: "/replication/rules/{rule}", action: "replication.delete", h: (*API).deleteReplicationRule},
	{method: "POST", path: "/replication/rules/{rule}/run", action: "replication.run", h: (*API).runReplicationRule},
	{method: "GET", path: "/replication/rules/{rule}/executions", h: (*API).listReplicationExecutions},
	{method: "GET", path: "/replication/executions/{execution}", h: (*API).getReplicationExecution},

	{method: "GET", path: "/projects/{project}/members", h: (*API).listMembers},
	{method: "PUT", path: "/projects/{project}/members", action: "member.set", h: (*API).setMember},
	{method: "DELETE", path: "/projects/{project}/members/{principal}", action: "member.remove", h: (*API).removeMember},

	{method: "GET", path: "/repositories", h: (*API).searchRepositories},
	{method: "GET", path: "/projects/{project}/repositories", h: (*API).listRepositories},
	{method: "GET", path: "/projects/{project}/repositories/{repository}", h: (*API).getRepository},
	{method: "DELETE", path: "/projects/{project}/repositories/{repository}", action: "repository.delete", h: (*API).deleteRepository},
	{method: "GET", path: "/projects/{project}/repositories/{repository}/artifacts", h: (*API).listArtifacts},
	{method: "GET", path: "/projects/{project}/repositories/{repository}/tags", h: (*API).listTags},
	{method: "DELETE", path: "/projects/{project}/repositories/{repository}/tags/{tag}", action: "tag.delete", h: (*API).deleteTag},
	{method: "DELETE", path: "/projects/{project}/repositories/{repository}/manifests/{digest}", action: "manifest.delete", h: (*API).deleteManifest},

	{method: "GET", path: "/projects/{project}/robots", h: (*API).listRobots},
	{method: "POST", path: "/projects/{project}/robots", action: "robot.create", h: (*API).createRobot},
	{method: "GET", path: "/projects/{project}/robots/{robot}", h: (*API).getRobot},
	{method: "PATCH", path: "/projects/{project}/robots/{robot}", action: "robot.update", h: (*API).patchRobot},
	{method: "DELETE", path: "/projects/{project}/robots/{robot}", action: "robot.delete", h: (*API).deleteRobot},
	{method: "POST", path: "/projects/{project}/robots/{robot}/rotate", action: "robot.rotate", h: (*API).rotateRobot},

	{method: "GET", path: "/robots", h: (*API).listRobots},
	{method: "POST", path: "/robots", action: "robot.create", h: (*API).createRobot},
	{method: "GET", path: "/robots/{robot}", h: (*API).getRobot},
	{method: "PATCH", path: "/robots/{robot}", action: "robot.update", h: (*API).patchRobot},
	{method: "DELETE", path: "/robots/{robot}", action: "robot.delete", h: (*API).deleteRobot},
	{method: "POST", path: "/robots/{robot}/rotate", action: "robot.rotate", h: (*API).rotateRobot},

	{method: "GET", path: "/users", h: (*API).listUsers},
	{method: "POST", path: "/users", action: "user.create", h: (*API).createUser},
	{method: "GET", path: "/users/me", h: (*API).me},
	{method: "GET", path: "/users/me/cli-secret", h: (*API).getCLISecret},
	{method: "POST", path: "/users/me/cli-secret", action: "user.cli-secret", h: (*API).rotateCLISecret},
	{method: "DELETE", path: "/users/me/cli-secret", action: "user.cli-secret", h: (*API).revokeCLISecret},
	{method: "GET", path: "/users/{user}/cli-secret", h: (*API).getCLISecret},
	{method: "POST", path: "/users/{user}/cli-secret", action: "user.cli-secret", h: (*API).rotateCLISecret},
	{method: "DELETE", path: "/users/{user}/cli-secret", action: "user.cli-secret", h: (*API).revokeCLISecret},
	{method: "POST", path: "/users/import", action: "user.import", h: (*API).importHtpasswd},
	{method: "GET", path: "/users/{user}", h: (*API).getUser},
	{method: "PATCH", path: "/users/{user}", action: "user.update", h: (*API).patchUser},
	{method: "DELETE", path: "/users/{user}", action: "user.delete", h: (*API).deleteUser},

	{method: "GET", path: "/audit", h: (*API).listAudit},

	{method: "GET", path: "/policies", h: (*API).listPolicies},
	{method: "GET", path: "/policies/{policy}", h: (*API).getPolicy},
	{method: "PUT", path: "/policies/{policy}", action: "policy.put", h: (*API).putPolicy},
	{method: "DELETE", path: "/policies/{policy}", action: "policy.delete", h: (*API).deletePolicy},
	{method: "GET", path: "/verify", h: (*API).verifyImage},

	{method: "POST", path: "/mirror/warm", action: "mirror.warm", h: (*API).warmMirror},
}

// New returns the API; mount it at Prefix+"/".
func New(svc *auth.Service, m *meta.Store, log *slog.Logger) *API {
	a := &API{svc: svc, meta: m, log: log, mux: http.NewServeMux()}
	byPath := map[string]map[string]route{}
	var paths []string
	for _, rt := range routes {
		if byPath[rt.path] == nil {
			byPath[rt.path] = map[string]route{}
			paths = append(paths, rt.path)
		}
		byPath[rt.path][rt.method] = rt
	}
	for _, p := range paths {
		a.mux.Handle(Prefix+p, a.dispatch(byPath[p]))
	}
	a.mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, errcode.NotFound.New("no such API route: "+r.URL.Path))
	})
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store") // answers carry secrets and access rights
	a.mux.ServeHTTP(w, r)
}

// dispatch serves one path: it picks the method's route (405 otherwise), authenticates
// the caller and runs the handler.
func (a *API) dispatch(methods map[string]route) http.Handler {
	var allow []string
	for m := range methods {
		allow = append(allow, m)
	}
	slices.Sort(allow)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, ok := methods[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			a.fail(w, r, errcode.Unsupported.New("method "+r.Method+" is not allowed here; use "+strings.Join(allow, ", ")))
			return
		}
		c := &caller{p: auth.Anonymous, remote: remoteAddr(r)}
		if p, ok := principalFrom(r); ok {
			c.p = p
			r = r.WithContext(meta.WithActor(r.Context(), p.Name))
		} else if !rt.public {
			p, err := a.authenticate(r)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			c.p = p
			r = r.WithContext(meta.WithActor(r.Context(), p.Name)) // events name who changed what
		}
		err := rt.h(a, w, r, c)
		if err == nil {
			return
		}
		if errors.Is(err, errcode.Denied) {
			// Refused reads are audited too, as refused pulls are on /v2/.
			action := rt.action
			if action == "" {
				action = "api.read"
			}
			a.svc.Record(meta.AuditEntry{Actor: c.p.Name, ActorType: c.p.Kind, Action: action,
				Resource: deniedResource(r), Result: "denied", Remote: c.remote, Detail: r.Method + " " + r.URL.Path})
		}
		a.fail(w, r, err)
	})
}

// deniedResource names what a refused change was about, as the audit trail names it.
func deniedResource(r *http.Request) string {
	switch {
	case r.PathValue("repository") != "":
		return repoResource(r)
	case r.PathValue("robot") != "":
		name, err := robotName(r.PathValue("project"), r.PathValue("robot"))
		if err != nil {
			return r.PathValue("robot")
		}
		return name
	case r.PathValue("project") != "":
		return r.PathValue("project")
	case r.PathValue("user") != "":
		return userResource(r.PathValue("user"))
	}
	return ""
}

// userResource is how the audit trail names a user account: "user$alice" cannot be
// taken for a repository ("team/app:v1"), a project ("team") or a robot ("robot$ci").
func userResource(name string) string { return "user$" + name }

// authenticate identifies the caller by a Bearer token from /token or Basic
// credentials; there is no anonymous access to the admin API.
func (a *API) authenticate(r *http.Request) (*auth.Principal, error) {
	h := r.Header.Get("Authorization")
	var p *auth.Principal
	var err error
	switch {
	case h == "":
		return nil, errcode.Unauthorized.New("authentication required: Basic credentials or a Bearer token from /token")
	case len(h) > 7 && strings.EqualFold(h[:7], "bearer "):
		claims, verr := a.svc.Tokens.Verify(strings.TrimSpace(h[7:]))
		if verr != nil || claims.Refresh {
			return nil, errcode.Unauthorized.New("invalid or expired token")
		}
		kind := claims.Kind
		if kind == "" {
			kind = "user"
		}
		if kind == "anonymous" {
			return nil, errcode.Unauthorized.New("authentication required: an anonymous token identifies nobody")
		}
		// From the database, not the token: rights and account state are current.
		p, err = a.svc.Principal(r.Context(), kind, claims.Subject, claims.Groups)
	default:
		user, pass, ok := r.BasicAuth()
		if !ok {
			return nil, errcode.Unauthorized.New("unsupported Authorization scheme: use Basic or Bearer")
		}
		p, err = a.svc.Login(r.Context(), user, pass, remoteAddr(r))
	}
	switch {
	case errors.Is(err, auth.ErrTooManyFailures):
		return nil, errcode.TooManyRequests.New(err.Error())
	case errors.Is(err, auth.ErrInvalidCredentials):
		return nil, errcode.Unauthorized.New("invalid username or password")
	case errors.Is(err, auth.ErrDirectoryDown):
		return nil, errcode.Unavailable.Wrap(err, "the directory (LDAP) is unavailable")
	case err != nil:
		return nil, storeErr(err, "")
	case p == nil || p.Kind == "anonymous":
		return nil, errcode.Unauthorized.New("authentication required")
	}
	return p, nil
}

// fail writes err as the error body; a 401 carries the Basic challenge, unexpected
// failures are logged (their detail never reaches the client).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errcode.Unauthorized) {
		w.Header().Set("WWW-Authenticate", `Basic realm="berth"`)
	}
	if e := errcode.Write(w, r, err); e.Desc.Status >= 500 {
		a.log.Error("admin API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

// storeErr turns a store error into an API error; what names the object ("project team").
func storeErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, meta.ErrNotFound):
		return errcode.NotFound.New(what + " not found")
	case errors.Is(err, meta.ErrExists):
		return errcode.Conflict.New(what + " already exists")
	case meta.IsDiskFull(err):
		return errcode.StorageFull.Wrap(err, "storage full: the database has no space left; delete content and let GC free space, then retry")
	case meta.IsUnavailable(err):
		return errcode.Unavailable.Wrap(err, "the database is unavailable")
	}
	return err
}

// invalid is a 400 INVALID_REQUEST with a formatted message.
func invalid(format string, args ...any) error {
	return errcode.InvalidRequest.New(fmt.Sprintf(format, args...))
}

func denied(msg string) error { return errcode.Denied.New(msg) }

func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// decode reads a JSON object body strictly: application/json, at most maxBody bytes,
// no unknown fields, nothing after the object.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return invalid("Content-Type must be application/json")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the JSON object")
			if terr != nil {
				err = terr
			}
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooLarge):
		return errcode.RequestTooLarge.New("request body exceeds 1 MiB")
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errcode.RequestTimeout.New("request body not received in time")
	case errors.Is(err, io.EOF):
		return invalid("empty body: a JSON object is required")
	}
	return invalid("malformed JSON body: %v", err)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// onlyParams rejects query parameters the route does not know (typos would otherwise
// silently widen a listing).
func onlyParams(r *http.Request, names ...string) error {
	for k := range r.URL.Query() {
		if !slices.Contains(names, k) {
			return invalid("unknown query parameter %q", k)
		}
	}
	return nil
}

// page parses the n and last pagination parameters of name-ordered listings.
func page(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	n = 100
	if s := q.Get("n"); s != "" {
		if n, err = strconv.Atoi(s); err != nil || n < 1 || n > 1000 {
			return 0, "", invalid("n must be an integer from 1 to 1000")
		}
	}
	return n, q.Get("last"), nil
}

// setNext sets the Link header to the next page: the request's URL with key=value.
func setNext(w http.ResponseWriter, r *http.Request, key, value string) {
	q := r.URL.Query()
	q.Set(key, value)
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	w.Header().Set("Link", "<"+u.String()+`>; rel="next"`)
}

// accountName is the grammar of user names and robot name suffixes.
var accountName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// validPathName accepts what may name an existing account in a path: directory users
// keep their directory's spelling, so only length and control characters are checked.
func validPathName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
