package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Media types of Harbor's pluggable scanner API v1.2
// (github.com/goharbor/pluggable-scanner-spec, api/spec/scanner-adapter-openapi-v1.2.yaml).
const (
	harborScanRequest  = "application/vnd.scanner.adapter.scan.request+json; version=1.1"
	harborScanResponse = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
	harborMetadata     = "application/vnd.scanner.adapter.metadata+json; version=1.1"
	harborMetadata10   = "application/vnd.scanner.adapter.metadata+json; version=1.0"
	harborVulnReport11 = "application/vnd.security.vulnerability.report; version=1.1"
	harborVulnReport10 = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
	harborSBOMReport   = "application/vnd.security.sbom.report+json; version=1.0"
	harborError        = "application/vnd.scanner.adapter.error+json; version=1.0"
	cycloneDX          = "application/vnd.cyclonedx+json"

	// harborDBUpdated is the metadata property with the adapter's database build time.
	harborDBUpdated = "harbor.scanner-adapter/vulnerability-database-updated-at"
)

// harborBodyLimit bounds what Berth reads from an adapter: a report of a large image
// with an SBOM is a few MiB.
const harborBodyLimit = 64 << 20

// Adapter is a scanner reached through Harbor's pluggable scanner API v1.2, so that
// every Harbor scanner adapter (Trivy's, Clair's, commercial ones) works unchanged. The
// adapter pulls the image from this registry itself, with the short-lived pull-only
// token Berth hands it in the scan request.
type Adapter struct {
	// URL is the adapter's base URL; the API is under /api/v1.
	URL string
	// Authorization is the Authorization header value Berth sends to the adapter
	// ("Bearer …" or "Basic …"), if it asks for one.
	Authorization string
	// RegistryURL is how the adapter reaches this registry ("http://host:port").
	RegistryURL string
	// Timeout bounds one scan, submission to report.
	Timeout time.Duration
	// Client defaults to an HTTP client that does not follow redirects (a 302 with
	// Refresh-After means "not ready", not "look elsewhere").
	Client *http.Client

	once sync.Once
}

// AdapterScanner is what an adapter's metadata says it is.
type AdapterScanner struct {
	Name    string `json:"name"`
	Vendor  string `json:"vendor"`
	Version string `json:"version"`
}

// AdapterMetadata is the adapter's GET /api/v1/metadata answer.
type AdapterMetadata struct {
	Scanner      AdapterScanner      `json:"scanner"`
	Capabilities []AdapterCapability `json:"capabilities"`
	Properties   map[string]string   `json:"properties,omitempty"`
}

// AdapterCapability is one capability of an adapter; an empty Type is "vulnerability"
// (v1.0 and v1.1 adapters).
type AdapterCapability struct {
	Type                 string          `json:"type,omitempty"`
	ConsumesMimeTypes    []string        `json:"consumes_mime_types"`
	ProducesMimeTypes    []string        `json:"produces_mime_types"`
	AdditionalAttributes json.RawMessage `json:"additional_attributes,omitempty"`
}

// Engine names the adapter in reports: "Trivy 0.50.1 (Aqua Security)".
func (m AdapterMetadata) Engine() string {
	s := strings.TrimSpace(m.Scanner.Name + " " + m.Scanner.Version)
	if m.Scanner.Vendor != "" {
		s += " (" + m.Scanner.Vendor + ")"
	}
	return s
}

// DBUpdatedAt is the adapter's database build time, zero when it does not say.
func (m AdapterMetadata) DBUpdatedAt() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, m.Properties[harborDBUpdated])
	return t
}

func (m AdapterMetadata) capability(kind, mediaType string) (AdapterCapability, bool) {
	for _, c := range m.Capabilities {
		t := c.Type
		if t == "" {
			t = "vulnerability"
		}
		if t == kind && slices.Contains(c.ConsumesMimeTypes, mediaType) {
			return c, true
		}
	}
	return AdapterCapability{}, false
}

// vulnReportType picks the report format: the v1.1 one, which carries CVSS, when the
// adapter offers it.
func (c AdapterCapability) vulnReportType() (string, bool) {
	for _, want := range []string{harborVulnReport11, harborVulnReport10} {
		if slices.Contains(c.ProducesMimeTypes, want) {
			return want, true
		}
	}
	return "", false
}

func (c AdapterCapability) offersCycloneDX() bool {
	var attrs struct {
		SBOMMediaTypes []string `json:"sbom_media_types"`
	}
	_ = json.Unmarshal(c.AdditionalAttributes, &attrs)
	return slices.Contains(c.ProducesMimeTypes, harborSBOMReport) && slices.Contains(attrs.SBOMMediaTypes, cycloneDX)
}

// AdapterResult is what one adapter scan produced.
type AdapterResult struct {
	Engine      string
	DBUpdatedAt time.Time
	Findings    []Finding
	// SBOM is the CycloneDX inventory, when the adapter makes one (capability "sbom").
	SBOM []byte
}

// AdapterError is an answer of the adapter that retrying will not change (400, 422,
// 501: it cannot scan this artifact).
type AdapterError struct {
	Status  int
	Message string
}

func (e *AdapterError) Error() string {
	return fmt.Sprintf("scanner adapter: %d %s", e.Status, e.Message)
}

func (a *Adapter) client() *http.Client {
	a.once.Do(func() {
		if a.Client == nil {
			a.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		}
	})
	return a.Client
}

func (a *Adapter) do(ctx context.Context, method, path, accept, contentType string, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.URL, "/")+"/api/v1"+path, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("scanner adapter: %w", err)
	}
	req.Header.Set("Accept", accept)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a.Authorization != "" {
		req.Header.Set("Authorization", a.Authorization)
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("scanner adapter: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, harborBodyLimit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("scanner adapter: %s %s: %w", method, path, err)
	}
	if len(b) > harborBodyLimit {
		return nil, nil, fmt.Errorf("scanner adapter: %s %s: answer larger than %d bytes", method, path, harborBodyLimit)
	}
	return resp, b, nil
}

// adapterMessage is the message of the adapter's error document, or its status.
func adapterMessage(resp *http.Response, b []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return http.StatusText(resp.StatusCode)
}

// Metadata asks the adapter what it is and what it scans.
func (a *Adapter) Metadata(ctx context.Context) (AdapterMetadata, error) {
	resp, b, err := a.do(ctx, http.MethodGet, "/metadata", harborMetadata+", "+harborMetadata10, "", nil)
	if err != nil {
		return AdapterMetadata{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return AdapterMetadata{}, fmt.Errorf("scanner adapter: metadata: %d %s", resp.StatusCode, adapterMessage(resp, b))
	}
	var m AdapterMetadata
	if err := json.Unmarshal(b, &m); err != nil {
		return AdapterMetadata{}, fmt.Errorf("scanner adapter: metadata: %w", err)
	}
	if m.Scanner.Name == "" || len(m.Capabilities) == 0 {
		return AdapterMetadata{}, errors.New("scanner adapter: metadata names no scanner or capabilities")
	}
	return m, nil
}

type harborArtifact struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Tag        string `json:"tag,omitempty"`
	MimeType   string `json:"mime_type"`
}

type harborCapabilityRequest struct {
	Type              string   `json:"type"`
	ProducesMimeTypes []string `json:"produces_mime_types,omitempty"`
	Parameters        *struct {
		SBOMMediaTypes []string `json:"sbom_media_types"`
	} `json:"parameters,omitempty"`
}

type harborScanReq struct {
	Registry struct {
		URL           string `json:"url"`
		Authorization string `json:"authorization,omitempty"`
	} `json:"registry"`
	Artifact            harborArtifact            `json:"artifact"`
	EnabledCapabilities []harborCapabilityRequest `json:"enabled_capabilities"`
}

// Scan has the adapter scan t (an image manifest of mediaType) and waits for its
// report, polling as the adapter's Refresh-After asks.
func (a *Adapter) Scan(ctx context.Context, t Target, mediaType string) (AdapterResult, error) {
	ctx, cancel := context.WithTimeout(ctx, a.Timeout)
	defer cancel()
	m, err := a.Metadata(ctx)
	if err != nil {
		return AdapterResult{}, err
	}
	vc, ok := m.capability("vulnerability", mediaType)
	if !ok {
		return AdapterResult{}, &AdapterError{Status: http.StatusNotImplemented, Message: fmt.Sprintf("%s does not scan %s", m.Engine(), mediaType)}
	}
	vulnType, ok := vc.vulnReportType()
	if !ok {
		return AdapterResult{}, &AdapterError{Status: http.StatusNotImplemented, Message: fmt.Sprintf("%s produces no vulnerability report Berth reads (%s)", m.Engine(), strings.Join(vc.ProducesMimeTypes, ", "))}
	}
	var req harborScanReq
	req.Registry.URL = a.RegistryURL
	if t.Token != "" {
		req.Registry.Authorization = "Bearer " + t.Token
	}
	req.Artifact = harborArtifact{Repository: t.Repository, Digest: t.Digest, MimeType: mediaType}
	req.EnabledCapabilities = []harborCapabilityRequest{{Type: "vulnerability", ProducesMimeTypes: []string{vulnType}}}
	sc, withSBOM := m.capability("sbom", mediaType)
	withSBOM = withSBOM && sc.offersCycloneDX()
	if withSBOM {
		c := harborCapabilityRequest{Type: "sbom", ProducesMimeTypes: []string{harborSBOMReport}}
		c.Parameters = &struct {
			SBOMMediaTypes []string `json:"sbom_media_types"`
		}{[]string{cycloneDX}}
		req.EnabledCapabilities = append(req.EnabledCapabilities, c)
	}
	body, _ := json.Marshal(req)
	resp, b, err := a.do(ctx, http.MethodPost, "/scan", harborScanResponse, harborScanRequest, body)
	if err != nil {
		return AdapterResult{}, err
	}
	switch resp.StatusCode {
	case http.StatusAccepted:
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusNotImplemented:
		return AdapterResult{}, &AdapterError{Status: resp.StatusCode, Message: adapterMessage(resp, b)}
	default:
		return AdapterResult{}, fmt.Errorf("scanner adapter: scan request: %d %s", resp.StatusCode, adapterMessage(resp, b))
	}
	var accepted struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &accepted); err != nil || accepted.ID == "" {
		return AdapterResult{}, fmt.Errorf("scanner adapter: scan request accepted without an id")
	}
	report, err := a.poll(ctx, accepted.ID, vulnType, "")
	if err != nil {
		return AdapterResult{}, err
	}
	res := AdapterResult{Engine: m.Engine(), DBUpdatedAt: m.DBUpdatedAt()}
	if res.Findings, err = parseHarborReport(report); err != nil {
		return AdapterResult{}, err
	}
	if withSBOM {
		sb, err := a.poll(ctx, accepted.ID, harborSBOMReport, cycloneDX)
		if err != nil {
			return AdapterResult{}, err
		}
		var doc struct {
			MediaType string          `json:"media_type"`
			SBOM      json.RawMessage `json:"sbom"`
		}
		if err := json.Unmarshal(sb, &doc); err != nil || len(doc.SBOM) == 0 || doc.SBOM[0] != '{' {
			return AdapterResult{}, errors.New("scanner adapter: the SBOM report holds no SBOM document")
		}
		res.SBOM = doc.SBOM
	}
	return res, nil
}

// maxRefresh caps the adapter's Refresh-After, so a wrong value cannot park a scan.
const maxRefresh = 30 * time.Second

// poll fetches a report of the scan id until the adapter has it (200) or fails it.
func (a *Adapter) poll(ctx context.Context, id, accept, sbomType string) ([]byte, error) {
	path := "/scan/" + url.PathEscape(id) + "/report"
	if sbomType != "" {
		path += "?sbom_media_type=" + url.QueryEscape(sbomType)
	}
	for {
		resp, b, err := a.do(ctx, http.MethodGet, path, accept, "", nil)
		if err != nil {
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			return b, nil
		case http.StatusFound:
			wait := time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Refresh-After")); err == nil && s > 0 {
				wait = min(time.Duration(s)*time.Second, maxRefresh)
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("scanner adapter: report of %s not ready: %w", id, ctx.Err())
			case <-time.After(wait):
			}
		case http.StatusBadRequest, http.StatusNotImplemented:
			return nil, &AdapterError{Status: resp.StatusCode, Message: adapterMessage(resp, b)}
		default: // 404: the adapter lost the request (restarted); 500: the scan failed
			return nil, fmt.Errorf("scanner adapter: report of %s: %d %s", id, resp.StatusCode, adapterMessage(resp, b))
		}
	}
}

// harborReport is the vulnerability report (HarborVulnerabilityReport) in both formats.
type harborReport struct {
	Vulnerabilities []struct {
		ID            string `json:"id"`
		Package       string `json:"package"`
		Version       string `json:"version"`
		FixVersion    string `json:"fix_version"`
		Severity      string `json:"severity"`
		Description   string `json:"description"`
		PreferredCVSS *struct {
			ScoreV3 float64 `json:"score_v3"`
			ScoreV2 float64 `json:"score_v2"`
		} `json:"preferred_cvss"`
	} `json:"vulnerabilities"`
}

func parseHarborReport(b []byte) ([]Finding, error) {
	var r harborReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("scanner adapter: report: %w", err)
	}
	findings := make([]Finding, 0, len(r.Vulnerabilities))
	for _, v := range r.Vulnerabilities {
		if v.ID == "" || v.Package == "" {
			return nil, errors.New("scanner adapter: report: a vulnerability without id or package")
		}
		sev := Unknown
		if strings.EqualFold(v.Severity, "Negligible") {
			sev = Low // "only theoretical": the lowest severity Berth ranks
		} else if s, err := ParseSeverity(v.Severity); err == nil {
			sev = s
		}
		f := Finding{ID: v.ID, Severity: sev, Package: v.Package, Installed: v.Version, Fixed: v.FixVersion,
			Title: firstLine(v.Description, 200), Target: "image"}
		if v.PreferredCVSS != nil {
			f.CVSS = max(v.PreferredCVSS.ScoreV3, v.PreferredCVSS.ScoreV2)
		}
		findings = append(findings, f)
	}
	return findings, nil
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > n {
		s = s[:n]
	}
	return s
}
