package scan

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// sarifSchema compiles the OASIS SARIF 2.1.0 schema (testdata, from
// github.com/oasis-tcs/sarif-spec sarif-2.1/schema).
func sarifSchema(t *testing.T) *jsonschema.Schema {
	f, err := os.Open("testdata/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("sarif.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("sarif.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSARIF(t *testing.T) {
	schema := sarifSchema(t)
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		findings   []Finding
		wantRules  []string
		wantLevels []string
		wantScore  string
	}{
		{name: "clean image", findings: nil},
		{name: "two packages, one advisory each, one shared", findings: []Finding{
			{ID: "CVE-2099-0001", Severity: High, CVSS: 7.5, Title: "musl overflow", Package: "musl", Installed: "1.2.4-r2", Fixed: "1.2.4-r3", Target: "alpine 3.19.1"},
			{ID: "GHSA-berth-0001", Severity: Critical, Package: "golang.org/x/sync", Installed: "v0.1.0", Target: "usr/bin/app"},
			{ID: "CVE-2099-0001", Severity: High, CVSS: 7.5, Package: "musl-utils", Installed: "1.2.4-r2", Target: "alpine 3.19.1"},
			{ID: "CVE-2099-0003", Severity: Low, Package: "zlib", Installed: "1.3", Target: "alpine 3.19.1"},
		}, wantRules: []string{"CVE-2099-0001", "GHSA-berth-0001", "CVE-2099-0003"},
			wantLevels: []string{"error", "error", "error", "note"}, wantScore: "7.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Digest: "sha256:" + strings.Repeat("a", 64), Repository: "team/app", Engine: "trivy", Status: StatusOK,
				ScannedAt: at, DBUpdatedAt: at.Add(-time.Hour), Findings: tt.findings}
			out, err := SARIF(r, "team/app@"+r.Digest)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(doc); err != nil {
				t.Fatalf("not valid SARIF 2.1.0: %v\n%s", err, out)
			}
			var log sarifLog
			if err := json.Unmarshal(out, &log); err != nil {
				t.Fatal(err)
			}
			run := log.Runs[0]
			var rules, levels []string
			for _, rule := range run.Tool.Driver.Rules {
				rules = append(rules, rule.ID)
			}
			for _, res := range run.Results {
				levels = append(levels, res.Level)
				if run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
					t.Errorf("result %s points at rule %d", res.RuleID, res.RuleIndex)
				}
			}
			if strings.Join(rules, ",") != strings.Join(tt.wantRules, ",") || strings.Join(levels, ",") != strings.Join(tt.wantLevels, ",") {
				t.Errorf("rules %v levels %v, want %v %v", rules, levels, tt.wantRules, tt.wantLevels)
			}
			if tt.wantScore != "" && run.Tool.Driver.Rules[0].Properties["security-severity"] != tt.wantScore {
				t.Errorf("security-severity %v, want %s", run.Tool.Driver.Rules[0].Properties["security-severity"], tt.wantScore)
			}
		})
	}
}

// TestSARIFSchemaCatchesErrors proves the validation can fail.
func TestSARIFSchemaCatchesErrors(t *testing.T) {
	doc, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"version":"2.1.0","runs":[{"tool":{"driver":{}},"results":[{"level":"fatal","message":{"text":"x"}}]}]}`))
	if err := sarifSchema(t).Validate(doc); err == nil {
		t.Fatal("a log without a driver name and with level fatal passed")
	}
}
