package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// conformanceEnv turns on every API workflow and data set of the OCI conformance suite,
// including the 1.1+dev ones (upload cancel, digest headers, tag parameters).
func conformanceEnv(addr, results string, sparse bool) []string {
	env := []string{
		"OCI_REGISTRY=" + addr, "OCI_TLS=disabled", "OCI_VERSION=1.1", "OCI_LOG=warn",
		"OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/xmount",
		"OCI_RESULTS_DIR=" + results,
	}
	for _, v := range []string{
		"PULL", "PUSH", "TAGS_LIST", "REFERRER", "TAGS_DELETE", "MANIFESTS_DELETE", "BLOBS_DELETE",
		"BLOBS_MOUNT_ANONYMOUS", "BLOBS_UPLOAD_CANCEL", "BLOBS_DIGEST_HEADER", "MANIFESTS_DIGEST_HEADER",
		"MANIFESTS_TAG_PARAM", "BLOBS_ATOMIC", "MANIFESTS_ATOMIC", "TAGS_ATOMIC",
	} {
		env = append(env, "OCI_API_"+v+"=true")
	}
	for _, v := range []string{
		"IMAGE", "INDEX", "INDEX_LIST", "ARTIFACT", "SUBJECT", "SUBJECT_MISSING", "ARTIFACT_LIST",
		"SUBJECT_LIST", "DATA_FIELD", "NONDISTRIBUTABLE", "CUSTOM_FIELDS", "NO_LAYERS", "EMPTY_BLOB", "SHA512",
	} {
		env = append(env, "OCI_DATA_"+v+"=true")
	}
	env = append(env, "OCI_DATA_SPARSE="+strconv.FormatBool(sparse))
	return env
}

var conformanceCount = regexp.MustCompile(`(?m)^\s*(Pass|FAIL|Skip|Error|Disabled)\.+:\s+(\d+)\s*$`)

// TestConformance runs the official suite against the default (strict) registry, with
// sparse manifests enabled on both sides, with PostgreSQL metadata, and with blobs on S3. Every test must
// pass; none may skip.
func TestConformance(t *testing.T) {
	bin := requireTool(t, "oci-conformance")
	for _, tc := range []struct {
		name     string
		sparse   bool
		postgres bool
		s3       bool
	}{{"strict", false, false, false}, {"sparse", true, false, false}, {"postgres", true, true, false}, {"s3", false, false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ""
			if tc.sparse {
				cfg = "manifests:\n  allowSparse: true\n"
			}
			if tc.s3 {
				cfg += startS3(t).Config("conformance")
			}
			if tc.postgres {
				cfg += "database:\n  driver: postgres\n  dsn: " + postgresDSN(t) + "\n"
			}
			b := startBerth(t, BerthOptions{Config: cfg})
			work := t.TempDir()
			results := filepath.Join(work, "results")
			// The suite reads ./oci-conformance.yaml if present: run it from an empty dir.
			out, _ := runErrIn(work, conformanceEnv(b.Addr, results, tc.sparse), bin)
			counts := map[string]int{}
			for _, m := range conformanceCount.FindAllStringSubmatch(out, -1) {
				counts[m[1]], _ = strconv.Atoi(m[2])
			}
			t.Logf("conformance %s: %v", tc.name, counts)
			if counts["Pass"] == 0 || counts["FAIL"] != 0 || counts["Skip"] != 0 || counts["Error"] != 0 {
				if report, err := os.ReadFile(filepath.Join(results, "results.yaml")); err == nil && len(report) < 200000 {
					t.Logf("results.yaml:\n%s", report)
				}
				t.Fatalf("conformance %s: want all passing and none skipped, got %v\n%s", tc.name, counts, tail(out, 20000))
			}
			wantDisabled := 1 // the sparse data set in the strict run
			if tc.sparse {
				wantDisabled = 0
			}
			if counts["Disabled"] > wantDisabled {
				t.Fatalf("conformance %s: %d tests disabled, want at most %d\n%s", tc.name, counts["Disabled"], wantDisabled, tail(out, 4000))
			}
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
