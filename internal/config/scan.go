package config

import (
	"fmt"
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
	Trivy      Trivy    `yaml:"trivy"`
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
}

func defaultScan() Scan {
	return Scan{Workers: 1, Timeout: Duration(10 * time.Minute), DBCheckInterval: Duration(time.Hour),
		StaleAfter: Duration(72 * time.Hour), Trivy: Trivy{Path: "trivy", DBRepository: "aquasecurity/trivy-db:2"}}
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
	if s.Enabled && s.Trivy.DBRepository == "" {
		errs = append(errs, fmt.Errorf("scan.trivy.dbRepository is required with scan.enabled"))
	}
	return errs
}
