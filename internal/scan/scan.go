// Package scan finds known vulnerabilities in stored images and enforces projects' scan
// policies at pull.
//
// A scan has two steps, both run as jobs (package jobs) on any replica: the engine
// inventories the image once into an SBOM (CycloneDX, kept in the database), then
// matches the SBOM against the vulnerability database into findings. When the database
// changes, only the second step runs again for every stored SBOM: no layer is pulled
// twice. Reports are keyed by manifest digest, so an image in many repositories is
// scanned once.
//
// The engine is Trivy, run as a program (its Go API is outside its compatibility
// promise) with a short-lived pull-only token for this registry, and with its database
// read from this registry too: a mirrored or loaded trivy-db artifact, so an air-gapped
// site scans with the copy it holds.
package scan

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Severity of a finding, ordered: a policy blocks a severity and everything above it.
type Severity int

// Severities, as Trivy and the Harbor scanner API name them.
const (
	Unknown Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

func (s Severity) String() string {
	if s < Unknown || s > Critical {
		return "UNKNOWN"
	}
	return severityNames[s]
}

// ParseSeverity reads a severity name, in any case.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(name, n) {
			return Severity(i), nil
		}
	}
	return Unknown, fmt.Errorf("severity %q: want one of %s", name, strings.Join(severityNames, ", "))
}

func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

func (s *Severity) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	v, err := ParseSeverity(name)
	*s = v
	return err
}

// Finding is one vulnerability of one package in an image.
type Finding struct {
	ID        string   `json:"id"`
	Severity  Severity `json:"severity"`
	CVSS      float64  `json:"cvss,omitempty"`
	Title     string   `json:"title,omitempty"`
	Package   string   `json:"package"`
	Installed string   `json:"installedVersion"`
	Fixed     string   `json:"fixedVersion,omitempty"`
	// Target is where the package was found: the OS ("alpine 3.19.1") or a file
	// ("usr/bin/app").
	Target string `json:"target"`
	// Layer is the uncompressed digest (diff ID) of the layer that added the package.
	Layer string `json:"layer,omitempty"`
}

// Summary counts findings by severity.
type Summary struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	Unknown  int `json:"unknown"`
	// Fixable have a fixed version.
	Fixable int `json:"fixable"`
}

// Summarize counts fs.
func Summarize(fs []Finding) Summary {
	var s Summary
	for _, f := range fs {
		switch f.Severity {
		case Critical:
			s.Critical++
		case High:
			s.High++
		case Medium:
			s.Medium++
		case Low:
			s.Low++
		default:
			s.Unknown++
		}
		if f.Fixed != "" {
			s.Fixable++
		}
	}
	return s
}

// Report is the outcome of scanning one manifest.
type Report struct {
	Digest     string `json:"digest"`
	Repository string `json:"repository"` // where it was scanned from
	Engine     string `json:"engine"`
	// Status is "ok", or "failed" with Error.
	Status    string    `json:"status"`
	Error     string    `json:"error,omitempty"`
	ScannedAt time.Time `json:"scannedAt"`
	// DBUpdatedAt is when the vulnerability database the findings come from was built.
	DBUpdatedAt time.Time `json:"dbUpdatedAt,omitzero"`
	Summary     Summary   `json:"summary"`
	Findings    []Finding `json:"findings"`
}

// Statuses of a report.
const (
	StatusOK     = "ok"
	StatusFailed = "failed"
)
