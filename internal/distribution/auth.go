package distribution

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
)

// Guard authenticates /v2/ requests (Bearer tokens from /token, or Basic credentials
// directly) and authorizes them against the permission matrix.
type Guard struct {
	svc   *auth.Service
	realm string // token endpoint URL; empty derives it from the request
}

// NewGuard returns a guard; realm may be empty.
func NewGuard(svc *auth.Service, realm string) *Guard { return &Guard{svc: svc, realm: realm} }

type callerKey struct{}

// caller is what the guard learned about a request.
type caller struct {
	p      *auth.Principal
	claims *auth.Claims // set for Bearer requests
}

// budgetKey names the caller's rate and session budgets; "" for anonymous callers,
// who are told apart by client address.
func (c *caller) budgetKey() string {
	if c.p.Kind == "anonymous" {
		return ""
	}
	return c.p.Kind + ":" + c.p.Name
}

func callerOf(r *http.Request) *caller {
	c, _ := r.Context().Value(callerKey{}).(*caller)
	return c
}

func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate identifies the caller. A malformed or failing credential is an error;
// no credential is the anonymous caller.
func (g *Guard) authenticate(r *http.Request) (*caller, error) {
	h := r.Header.Get("Authorization")
	switch {
	case h == "":
		return &caller{p: auth.Anonymous}, nil
	case strings.HasPrefix(h, "Bearer "):
		claims, err := g.svc.Tokens.Verify(strings.TrimPrefix(h, "Bearer "))
		if err != nil || claims.Refresh {
			return nil, errcode.Unauthorized.New("invalid or expired token")
		}
		kind := claims.Kind
		if kind == "" {
			kind = "user"
		}
		return &caller{p: &auth.Principal{Kind: kind, Name: claims.Subject, Groups: claims.Groups}, claims: claims}, nil
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return nil, errcode.Unauthorized.New("unsupported Authorization scheme")
	}
	p, err := g.svc.Login(r.Context(), user, pass, remoteAddr(r))
	switch {
	case errors.Is(err, auth.ErrTooManyFailures):
		return nil, errcode.TooManyRequests.New(err.Error())
	case errors.Is(err, auth.ErrInvalidCredentials):
		return nil, errcode.Unauthorized.New("invalid username or password")
	case errors.Is(err, auth.ErrDirectoryDown):
		return nil, errcode.Unavailable.Wrap(err, "the directory (LDAP) is unavailable")
	case err != nil:
		return nil, errcode.Internal.Wrap(err, "")
	}
	return &caller{p: p}, nil
}

// authorize checks the caller may do actions on repo; a denial to an anonymous caller
// or a token without the scope is 401 with a challenge (the client fetches a token), to
// an authenticated one 403.
func (g *Guard) authorize(w http.ResponseWriter, r *http.Request, c *caller, repo string, actions []auth.Action) error {
	ok, err := g.allows(r.Context(), c, repo, actions)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	if c.claims != nil || c.p.Kind == "anonymous" {
		g.challenge(w, r, repo, actions, c.claims != nil)
		return errcode.Unauthorized.New("authentication required")
	}
	return errcode.Denied.New("requested access to the resource is denied")
}

func (g *Guard) allows(ctx context.Context, c *caller, repo string, actions []auth.Action) (bool, error) {
	if len(actions) == 0 {
		return c.p.Kind != "anonymous", nil // /v2/: any authenticated caller
	}
	if c.claims != nil {
		typ, name := "repository", repo
		if repo == "" {
			typ, name = "registry", "catalog"
		}
		for _, a := range actions {
			if !c.claims.Grants(typ, name, a) {
				return false, nil
			}
		}
		return true, nil
	}
	got, err := g.svc.Allowed(ctx, c.p, repo, actions)
	if err != nil {
		return false, err
	}
	return len(got) == len(actions), nil
}

func (g *Guard) realmFor(r *http.Request) string {
	if g.realm != "" {
		return g.realm
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/token"
}

func (g *Guard) challenge(w http.ResponseWriter, r *http.Request, repo string, actions []auth.Action, insufficient bool) {
	v := `Bearer realm="` + g.realmFor(r) + `",service="` + g.svc.Tokens.Service() + `"`
	if len(actions) > 0 {
		names := make([]string, len(actions))
		for i, a := range actions {
			names[i] = string(a)
		}
		if repo == "" {
			v += `,scope="registry:catalog:*"`
		} else {
			v += `,scope="repository:` + repo + `:` + strings.Join(names, ",") + `"`
		}
	}
	if insufficient {
		v += `,error="insufficient_scope"`
	}
	w.Header().Set("WWW-Authenticate", v)
}

// requiredActions maps a route and method to what the caller must be allowed.
func requiredActions(rt route, method string) []auth.Action {
	switch rt.kind {
	case routePing:
		return nil
	case routeCatalog:
		return []auth.Action{auth.Catalog}
	case routeUpload:
		return []auth.Action{auth.Push}
	case routeManifest, routeBlob:
		switch method {
		case http.MethodGet, http.MethodHead:
			return []auth.Action{auth.Pull}
		case http.MethodDelete:
			return []auth.Action{auth.Delete}
		}
		return []auth.Action{auth.Push}
	}
	return []auth.Action{auth.Pull} // tags, referrers
}

// audited records pulls (manifest GET and HEAD, blob GET), pushes and deletes of
// manifests and blob deletes. Blob HEADs, uploads and listings are not: a push asks
// about every layer first, and the manifest PUT that follows names the image. A refused
// upload start is, though (as a denied push of the repository): a client refused there
// never reaches the manifest PUT, so a denied push would otherwise leave no entry.
func (g *Guard) audited(r *http.Request, rt route, status int) {
	c := callerOf(r)
	if c == nil {
		return
	}
	denied := status == http.StatusUnauthorized || status == http.StatusForbidden
	var action, detail string
	resource := ""
	switch {
	case rt.kind == routeUpload && r.Method == http.MethodPost:
		// A bare anonymous POST is the challenge every client gets before its token,
		// not a refusal of anything it holds.
		if !denied || c.p.Kind == "anonymous" && c.claims == nil {
			return
		}
		action, detail, resource = "push", "upload", rt.name
	case rt.kind == routeManifest && r.Method == http.MethodGet:
		action = "pull"
	case rt.kind == routeManifest && r.Method == http.MethodHead:
		action, detail = "pull", "HEAD"
	case rt.kind == routeManifest && r.Method == http.MethodPut:
		action = "push"
	case rt.kind == routeManifest && r.Method == http.MethodDelete:
		action = "delete"
	case rt.kind == routeBlob && r.Method == http.MethodGet:
		action, detail = "pull", "blob"
	case rt.kind == routeBlob && r.Method == http.MethodDelete:
		action, detail = "delete", "blob"
	default:
		return
	}
	result := "ok"
	if status >= 400 {
		result = "failed"
		if denied {
			result = "denied"
		}
	}
	if resource == "" {
		resource = auditResource(rt)
	}
	g.svc.Record(meta.AuditEntry{Actor: c.p.Name, ActorType: c.p.Kind, Action: action,
		Resource: resource, Result: result, Remote: remoteAddr(r), Detail: detail})
}

// invalidReference stands in the audit trail for a reference that is neither a tag nor
// a digest: recording what a caller sent verbatim let anonymous requests with 60 KB
// references fill the database, and one fixed value lets repeats collapse.
const invalidReference = "<invalid reference>"

// auditResource names what a request was about: "repo:tag" or "repo:digest". The name
// was validated by the router; the reference is checked here.
func auditResource(rt route) string {
	if _, err := oci.ParseDigest(rt.ref); err == nil {
		return rt.name + ":" + rt.ref
	}
	if rt.kind == routeManifest && oci.ValidateTag(rt.ref) == nil {
		return rt.name + ":" + rt.ref
	}
	return rt.name + ":" + invalidReference
}

// Metrics guards /metrics with auth on: metrics name upstreams and describe the whole
// registry's traffic, so they are for system administrators and robots with the
// metrics permission (auth.MayReadMetrics), by Basic credentials (what Prometheus'
// basic_auth sends) or a Bearer token.
func (g *Guard) Metrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p *auth.Principal
		c, err := g.authenticate(r)
		if err == nil {
			p = c.p
		}
		if err == nil && p.Kind == "anonymous" {
			err = errcode.Unauthorized.New("authentication required: an administrator or a robot with the metrics permission")
		}
		if err == nil && c.claims != nil {
			// A token names its subject; its rights are read from the database.
			if p, err = g.svc.Principal(r.Context(), c.p.Kind, c.p.Name, c.p.Groups); err != nil {
				err = errcode.Unauthorized.New("account no longer valid")
			}
		}
		if err == nil && !auth.MayReadMetrics(p) {
			err = errcode.Denied.New("metrics are for administrators and robots with the metrics permission")
		}
		if err != nil {
			if errors.Is(err, errcode.Unauthorized) {
				w.Header().Set("WWW-Authenticate", `Basic realm="berth"`)
			}
			errcode.Write(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// BodyDeadline bounds how long reading a request's body may take. The token endpoint
// and the admin API read small bodies (a form, a JSON object) before they know who is
// asking; without a deadline, one byte every few seconds held a connection and a
// goroutine for as long as the client liked.
func BodyDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Not every ResponseWriter supports deadlines (test recorders); the server's
		// own do, over HTTP/1 and HTTP/2.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		next.ServeHTTP(w, r)
	})
}

// formError says why a token request's form could not be read.
func formError(err error) error {
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		return errcode.RequestTooLarge.Wrap(err, "the token request exceeds 64 KiB")
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return errcode.RequestTimeout.Wrap(err, "the token request's body was not received in time")
	}
	return errcode.Unsupported.Wrap(err, "malformed request")
}

// repositoryActions keeps the actions a repository grant may hold: a token names only
// what the registry checks, whatever a client asked for ("*", "metrics", typos).
func repositoryActions(want []auth.Action) []auth.Action {
	var out []auth.Action
	for _, a := range want {
		if a == auth.Pull || a == auth.Push || a == auth.Delete {
			out = append(out, a)
		}
	}
	return out
}

// TokenHandler serves the Docker token endpoint: GET with Basic credentials (or none,
// for anonymous pulls) and POST with grant_type password or refresh_token. It grants
// the intersection of what was asked and what is allowed, and never fails for missing
// rights.
func TokenHandler(svc *auth.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			errcode.Write(w, r, errcode.Unsupported.New("use GET or POST"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			errcode.Write(w, r, formError(err))
			return
		}
		ctx := r.Context()
		if s := r.Form.Get("service"); s != "" && s != svc.Tokens.Service() {
			errcode.Write(w, r, errcode.Unsupported.New("unknown service "+strconv.Quote(s)))
			return
		}
		var p *auth.Principal
		var err error
		offline := r.Form.Get("offline_token") == "true" || r.Form.Get("access_type") == "offline"
		switch {
		case r.Method == http.MethodPost && r.PostForm.Get("grant_type") == "refresh_token":
			var claims *auth.Claims
			claims, err = svc.Tokens.Verify(r.PostForm.Get("refresh_token"))
			if err != nil || !claims.Refresh {
				errcode.Write(w, r, errcode.Unauthorized.New("invalid refresh token"))
				return
			}
			p, err = svc.Principal(ctx, claims.Kind, claims.Subject, claims.Groups)
		case r.Method == http.MethodPost && r.PostForm.Get("grant_type") == "password":
			p, err = svc.Login(ctx, r.PostForm.Get("username"), r.PostForm.Get("password"), remoteAddr(r))
		case r.Method == http.MethodPost:
			errcode.Write(w, r, errcode.Unsupported.New("grant_type must be password or refresh_token"))
			return
		default:
			if user, pass, ok := r.BasicAuth(); ok {
				p, err = svc.Login(ctx, user, pass, remoteAddr(r))
			} else if r.Header.Get("Authorization") != "" {
				err = auth.ErrInvalidCredentials
			} else {
				p = auth.Anonymous
				offline = false
			}
		}
		switch {
		case errors.Is(err, auth.ErrTooManyFailures):
			errcode.Write(w, r, errcode.TooManyRequests.New(err.Error()))
			return
		case errors.Is(err, auth.ErrInvalidCredentials):
			w.Header().Set("WWW-Authenticate", `Basic realm="berth"`)
			errcode.Write(w, r, errcode.Unauthorized.New("invalid username or password"))
			return
		case errors.Is(err, auth.ErrDirectoryDown):
			errcode.Write(w, r, errcode.Unavailable.Wrap(err, "the directory (LDAP) is unavailable"))
			return
		case err != nil:
			errcode.Write(w, r, errcode.Internal.Wrap(err, ""))
			return
		}
		var scopes []string
		for _, s := range r.Form["scope"] {
			scopes = append(scopes, strings.Fields(s)...)
		}
		access := []auth.Access{}
		for _, raw := range scopes {
			sc, err := auth.ParseScope(raw)
			if err != nil {
				continue // the spec: grant less, never fail
			}
			var granted []auth.Action
			switch {
			case sc.Type == "repository" && oci.ValidateName(sc.Name) == nil:
				granted, err = svc.Allowed(ctx, p, sc.Name, repositoryActions(sc.Actions))
			case sc.Type == "registry" && sc.Name == "catalog":
				granted, err = svc.Allowed(ctx, p, "", sc.Actions)
			}
			if err != nil {
				errcode.Write(w, r, errcode.Internal.Wrap(err, ""))
				return
			}
			if len(granted) > 0 {
				names := make([]string, len(granted))
				for i, a := range granted {
					names[i] = string(a)
				}
				access = append(access, auth.Access{Type: sc.Type, Name: sc.Name, Actions: names})
			}
		}
		token, issued, err := svc.Tokens.Issue(p, access)
		if err != nil {
			errcode.Write(w, r, errcode.Internal.Wrap(err, ""))
			return
		}
		resp := map[string]any{
			"token": token, "access_token": token,
			"expires_in": int(svc.Tokens.Lifetime() / time.Second), "issued_at": issued.UTC().Format(time.RFC3339),
		}
		// No refresh tokens for directory users: their groups must be re-read from the
		// directory, which only a login does.
		if offline && p.Kind != "anonymous" && !p.Directory {
			if rt, err := svc.Tokens.IssueRefresh(p); err == nil {
				resp["refresh_token"] = rt
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}
