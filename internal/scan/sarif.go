package scan

import (
	"encoding/json"
	"fmt"
	"strings"
)

// SARIF 2.1.0 (OASIS), as code-scanning dashboards (GitHub, GitLab, DefectDojo) read
// it: one rule per vulnerability, one result per affected package, the level from the
// severity and "security-severity" from the CVSS score so that dashboards rank as
// Berth does.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool       sarifTool      `json:"tool"`
	Results    []sarifResult  `json:"results"`
	Properties map[string]any `json:"properties,omitempty"`
}

type sarifTool struct {
	Driver struct {
		Name           string      `json:"name"`
		InformationURI string      `json:"informationUri,omitempty"`
		Rules          []sarifRule `json:"rules"`
	} `json:"driver"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID               string         `json:"id"`
	ShortDescription sarifText      `json:"shortDescription"`
	HelpURI          string         `json:"helpUri,omitempty"`
	Properties       map[string]any `json:"properties"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifText       `json:"message"`
	Locations []sarifLocation `json:"locations"`
}

type sarifLocation struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
	} `json:"physicalLocation"`
	Message sarifText `json:"message"`
}

// severityScore stands in for a missing CVSS score, at the middle of the severity's
// CVSS v3 band.
var severityScore = map[Severity]float64{Critical: 9.5, High: 8.0, Medium: 5.5, Low: 2.0, Unknown: 0}

func sarifLevel(s Severity) string {
	switch s {
	case Critical, High:
		return "error"
	case Medium:
		return "warning"
	}
	return "note"
}

// SARIF renders a report as a SARIF 2.1.0 log; ref names the image ("repo@digest").
func SARIF(r Report, ref string) ([]byte, error) {
	run := sarifRun{Results: []sarifResult{}, Properties: map[string]any{
		"imageDigest": r.Digest, "repository": r.Repository, "scannedAt": r.ScannedAt, "status": r.Status}}
	if !r.DBUpdatedAt.IsZero() {
		run.Properties["vulnerabilityDBUpdatedAt"] = r.DBUpdatedAt
	}
	run.Tool.Driver.Name = "Berth (" + r.Engine + ")"
	run.Tool.Driver.InformationURI = "https://github.com/berth-registry/berth"
	run.Tool.Driver.Rules = []sarifRule{}
	index := map[string]int{}
	for _, f := range r.Findings {
		i, ok := index[f.ID]
		if !ok {
			i = len(run.Tool.Driver.Rules)
			index[f.ID] = i
			score := f.CVSS
			if score == 0 {
				score = severityScore[f.Severity]
			}
			title := f.Title
			if title == "" {
				title = f.ID
			}
			run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{ID: f.ID, ShortDescription: sarifText{title},
				HelpURI: advisoryURL(f.ID), Properties: map[string]any{
					"security-severity": fmt.Sprintf("%.1f", score),
					"tags":              []string{"vulnerability", "security", f.Severity.String()},
				}})
		}
		msg := fmt.Sprintf("%s %s in %s: %s %s", f.Severity, f.ID, f.Target, f.Package, f.Installed)
		if f.Fixed != "" {
			msg += ", fixed in " + f.Fixed
		}
		loc := sarifLocation{Message: sarifText{f.Target}}
		loc.PhysicalLocation.ArtifactLocation.URI = ref
		run.Results = append(run.Results, sarifResult{RuleID: f.ID, RuleIndex: i, Level: sarifLevel(f.Severity),
			Message: sarifText{msg}, Locations: []sarifLocation{loc}})
	}
	return json.MarshalIndent(sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}}, "", "  ")
}

// advisoryURL is where a vulnerability is described, for the ids whose home is known.
func advisoryURL(id string) string {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return "https://nvd.nist.gov/vuln/detail/" + id
	case strings.HasPrefix(id, "GHSA-"):
		return "https://github.com/advisories/" + id
	case strings.HasPrefix(id, "GO-"):
		return "https://pkg.go.dev/vuln/" + id
	}
	return ""
}
