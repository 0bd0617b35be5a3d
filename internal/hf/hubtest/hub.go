// Package hubtest is a Hugging Face Hub for tests: the read API huggingface_hub and
// @huggingface/hub use, as the Hub answers it (recorded from huggingface_hub's
// file_download.py, hf_api.py and utils/_http.py): repository info with sha and
// siblings, paginated tree listings (Link rel="next"), resolve HEAD/GET with
// X-Repo-Commit and ETag, LFS files redirected (302) to a separate CDN host with
// X-Linked-Etag (the sha256) and X-Linked-Size plus Xet headers, Range on both hosts,
// errors with X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo).
// It counts requests and bytes and injects faults.
package hubtest

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // git blob ids
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// File is a file of a commit; LFS files are served through the CDN.
type File struct {
	Path string
	Data []byte
	LFS  bool

	sha, oid string // computed once by New
}

// SHA256 is the file's sha256 (hex).
func (f File) SHA256() string {
	if f.sha != "" {
		return f.sha
	}
	s := sha256.Sum256(f.Data)
	return hex.EncodeToString(s[:])
}

// GitOID is the file's git blob id.
func (f File) GitOID() string {
	if f.oid != "" {
		return f.oid
	}
	h := sha1.New() //nolint:gosec // git blob ids
	fmt.Fprintf(h, "blob %d\x00", len(f.Data))
	h.Write(f.Data)
	return hex.EncodeToString(h.Sum(nil))
}

// Repo is a repository: commits by id and refs (branches, tags) naming them.
type Repo struct {
	Type    string // model or dataset
	ID      string
	Gated   bool // needs the Hub token
	Refs    map[string]string
	Commits map[string][]File
}

// Fault is what the Hub does instead of answering.
type Fault string

const (
	NoFault   Fault = ""
	Down      Fault = "503"
	RateLimit Fault = "429"
	Corrupt   Fault = "corrupt bytes"
)

// Request is one request a host received.
type Request struct {
	Host, Method, Path, Range, Authorization string
}

// Hub is the fake Hub and its CDN.
type Hub struct {
	Hub, CDN *httptest.Server
	// Token, when set, is required for gated repositories.
	Token string
	// PageSize is the tree listing's page size.
	PageSize int
	// Renamed maps an old repository id (type/id) to the new one: its resolve URLs
	// answer with a relative redirect, as the Hub's do for a renamed repository.
	Renamed map[string]string

	mu       sync.Mutex
	repos    map[string]*Repo
	fault    Fault
	log      []Request
	rate     int64 // CDN bytes per second, 0 unlimited
	hold     chan struct{}
	cdnBytes int64
	byHash   map[string][]byte // LFS contents by sha256
}

// New starts a Hub with the given repositories.
func New(repos ...*Repo) *Hub {
	h := &Hub{repos: map[string]*Repo{}, PageSize: 2}
	h.byHash = map[string][]byte{}
	for _, r := range repos {
		h.repos[r.Type+"/"+r.ID] = r
		for c, files := range r.Commits {
			for i := range files {
				files[i].sha, files[i].oid = files[i].SHA256(), files[i].GitOID()
				if files[i].LFS {
					h.byHash[files[i].sha] = files[i].Data
				}
			}
			r.Commits[c] = files
		}
	}
	h.Hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	h.CDN = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	return h
}

// Close stops both hosts.
func (h *Hub) Close() { h.Hub.Close(); h.CDN.Close() }

// SetFault makes every later request fail (or, Corrupt, the CDN send wrong bytes).
func (h *Hub) SetFault(f Fault) { h.mu.Lock(); h.fault = f; h.mu.Unlock() }

// SetRate throttles CDN bodies to bytes per second (0: unlimited).
func (h *Hub) SetRate(bps int64) { h.mu.Lock(); h.rate = bps; h.mu.Unlock() }

// Hold makes CDN bodies wait until the returned function is called.
func (h *Hub) Hold() func() {
	ch := make(chan struct{})
	h.mu.Lock()
	h.hold = ch
	h.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// Requests returns what both hosts received.
func (h *Hub) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.log...)
}

// Count counts requests of method whose path contains substr.
func (h *Hub) Count(method, substr string) int {
	n := 0
	for _, r := range h.Requests() {
		if r.Method == method && strings.Contains(r.Path, substr) {
			n++
		}
	}
	return n
}

// CDNBytes is the body bytes the CDN sent.
func (h *Hub) CDNBytes() int64 { h.mu.Lock(); defer h.mu.Unlock(); return h.cdnBytes }

// ResetLog forgets the requests received.
func (h *Hub) ResetLog() { h.mu.Lock(); h.log = nil; h.cdnBytes = 0; h.mu.Unlock() }

// SetRef points a branch or tag at a commit.
func (h *Hub) SetRef(typ, id, ref, commit string) {
	h.mu.Lock()
	h.repos[typ+"/"+id].Refs[ref] = commit
	h.mu.Unlock()
}

func (h *Hub) record(host string, r *http.Request) Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, Request{Host: host, Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"), Authorization: r.Header.Get("Authorization")})
	return h.fault
}

func hubErr(w http.ResponseWriter, status int, code, msg, commit string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	if commit != "" {
		w.Header().Set("X-Repo-Commit", commit)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (h *Hub) repo(typ, id string) *Repo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.repos[typ+"/"+id]
}

// resolve finds a revision's commit.
func (h *Hub) resolve(r *Repo, rev string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev == "HEAD" {
		rev = "main"
	}
	if c, ok := r.Refs[rev]; ok {
		return c, true
	}
	_, ok := r.Commits[rev]
	return rev, ok
}

func (h *Hub) serveHub(w http.ResponseWriter, r *http.Request) {
	switch h.record("hub", r) {
	case Down:
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	case RateLimit:
		w.Header().Set("RateLimit", `"api";r=0;t=60`)
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	}
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	for i, s := range segs {
		segs[i], _ = url.PathUnescape(s)
	}
	if len(segs) >= 3 && segs[0] == "api" {
		h.serveAPI(w, r, strings.TrimSuffix(segs[1], "s"), segs[2:])
		return
	}
	typ := "model"
	if segs[0] == "datasets" {
		typ, segs = "dataset", segs[1:]
	}
	for _, i := range []int{1, 2} {
		if len(segs) >= i+3 && segs[i] == "resolve" {
			h.serveResolve(w, r, typ, strings.Join(segs[:i], "/"), segs[i+1], strings.Join(segs[i+2:], "/"))
			return
		}
	}
	hubErr(w, http.StatusNotFound, "", "no such route", "")
}

func (h *Hub) authorized(w http.ResponseWriter, r *http.Request, repo *Repo) bool {
	if repo.Gated && r.Header.Get("Authorization") != "Bearer "+h.Token {
		hubErr(w, http.StatusUnauthorized, "GatedRepo", "Access to model "+repo.ID+" is restricted. You must have access to it and be authenticated to access it.", "")
		return false
	}
	return true
}

func (h *Hub) serveAPI(w http.ResponseWriter, r *http.Request, typ string, rest []string) {
	n := 2
	if len(rest) >= 2 && (rest[1] == "revision" || rest[1] == "tree") {
		n = 1
	}
	n = min(n, len(rest))
	repo := h.repo(typ, strings.Join(rest[:n], "/"))
	rest = rest[n:]
	if repo == nil {
		hubErr(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found", "")
		return
	}
	if !h.authorized(w, r, repo) {
		return
	}
	rev := "main"
	if len(rest) >= 2 {
		rev = rest[1]
	}
	commit, ok := h.resolve(repo, rev)
	if !ok {
		hubErr(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev, "")
		return
	}
	h.mu.Lock()
	files := append([]File(nil), repo.Commits[commit]...)
	h.mu.Unlock()
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	switch {
	case len(rest) == 0 || rest[0] == "revision":
		sib := make([]map[string]any, len(files))
		for i, f := range files {
			sib[i] = map[string]any{"rfilename": f.Path}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"_id": "id-" + repo.ID, "id": repo.ID, "modelId": repo.ID, "sha": commit,
			"private": false, "gated": repo.Gated, "disabled": false, "downloads": 0, "likes": 0, "tags": []string{},
			"lastModified": "2026-01-01T00:00:00.000Z", "createdAt": "2026-01-01T00:00:00.000Z", "siblings": sib})
	case rest[0] == "tree":
		h.serveTree(w, r, files, strings.Join(rest[2:], "/"))
	default:
		hubErr(w, http.StatusNotFound, "", "no such route", "")
	}
}

func (h *Hub) serveTree(w http.ResponseWriter, r *http.Request, files []File, dir string) {
	recursive := r.URL.Query().Get("recursive") == "true" || r.URL.Query().Get("recursive") == "True" || r.URL.Query().Get("recursive") == "1"
	var items []map[string]any
	dirs := map[string]bool{}
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	for _, f := range files {
		if !strings.HasPrefix(f.Path, prefix) {
			continue
		}
		rel := strings.TrimPrefix(f.Path, prefix)
		if i := strings.Index(rel, "/"); i >= 0 {
			d := prefix + rel[:i]
			if !dirs[d] {
				dirs[d] = true
				items = append(items, map[string]any{"type": "directory", "oid": "0000000000000000000000000000000000000000", "size": 0, "path": d})
			}
			if !recursive {
				continue
			}
		}
		it := map[string]any{"type": "file", "oid": f.GitOID(), "size": len(f.Data), "path": f.Path}
		if f.LFS {
			it["lfs"] = map[string]any{"oid": f.SHA256(), "size": len(f.Data), "pointerSize": 134}
			it["xetHash"] = strings.Repeat("ab", 32)
		}
		items = append(items, it)
	}
	if dir != "" && len(items) == 0 {
		hubErr(w, http.StatusNotFound, "EntryNotFound", dir+" does not exist on this revision", "")
		return
	}
	cursor, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	end := min(cursor+h.PageSize, len(items))
	if end < len(items) {
		q := r.URL.Query()
		q.Set("cursor", strconv.Itoa(end))
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?%s>; rel="next"`, h.Hub.URL, r.URL.EscapedPath(), q.Encode()))
	}
	page := items[cursor:end]
	if page == nil {
		page = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(page)
}

func (h *Hub) serveResolve(w http.ResponseWriter, r *http.Request, typ, id, rev, p string) {
	repo := h.repo(typ, id)
	if to, ok := h.Renamed[typ+"/"+id]; ok && repo == nil {
		prefix := "/"
		if typ == "dataset" {
			prefix = "/datasets/"
		}
		http.Redirect(w, r, prefix+to+"/resolve/"+url.PathEscape(rev)+"/"+p, http.StatusTemporaryRedirect)
		return
	}
	if repo == nil {
		hubErr(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found", "")
		return
	}
	if !h.authorized(w, r, repo) {
		return
	}
	commit, ok := h.resolve(repo, rev)
	if !ok {
		hubErr(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev, "")
		return
	}
	var file *File
	h.mu.Lock()
	for _, f := range repo.Commits[commit] {
		if f.Path == p {
			file = &f
			break
		}
	}
	h.mu.Unlock()
	if file == nil {
		hubErr(w, http.StatusNotFound, "EntryNotFound", p+" does not exist on \""+rev+"\"", commit)
		return
	}
	hd := w.Header()
	hd.Set("X-Repo-Commit", commit)
	hd.Set("Access-Control-Expose-Headers", "X-Repo-Commit,X-Linked-Etag,X-Linked-Size,ETag")
	if !file.LFS {
		hd.Set("ETag", `"`+file.GitOID()+`"`)
		hd.Set("Content-Type", "text/plain; charset=utf-8")
		data := file.Data
		h.mu.Lock()
		if h.fault == Corrupt && len(data) > 0 {
			data = append([]byte(nil), data...)
			data[len(data)-1] ^= 0xff
		}
		h.mu.Unlock()
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
		return
	}
	sha := file.SHA256()
	hd.Set("ETag", `"`+file.GitOID()+`"`) // the pointer's, as the Hub answers a redirect
	hd.Set("X-Linked-Etag", `"`+sha+`"`)
	hd.Set("X-Linked-Size", strconv.Itoa(len(file.Data)))
	hd.Set("X-Xet-Hash", strings.Repeat("ab", 32))
	hd.Set("X-Xet-Refresh-Route", "/api/"+typ+"s/"+id+"/xet-read-token/"+commit)
	hd.Set("Link", `<`+h.Hub.URL+`/api/`+typ+`s/`+id+`/xet-read-token/`+commit+`>; rel="xet-auth", <`+h.CDN.URL+`/reconstruction/abab>; rel="xet-reconstruction-info"`)
	loc := h.CDN.URL + "/repos/" + sha[:2] + "/" + sha + "?X-Amz-Signature=secret-signature&Expires=9999999999"
	http.Redirect(w, r, loc, http.StatusFound)
}

func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
	fault := h.record("cdn", r)
	if fault == Down || fault == RateLimit {
		http.Error(w, "cdn down", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Query().Get("X-Amz-Signature") != "secret-signature" {
		http.Error(w, "signature", http.StatusForbidden)
		return
	}
	sha := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	h.mu.Lock()
	data := h.byHash[sha]
	hold, rate := h.hold, h.rate
	h.mu.Unlock()
	if data == nil {
		http.NotFound(w, r)
		return
	}
	if fault == Corrupt {
		data = append([]byte(nil), data...)
		data[len(data)-1] ^= 0xff
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+sha+`"`)
	http.ServeContent(&countingWriter{ResponseWriter: w, h: h, rate: rate}, r, "", time.Time{}, bytes.NewReader(data))
}

type countingWriter struct {
	http.ResponseWriter
	h    *Hub
	rate int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p
		if c.rate > 0 && int64(len(chunk)) > c.rate/20 {
			chunk = p[:max(c.rate/20, 1)]
		}
		n, err := c.ResponseWriter.Write(chunk)
		written += n
		c.h.mu.Lock()
		c.h.cdnBytes += int64(n)
		c.h.mu.Unlock()
		if err != nil {
			return written, err
		}
		if c.rate > 0 {
			if f, ok := c.ResponseWriter.(http.Flusher); ok {
				f.Flush()
			}
			time.Sleep(time.Duration(int64(n) * int64(time.Second) / c.rate))
		}
		p = p[n:]
	}
	return written, nil
}
