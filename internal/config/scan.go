package config

import (
	"fmt"
	"net/url"
	"time"
)

// Scan configures vulnerability scanning (package scan). Scans run as background jobs
// on any replica; what to scan and what to block is per project (the admin API).
type Scan struct {
	// Enabled runs scans in this process and enforces projects' scan policies at pull.
	Enabled bool `yaml:"enabled"`
	// Registry is how the scanner reaches this registry (host:port; default: the listen
	// address on 127.0.0.1). The scanner pulls with a short-lived pull-only token.
	Registry string `yaml:"registry"`
	// Workers is how many scans this process runs at once (each is a trivy process).
	Workers int `yaml:"workers"`
	// Timeout bounds one scanner run.
	Timeout Duration `yaml:"timeout"`
	// DBCheckInterval is how often the vulnerability database is checked for a newer
	// copy; a newer one re-evaluates every stored SBOM.
	DBCheckInterval Duration `yaml:"dbCheckInterval"`
	// StaleAfter warns (log, /metrics, reports) when the database is older than this.
	StaleAfter Duration `yaml:"staleAfter"`
	// RescanInterval scans images again (reading their layers) when their report is
	// older than this; 0 never does. A newer database needs no re-scan: stored SBOMs
	// are evaluated again at once.
	RescanInterval Duration `yaml:"rescanInterval"`
	// Engine is "trivy" (Berth runs the trivy program) or "harbor" (a scanner adapter
	// speaking Harbor's pluggable scanner API v1.2, at harbor.url).
	Engine string        `yaml:"engine"`
	Trivy  Trivy         `yaml:"trivy"`
	Harbor HarborScanner `yaml:"harbor"`
}

// HarborScanner is a scanner adapter behind Harbor's pluggable scanner API v1.2 (Harbor's
// Trivy adapter, Clair's, commercial ones). It pulls images from Berth with a
// short-lived pull-only token Berth puts in each scan request.
type HarborScanner struct {
	// URL is the adapter's base URL (the API is under /api/v1).
	URL string `yaml:"url"`
	// Authorization is the Authorization header value for the adapter ("Bearer …"), if
	// it wants one; AuthorizationFile reads it from a file instead.
	Authorization     string `yaml:"authorization" secret:"true"`
	AuthorizationFile string `yaml:"authorizationFile"`
	// RegistryURL is how the adapter reaches Berth (default: http:// and scan.registry).
	RegistryURL string `yaml:"registryURL"`
}

// Trivy configures the Trivy engine: the program and where its database comes from.
type Trivy struct {
	// Path of the trivy program (default: trivy on PATH). Supported: v0.74.x.
	Path string `yaml:"path"`
	// DBRepository is the Trivy database artifact, normally a repository of this
	// registry: a mirrored ghcr.io/aquasecurity/trivy-db:2, or one loaded into an
	// air-gapped Berth with cric or berth mirror warm. A name without a registry host is
	// read from this registry ("aquasecurity/trivy-db:2").
	DBRepository string `yaml:"dbRepository"`
	// JavaDBRepository is Trivy's Java database (a mirrored
	// ghcr.io/aquasecurity/trivy-java-db:1), which names the Maven artifact of a JAR by
	// its SHA-1; until it is in the registry (or with ""), scans use an empty one.
	JavaDBRepository string `yaml:"javaDBRepository"`
}

func defaultScan() Scan {
	return Scan{Workers: 1, Timeout: Duration(10 * time.Minute), DBCheckInterval: Duration(time.Hour),
		StaleAfter: Duration(72 * time.Hour), Engine: "trivy", Trivy: Trivy{Path: "trivy", DBRepository: "aquasecurity/trivy-db:2", JavaDBRepository: "aquasecurity/trivy-java-db:1"}}
}

func (s Scan) validate() []error {
	var errs []error
	if s.Workers < 1 {
		errs = append(errs, fmt.Errorf("scan.workers %d: want at least 1", s.Workers))
	}
	if s.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("scan.timeout must be positive"))
	}
	if s.DBCheckInterval < Duration(time.Second) {
		errs = append(errs, fmt.Errorf("scan.dbCheckInterval must be at least 1s"))
	}
	if s.RescanInterval < 0 {
		errs = append(errs, fmt.Errorf("scan.rescanInterval must not be negative"))
	}
	switch s.Engine {
	case "trivy":
		if s.Enabled && s.Trivy.DBRepository == "" {
			errs = append(errs, fmt.Errorf("scan.trivy.dbRepository is required with scan.enabled"))
		}
	case "harbor":
		if u, err := url.Parse(s.Harbor.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("scan.harbor.url %q: want the adapter's http(s) base URL", s.Harbor.URL))
		}
		if s.Harbor.Authorization != "" && s.Harbor.AuthorizationFile != "" {
			errs = append(errs, fmt.Errorf("scan.harbor: set authorization or authorizationFile, not both"))
		}
		if s.Harbor.RegistryURL != "" {
			if u, err := url.Parse(s.Harbor.RegistryURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("scan.harbor.registryURL %q: want http(s)://host:port", s.Harbor.RegistryURL))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("scan.engine %q: want trivy or harbor", s.Engine))
	}
	return errs
}
