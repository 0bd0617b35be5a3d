package scan

import (
	"fmt"
	"strings"
	"time"
)

// Policy modes.
const (
	ModeOff     = "off"     // scan as configured, block nothing
	ModeWarn    = "warn"    // serve, but log, count and audit what enforce would block
	ModeEnforce = "enforce" // refuse pulls with 403 DENIED
)

// Policy is a project's scan policy.
type Policy struct {
	// ScanOnPush scans every image pushed to the project.
	ScanOnPush bool   `json:"scanOnPush"`
	Mode       string `json:"mode"`
	// Severity is the lowest severity that blocks (with mode warn or enforce).
	Severity string `json:"severity,omitempty"`
	// BlockUnscanned blocks images without a successful scan (a scan is queued).
	BlockUnscanned bool `json:"blockUnscanned,omitempty"`
	// Allow lists vulnerabilities that never block, each with a reason and an
	// optional expiry.
	Allow []Allowance `json:"allow,omitempty"`
	// AttachSBOM stores the SBOM Berth makes of each image as an OCI referrer of the
	// image (artifact type application/vnd.cyclonedx+json), for clients to fetch.
	AttachSBOM bool `json:"attachSBOM,omitempty"`
	// UsePushedSBOMs evaluates a CycloneDX SBOM pushed as a referrer of the image (by
	// CI) instead of reading the image's layers. Whoever may push to the project can
	// then decide what the scan sees: turn it on where pushes are trusted (a signing
	// trust policy, CI-only push robots).
	UsePushedSBOMs bool `json:"usePushedSBOMs,omitempty"`
}

// Allowance exempts one vulnerability from blocking until Expires (zero: for good).
type Allowance struct {
	ID      string    `json:"id"`
	Reason  string    `json:"reason"`
	Expires time.Time `json:"expires,omitzero"`
}

// Validate checks the policy.
func (p Policy) Validate() error {
	switch p.Mode {
	case ModeOff:
	case ModeWarn, ModeEnforce:
		if _, err := ParseSeverity(p.Severity); err != nil {
			return fmt.Errorf("mode %s needs a severity: %w", p.Mode, err)
		}
	default:
		return fmt.Errorf("mode %q: want off, warn or enforce", p.Mode)
	}
	seen := map[string]bool{}
	for _, a := range p.Allow {
		if strings.TrimSpace(a.ID) == "" || strings.TrimSpace(a.Reason) == "" {
			return fmt.Errorf("every allowed vulnerability needs an id and a reason")
		}
		if seen[a.ID] {
			return fmt.Errorf("vulnerability %s is allowed twice", a.ID)
		}
		seen[a.ID] = true
	}
	return nil
}

// blocks returns the findings the policy blocks at now, most severe first (findings
// come sorted so), each vulnerability once per package.
func (p Policy) blocks(fs []Finding, now time.Time) []Finding {
	if p.Mode != ModeWarn && p.Mode != ModeEnforce {
		return nil
	}
	min, err := ParseSeverity(p.Severity)
	if err != nil {
		return nil
	}
	var out []Finding
	for _, f := range fs {
		if f.Severity >= min && !p.allowed(f.ID, now) {
			out = append(out, f)
		}
	}
	return out
}

func (p Policy) allowed(id string, now time.Time) bool {
	for _, a := range p.Allow {
		if a.ID == id && (a.Expires.IsZero() || now.Before(a.Expires)) {
			return true
		}
	}
	return false
}

// describeBlocked names the worst blocked findings (at most three) for a refusal.
func describeBlocked(fs []Finding) string {
	var parts []string
	for i, f := range fs {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(fs)-3))
			break
		}
		s := fmt.Sprintf("%s %s in %s %s", f.Severity, f.ID, f.Package, f.Installed)
		if f.Fixed != "" {
			s += " (fixed in " + f.Fixed + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
