// Package hf is Berth's Hugging Face mirror: a pull-through cache of the Hub's read API
// (what huggingface_hub, the hf CLI, transformers and @huggingface/hub use) served on
// Berth's port under a path prefix, so clients set HF_ENDPOINT=http://berth:5000/hf.
//
// Repository info, revisions and tree listings come from the Hub and are cached in the
// database: a branch or tag's commit for RevisionTTL, then asked again, and served stale
// when the Hub is down or rate-limits; listings at a commit never change. Files are
// fetched once per file however many clients ask at once (package spool streams the
// download to all of them), verified before the last byte reaches anyone (the sha256
// of an LFS file, the git blob id of a regular one), and stored once in the blob store
// by sha256 under the project's OCI repository (hf/org/name), where a cached revision
// is also a CNCF ModelPack artifact (modelpack.go). Berth's own Hub token is used for
// gated repositories and never reaches a client; clients authenticate to Berth.
package hf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/registry"
)

// Authorizer checks that a request's caller may pull an OCI repository (Berth's auth,
// distribution.Guard); nil when auth is off.
type Authorizer interface {
	AuthorizePull(w http.ResponseWriter, r *http.Request, repo string) error
}

// Service is the mirror.
type Service struct {
	cfg      config.HF
	store    *Store
	reg      *registry.Registry
	up       *upstream
	auth     Authorizer
	spoolDir string
	log      *slog.Logger
	metrics  *Metrics

	calls   singleflight.Group // revision lookups, file HEADs, tree listings
	mu      sync.Mutex
	flights map[string]*download
	heads   map[string]headEntry // file metadata at a commit, briefly (HEAD then GET)
	// evictNow nudges Run after a download.
	evictNow chan struct{}
}

// New builds the mirror. spoolDir holds downloads in flight.
func New(cfg config.HF, store *Store, reg *registry.Registry, auth Authorizer, spoolDir string, m *Metrics, log *slog.Logger) (*Service, error) {
	up, err := newUpstream(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(spoolDir, 0o750); err != nil {
		return nil, fmt.Errorf("hf: spool dir: %w", err)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Service{cfg: cfg, store: store, reg: reg, up: up, auth: auth, spoolDir: spoolDir, log: log, metrics: m,
		flights: map[string]*download{}, heads: map[string]headEntry{}, evictNow: make(chan struct{}, 1)}, nil
}

// Prefix is the URL path the mirror answers under.
func (s *Service) Prefix() string { return s.cfg.Prefix }

// allows applies hf.allow to a repository (datasets as datasets/org/name).
func (s *Service) allows(r Repo) bool {
	if len(s.cfg.Allow) == 0 {
		return true
	}
	for _, p := range s.cfg.Allow {
		if ok, _ := path.Match(p, r.String()); ok {
			return true
		}
	}
	return false
}

// ServeHTTP answers the Hub's read API below the prefix.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	esc := strings.TrimPrefix(r.URL.EscapedPath(), s.cfg.Prefix)
	rt, err := parseRoute(esc)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	method := http.MethodGet
	if rt.kind == routePathsInfo {
		method = http.MethodPost // a read, with the paths in the body
	}
	if r.Method != method && (method != http.MethodGet || r.Method != http.MethodHead) {
		w.Header().Set("Allow", map[string]string{http.MethodGet: "GET, HEAD", http.MethodPost: "POST"}[method])
		s.fail(w, r, &hubError{status: http.StatusMethodNotAllowed, msg: "the Hugging Face mirror is read-only; this path answers " + method})
		return
	}
	if !s.allows(rt.repo) {
		s.fail(w, r, &hubError{status: http.StatusForbidden, msg: fmt.Sprintf("repository %s is not allowed to be mirrored (hf.allow)", rt.repo)})
		return
	}
	local, err := LocalRepo(s.cfg.Project, rt.repo)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.auth != nil {
		if err := s.auth.AuthorizePull(w, r, local); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	switch rt.kind {
	case routeInfo:
		s.serveInfo(w, r, rt)
	case routeTree:
		s.serveTree(w, r, rt)
	case routeResolve:
		s.serveFile(w, r, rt, local)
	case routePathsInfo:
		s.servePathsInfo(w, r, rt)
	}
}

// hubError is an answer in the Hub's error format: status, X-Error-Code (RepoNotFound,
// RevisionNotFound, EntryNotFound, GatedRepo — what huggingface_hub maps to its
// exceptions), X-Error-Message and a JSON body {"error": ...}.
type hubError struct {
	status int
	code   string
	msg    string
	commit string
}

func (e *hubError) Error() string { return e.msg }

// fail writes err as the Hub would.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	he := s.asHubError(err)
	h := w.Header()
	for _, k := range []string{"Content-Length", "ETag", "X-Linked-Etag", "X-Linked-Size", "Accept-Ranges", "Content-Range"} {
		h.Del(k)
	}
	if he.code != "" {
		h.Set("X-Error-Code", he.code)
	}
	h.Set("X-Error-Message", he.msg)
	if he.commit != "" {
		h.Set("X-Repo-Commit", he.commit)
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(he.status)
	if he.status >= 500 {
		s.log.WarnContext(r.Context(), "hf mirror", "path", r.URL.Path, "status", he.status, "err", err)
	}
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(map[string]string{"error": he.msg})
	}
}

func (s *Service) asHubError(err error) *hubError {
	var he *hubError
	var br *BadRequest
	var ue *upstreamError
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &br):
		return &hubError{status: http.StatusBadRequest, msg: br.Msg}
	case errors.As(err, &ue):
		switch {
		case ue.status == http.StatusTooManyRequests:
			return &hubError{status: http.StatusTooManyRequests, msg: "the Hugging Face Hub rate-limits this mirror and nothing cached can stand in"}
		case ue.status == 0 || ue.status >= 500:
			return &hubError{status: http.StatusServiceUnavailable, msg: "the Hugging Face Hub is unavailable and nothing cached can stand in: " + ue.Error()}
		case ue.status == http.StatusUnauthorized || ue.status == http.StatusForbidden:
			// The mirror's own token was refused: the client's credentials are Berth's,
			// so this is a gated or private repository the mirror may not read.
			code := ue.code
			if code == "" {
				code = "RepoNotFound"
			}
			return &hubError{status: ue.status, code: code, msg: "the Hugging Face Hub refused this mirror access (gated or private repository; hf.token): " + ue.message}
		default:
			return &hubError{status: ue.status, code: ue.code, msg: ue.Error(), commit: ue.commit}
		}
	}
	if e := errcode.From(err); e != nil {
		msg := e.Message
		if msg == "" || e.Desc == errcode.Internal {
			msg = e.Desc.Message
		}
		return &hubError{status: e.Desc.Status, msg: msg}
	}
	return &hubError{status: http.StatusInternalServerError, msg: "internal server error"}
}

// normQuery is the query string the Hub's info endpoint is asked and cached with:
// its parameters sorted, unknown ones dropped.
func normQuery(r *http.Request, allowed ...string) string {
	q := r.URL.Query()
	out := make([]string, 0, len(q))
	for _, k := range allowed {
		for _, v := range q[k] {
			out = append(out, k+"="+url.QueryEscape(v))
		}
	}
	return strings.Join(out, "&")
}

// writeJSON answers with a cached JSON document.
func writeJSON(w http.ResponseWriter, r *http.Request, body []byte, how string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Berth-Cache", how)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// revisionInfo is what the mirror reads from the Hub's info answer.
type revisionInfo struct {
	SHA string `json:"sha"`
}

// lookup returns the Hub's info answer for repo at rev (the default branch for "")
// with the commit it names: from the cache while fresh (always for a commit), else from
// the Hub, else stale from the cache when the Hub fails transiently.
func (s *Service) lookup(ctx context.Context, repo Repo, rev, query string) (Revision, string, error) {
	cached, cerr := s.store.Revision(ctx, repo, rev, query)
	if cerr != nil && !errors.Is(cerr, errMissing) {
		return Revision{}, "", cerr
	}
	have := cerr == nil
	if have && (isCommit(rev) || time.Since(cached.FetchedAt) < time.Duration(s.cfg.RevisionTTL)) {
		s.metrics.served("info", "hit")
		return cached, "hit", nil
	}
	key := "info\x00" + repo.String() + "\x00" + rev + "\x00" + query
	v, err, _ := s.calls.Do(key, func() (any, error) {
		return s.fetchInfo(context.WithoutCancel(ctx), repo, rev, query)
	})
	if err != nil {
		if have && transient(err) {
			s.metrics.served("info", "stale")
			s.log.WarnContext(ctx, "Hugging Face Hub failed; serving the cached revision", "repo", repo.String(), "revision", rev, "commit", cached.Commit, "err", err)
			return cached, "stale", nil
		}
		return Revision{}, "", err
	}
	s.metrics.served("info", "miss")
	return v.(Revision), "miss", nil
}

func (s *Service) fetchInfo(ctx context.Context, repo Repo, rev, query string) (Revision, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.cfg.Timeout))
	defer cancel()
	p := "/api/" + repo.apiPath()
	if rev != "" {
		p += "/revision/" + escapeSegment(rev)
	}
	if query != "" {
		p += "?" + query
	}
	body, err := s.getJSON(ctx, p)
	if err != nil {
		return Revision{}, err
	}
	var info revisionInfo
	if err := json.Unmarshal(body, &info); err != nil || !isCommit(info.SHA) {
		return Revision{}, &upstreamError{status: http.StatusBadGateway, message: "the Hub's repository info names no commit (sha)"}
	}
	rv := Revision{Commit: info.SHA, Info: body, FetchedAt: time.Now()}
	if err := s.store.PutRevision(ctx, repo, rev, query, rv); err != nil {
		return Revision{}, err
	}
	return rv, nil
}

// getJSON GETs a bounded JSON document from the Hub.
func (s *Service) getJSON(ctx context.Context, escapedPath string) ([]byte, error) {
	resp, err := s.up.do(ctx, http.MethodGet, escapedPath, http.Header{"Accept": {"application/json"}}, followAll)
	if err != nil {
		return nil, s.upstreamFailed(err)
	}
	defer resp.Body.Close()
	body, err := readBounded(resp, int64(s.cfg.MaxAPIBody))
	if err != nil {
		return nil, s.upstreamFailed(err)
	}
	if !json.Valid(body) {
		return nil, s.upstreamFailed(&upstreamError{status: http.StatusBadGateway, message: "the Hub's answer is not JSON"})
	}
	return body, nil
}

func readBounded(resp *http.Response, limit int64) ([]byte, error) {
	var b strings.Builder
	n, err := io.CopyN(&b, resp.Body, limit+1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, &upstreamError{err: err}
	}
	if n > limit {
		return nil, &upstreamError{status: http.StatusBadGateway, message: fmt.Sprintf("the Hub's answer exceeds hf.maxAPIBody (%d bytes)", limit)}
	}
	return []byte(b.String()), nil
}

func (s *Service) upstreamFailed(err error) error {
	var ue *upstreamError
	if errors.As(err, &ue) {
		reason := "network"
		if ue.status != 0 {
			reason = strconv.Itoa(ue.status)
		}
		s.metrics.upstreamErrors.WithLabelValues(reason).Inc()
	}
	return err
}

// escapeSegment escapes a revision as one path segment (refs/pr/1 → refs%2Fpr%2F1), as
// huggingface_hub does.
func escapeSegment(s string) string {
	return url.PathEscape(s)
}

// escapePath escapes a file path, keeping its slashes.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// maxQuery bounds the query string an answer is cached under.
const maxQuery = 1024

func (s *Service) serveInfo(w http.ResponseWriter, r *http.Request, rt route) {
	query := normQuery(r, "expand", "blobs", "securityStatus", "files_metadata")
	if len(query) > maxQuery {
		s.fail(w, r, bad("query string of more than %d bytes", maxQuery))
		return
	}
	rv, how, err := s.lookup(r.Context(), rt.repo, rt.revision, query)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, r, rv.Info, how)
}

// commitOf resolves a revision to its commit: a commit is itself; a branch or tag goes
// through the info lookup.
func (s *Service) commitOf(ctx context.Context, repo Repo, rev string) (string, string, error) {
	if isCommit(rev) {
		return rev, "hit", nil
	}
	rv, how, err := s.lookup(ctx, repo, rev, "")
	if err != nil {
		return "", "", err
	}
	return rv.Commit, how, nil
}

// maxTreePages bounds a paginated tree listing.
const maxTreePages = 1000

func (s *Service) serveTree(w http.ResponseWriter, r *http.Request, rt route) {
	ctx := r.Context()
	commit, _, err := s.commitOf(ctx, rt.repo, rt.revision)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	query := normQuery(r, "recursive", "expand")
	if len(query) > maxQuery {
		s.fail(w, r, bad("query string of more than %d bytes", maxQuery))
		return
	}
	listing, err := s.tree(ctx, rt.repo, commit, rt.path, query)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	writeJSON(w, r, listing, "hit")
}

// tree returns the listing at a commit, from the cache or by joining the Hub's pages.
func (s *Service) tree(ctx context.Context, repo Repo, commit, p, query string) ([]byte, error) {
	if b, err := s.store.Tree(ctx, repo, commit, p, query); err == nil {
		s.metrics.served("tree", "hit")
		return b, nil
	} else if !errors.Is(err, errMissing) {
		return nil, err
	}
	key := "tree\x00" + repo.String() + "\x00" + commit + "\x00" + p + "\x00" + query
	v, err, _ := s.calls.Do(key, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		next := "/api/" + repo.apiPath() + "/tree/" + commit
		if p != "" {
			next += "/" + escapePath(p)
		}
		if query != "" {
			next += "?" + query
		}
		var all []json.RawMessage
		for page := 0; next != ""; page++ {
			if page == maxTreePages {
				return nil, &upstreamError{status: http.StatusBadGateway, message: "the Hub's tree listing has too many pages"}
			}
			items, link, err := s.treePage(ctx, next)
			if err != nil {
				return nil, err
			}
			for _, it := range items {
				all = append(all, withoutXet(it))
			}
			next = link
		}
		if all == nil {
			all = []json.RawMessage{}
		}
		listing, err := json.Marshal(all)
		if err != nil {
			return nil, err
		}
		if int64(len(listing)) > 8*int64(s.cfg.MaxAPIBody) {
			return nil, &upstreamError{status: http.StatusBadGateway, message: "the Hub's tree listing is too large"}
		}
		return listing, s.store.PutTree(ctx, repo, commit, p, query, listing)
	})
	if err != nil {
		return nil, err
	}
	s.metrics.served("tree", "miss")
	return v.([]byte), nil
}

// treePage fetches one page of a listing and the escaped path of the next one (from
// its Link header, which must stay on the Hub's host).
func (s *Service) treePage(ctx context.Context, escapedPath string) ([]json.RawMessage, string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.cfg.Timeout))
	defer cancel()
	resp, err := s.up.do(ctx, http.MethodGet, escapedPath, http.Header{"Accept": {"application/json"}}, followAll)
	if err != nil {
		return nil, "", s.upstreamFailed(err)
	}
	defer resp.Body.Close()
	body, err := readBounded(resp, int64(s.cfg.MaxAPIBody))
	if err != nil {
		return nil, "", s.upstreamFailed(err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, "", s.upstreamFailed(&upstreamError{status: http.StatusBadGateway, message: "the Hub's tree listing is not a JSON array"})
	}
	next := ""
	if u := nextLink(resp.Header.Get("Link")); u != "" {
		lu, err := s.up.base.Parse(u)
		if err != nil || !strings.EqualFold(lu.Host, s.up.base.Host) || !strings.HasPrefix(lu.EscapedPath(), s.up.base.EscapedPath()+"/api/") {
			return nil, "", &upstreamError{status: http.StatusBadGateway, message: "the Hub's next-page link leaves its API"}
		}
		next = strings.TrimPrefix(lu.EscapedPath(), s.up.base.EscapedPath())
		if lu.RawQuery != "" {
			next += "?" + lu.RawQuery
		}
	}
	return items, next, nil
}

// nextLink finds rel="next" in a Link header.
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok {
			continue
		}
		if strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			return strings.Trim(strings.TrimSpace(target), "<>")
		}
	}
	return ""
}

// withoutXet drops an entry's xetHash: huggingface_hub with hf_xet installed reads it
// from a listing and downloads from the Xet CAS directly, around the mirror. Without
// it every client downloads over plain HTTP from Berth.
func withoutXet(item json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(item, &m) != nil {
		return item
	}
	if _, ok := m["xetHash"]; !ok {
		return item
	}
	delete(m, "xetHash")
	out, err := json.Marshal(m)
	if err != nil {
		return item
	}
	return out
}

// maxPathsInfoBody bounds a paths-info request.
const maxPathsInfoBody = 1 << 20

// servePathsInfo answers POST /api/{type}s/{repo}/paths-info/{rev}: the entries of the
// commit's recursive listing for the paths asked, as JSON ({"paths": [...]}, what
// @huggingface/hub sends) or a form (paths=...&paths=..., huggingface_hub).
func (s *Service) servePathsInfo(w http.ResponseWriter, r *http.Request, rt route) {
	ctx := r.Context()
	var req struct {
		Paths []string `json:"paths"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPathsInfoBody+1))
	if err != nil || len(body) > maxPathsInfoBody {
		s.fail(w, r, bad("paths-info: a body of at most %d bytes", maxPathsInfoBody))
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(body, &req); err != nil {
			s.fail(w, r, bad("paths-info: %v", err))
			return
		}
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			s.fail(w, r, bad("paths-info: %v", err))
			return
		}
		req.Paths = form["paths"]
	}
	want := map[string]bool{}
	for _, p := range req.Paths {
		if err := ValidatePath(p); err != nil {
			s.fail(w, r, err)
			return
		}
		want[p] = true
	}
	commit, _, err := s.commitOf(ctx, rt.repo, rt.revision)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	listing, err := s.tree(ctx, rt.repo, commit, "", "recursive=true")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var items []json.RawMessage
	if err := json.Unmarshal(listing, &items); err != nil {
		s.fail(w, r, err)
		return
	}
	out := []json.RawMessage{}
	for _, it := range items {
		var e struct {
			Path string `json:"path"`
		}
		if json.Unmarshal(it, &e) == nil && want[e.Path] {
			out = append(out, it)
		}
	}
	answer, err := json.Marshal(out)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	writeJSON(w, r, answer, "hit")
}
