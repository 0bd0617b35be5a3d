// Package scannertest is a scanner adapter that speaks Harbor's pluggable scanner API
// v1.2, for tests of Berth's adapter client where no real Harbor adapter can run.
//
// It behaves as the published specification says an adapter does: GET /api/v1/metadata
// describes it; POST /api/v1/scan accepts a request and answers 202 with an id at once;
// the scan itself runs in the background, pulling the artifact's manifest from the
// registry with the Authorization the request carries; GET
// /api/v1/scan/{id}/report answers 302 with Refresh-After until the report is ready,
// then 200 in the format the Accept header names. Every request it receives and every
// answer it gives is validated against the specification's OpenAPI document (embedded,
// from github.com/goharbor/pluggable-scanner-spec, Apache-2.0); Violations lists what
// did not conform.
package scannertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Media types the adapter produces and consumes.
const (
	VulnReport11 = "application/vnd.security.vulnerability.report; version=1.1"
	VulnReport10 = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
	SBOMReport   = "application/vnd.security.sbom.report+json; version=1.0"
	errorType    = "application/vnd.scanner.adapter.error+json; version=1.0"
	metadataType = "application/vnd.scanner.adapter.metadata+json; version=1.1"
	responseType = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
	cycloneDX    = "application/vnd.cyclonedx+json"
)

// Request is a scan request as the adapter received it, with the manifest it pulled.
type Request struct {
	RegistryURL   string
	Authorization string
	Repository    string
	Digest        string
	MimeType      string
	Capabilities  []string
	Manifest      []byte
}

// Vulnerability is one finding the adapter reports.
type Vulnerability struct {
	ID, Package, Version, FixVersion, Severity, Description string
	ScoreV3                                                 float64
}

// Result is what a scan found, and the SBOM it made (CycloneDX JSON, optional).
type Result struct {
	Vulnerabilities []Vulnerability
	SBOM            json.RawMessage
}

// ScanFunc scans a pulled artifact.
type ScanFunc func(ctx context.Context, r Request) (Result, error)

// Server is the adapter; create it with New.
type Server struct {
	scan ScanFunc
	// Auth, when set, is the Authorization header value every request must carry.
	Auth string
	// RefreshAfter is the Refresh-After of a report not ready yet (seconds).
	RefreshAfter int
	// SBOM offers the sbom capability.
	SBOM bool

	spec *validator

	mu          sync.Mutex
	dbUpdatedAt time.Time
	jobs        map[string]*job
	requests    []Request
	violations  []string
}

type job struct {
	req    Request
	done   chan struct{}
	result Result
	err    error
	at     time.Time
}

// New returns an adapter that scans with scan.
func New(scan ScanFunc) (*Server, error) {
	v, err := newValidator()
	if err != nil {
		return nil, err
	}
	return &Server{scan: scan, RefreshAfter: 1, SBOM: true, spec: v, jobs: map[string]*job{}}, nil
}

// SetDBUpdatedAt sets the database build time the metadata announces, as an adapter
// does after its database updates.
func (s *Server) SetDBUpdatedAt(t time.Time) {
	s.mu.Lock()
	s.dbUpdatedAt = t
	s.mu.Unlock()
}

// Requests returns the scan requests received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Violations returns every way a request or an answer departed from the specification.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

func (s *Server) violation(format string, args ...any) {
	s.mu.Lock()
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// ServeHTTP validates the request, answers it, and validates the answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	route, err := s.spec.request(r, body)
	if err != nil {
		s.violation("request %s %s: %v", r.Method, r.URL, err)
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	s.serve(rec, r, body)
	if route != nil {
		if err := s.spec.response(route, r, body, rec); err != nil {
			s.violation("answer to %s %s (%d): %v", r.Method, r.URL, rec.status, err)
		}
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes())
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, body []byte) {
	if s.Auth != "" && r.Header.Get("Authorization") != s.Auth {
		writeError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/metadata":
		s.metadata(w)
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/scan":
		s.accept(w, body)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/scan/") && strings.HasSuffix(r.URL.Path, "/report"):
		s.report(w, r, strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/scan/"), "/report"))
	default:
		writeError(w, http.StatusNotFound, "no such operation")
	}
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorType, map[string]any{"error": map[string]string{"message": msg}})
}

var consumes = []string{"application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"}

func (s *Server) metadata(w http.ResponseWriter) {
	caps := []map[string]any{{"type": "vulnerability", "consumes_mime_types": consumes,
		"produces_mime_types": []string{VulnReport10, VulnReport11}}}
	if s.SBOM {
		caps = append(caps, map[string]any{"type": "sbom", "consumes_mime_types": consumes,
			"produces_mime_types":   []string{SBOMReport},
			"additional_attributes": map[string]any{"sbom_media_types": []string{"application/spdx+json", cycloneDX}}})
	}
	props := map[string]string{"harbor.scanner-adapter/scanner-type": "os-package-vulnerability"}
	s.mu.Lock()
	if !s.dbUpdatedAt.IsZero() {
		props["harbor.scanner-adapter/vulnerability-database-updated-at"] = s.dbUpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, metadataType, map[string]any{
		"scanner":      map[string]string{"name": "Berth test adapter", "vendor": "Berth", "version": "1.2.0"},
		"capabilities": caps, "properties": props})
}

type scanRequest struct {
	Registry struct {
		URL           string `json:"url"`
		Authorization string `json:"authorization"`
	} `json:"registry"`
	Artifact struct {
		Repository string `json:"repository"`
		Digest     string `json:"digest"`
		MimeType   string `json:"mime_type"`
	} `json:"artifact"`
	EnabledCapabilities []struct {
		Type string `json:"type"`
	} `json:"enabled_capabilities"`
}

func (s *Server) accept(w http.ResponseWriter, body []byte) {
	var sr scanRequest
	if err := json.Unmarshal(body, &sr); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
		return
	}
	a := sr.Artifact
	if sr.Registry.URL == "" || a.Repository == "" || !strings.HasPrefix(a.Digest, "sha256:") {
		writeError(w, http.StatusUnprocessableEntity, "registry.url, artifact.repository and a sha256 artifact.digest are required")
		return
	}
	supported := false
	for _, c := range consumes {
		supported = supported || c == a.MimeType
	}
	if !supported {
		writeError(w, http.StatusNotImplemented, "unsupported artifact type "+a.MimeType)
		return
	}
	req := Request{RegistryURL: sr.Registry.URL, Authorization: sr.Registry.Authorization, Repository: a.Repository,
		Digest: a.Digest, MimeType: a.MimeType}
	for _, c := range sr.EnabledCapabilities {
		req.Capabilities = append(req.Capabilities, c.Type)
	}
	id := newID()
	j := &job{req: req, done: make(chan struct{}), at: time.Now()}
	s.mu.Lock()
	s.jobs[id] = j
	s.mu.Unlock()
	go s.run(j)
	writeJSON(w, http.StatusAccepted, responseType, map[string]string{"id": id})
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// run pulls the manifest with the request's credentials, as a real adapter does before
// it reads layers, then scans.
func (s *Server) run(j *job) {
	defer close(j.done)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m, err := pullManifest(ctx, j.req)
	if err != nil {
		j.err = err
		return
	}
	j.req.Manifest = m
	s.mu.Lock()
	s.requests = append(s.requests, j.req)
	s.mu.Unlock()
	j.result, j.err = s.scan(ctx, j.req)
}

func pullManifest(ctx context.Context, r Request) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		strings.TrimRight(r.RegistryURL, "/")+"/v2/"+r.Repository+"/manifests/"+r.Digest, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", r.MimeType)
	if r.Authorization != "" {
		req.Header.Set("Authorization", r.Authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("pull %s@%s: %w", r.Repository, r.Digest, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("pull %s@%s: %s", r.Repository, r.Digest, resp.Status)
	}
	if sum := sha256.Sum256(b); "sha256:"+hex.EncodeToString(sum[:]) != r.Digest {
		return nil, errors.New("pulled manifest does not match its digest")
	}
	return b, nil
}

func (s *Server) report(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	j := s.jobs[id]
	s.mu.Unlock()
	if j == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	accept := r.Header.Get("Accept")
	if accept == SBOMReport && r.URL.Query().Get("sbom_media_type") != cycloneDX {
		writeError(w, http.StatusBadRequest, "sbom_media_type must be "+cycloneDX)
		return
	}
	select {
	case <-j.done:
	default:
		w.Header().Set("Refresh-After", fmt.Sprint(s.RefreshAfter))
		w.WriteHeader(http.StatusFound)
		return
	}
	if j.err != nil {
		writeError(w, http.StatusInternalServerError, j.err.Error())
		return
	}
	artifact := map[string]string{"repository": j.req.Repository, "digest": j.req.Digest, "mime_type": j.req.MimeType}
	scanner := map[string]string{"name": "Berth test adapter", "vendor": "Berth", "version": "1.2.0"}
	switch accept {
	case VulnReport10, VulnReport11:
		vulns := []map[string]any{}
		worst := "Unknown"
		for _, v := range j.result.Vulnerabilities {
			item := map[string]any{"id": v.ID, "package": v.Package, "version": v.Version, "fix_version": v.FixVersion,
				"severity": v.Severity, "description": v.Description, "links": []string{"https://avd.aquasec.com/nvd/" + strings.ToLower(v.ID)}}
			if v.ScoreV3 > 0 {
				item["preferred_cvss"] = map[string]any{"score_v3": v.ScoreV3}
			}
			vulns = append(vulns, item)
			if rank(v.Severity) > rank(worst) {
				worst = v.Severity
			}
		}
		writeJSON(w, http.StatusOK, accept, map[string]any{"generated_at": time.Now().UTC().Format(time.RFC3339),
			"artifact": artifact, "scanner": scanner, "severity": worst, "vulnerabilities": vulns})
	case SBOMReport:
		if len(j.result.SBOM) == 0 {
			writeError(w, http.StatusNotImplemented, "no SBOM for this scan")
			return
		}
		writeJSON(w, http.StatusOK, accept, map[string]any{"generated_at": time.Now().UTC().Format(time.RFC3339),
			"artifact": artifact, "scanner": scanner, "media_type": cycloneDX, "sbom": j.result.SBOM})
	default:
		writeError(w, http.StatusNotImplemented, "unsupported report type "+accept)
	}
}

var severities = []string{"Unknown", "Negligible", "Low", "Medium", "High", "Critical"}

func rank(s string) int {
	for i, n := range severities {
		if n == s {
			return i
		}
	}
	return 0
}

// recorder holds an answer until it is validated.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
