package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestScanSBOMReferrers: a project that attaches SBOMs gets the CycloneDX document Berth
// made of each image as its referrer (replaced, not piled up, on a re-scan); a project
// that uses pushed SBOMs has a CycloneDX SBOM attached by CI (oras attach) evaluated
// instead of the image's layers.
func TestScanSBOMReferrers(t *testing.T) {
	requireTool(t, "crane")
	requireTool(t, "cosign")
	oras := requireTool(t, "oras")
	trivy := requireTool(t, "trivy")
	env := toolEnv(t)
	work := t.TempDir()
	b := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + admPassword +
		"\nscan:\n  enabled: true\n  dbCheckInterval: 1s\n  trivy:\n    path: " + trivy +
		"\nevents:\n  webhooks:\n    backoff: 200ms\n    maxBackoff: 1s\n    allowPrivateTargets: true\n"})
	run(t, env, "crane", "auth", "login", b.Addr, "-u", "admin", "-p", admPassword)
	admOK(t, b, "", "project", "create", "aquasecurity")
	admOK(t, b, "", "project", "create", "team")
	scPushDB(t, env, b, scBuildTrivyDB(t, filepath.Join(work, "db"), time.Now().Add(-time.Hour).UTC().Truncate(time.Second),
		[]scAdvisory{{ID: "CVE-2099-0001", Severity: "HIGH", Title: "musl overflow", AlpinePkg: "musl", Fixed: "1.2.4-r3"}}))
	admOK(t, b, "", "scan", "policy", "set", "team", "--scan-on-push", "--attach-sbom", "--use-pushed-sboms")
	hook := whNewReceiver(t, "cloudevents", 0)
	var sub whWebhook
	admJSON(t, b, &sub, "webhook", "create", "scans", hook.url(), "--project", "team", "--events", "scan.completed")
	hook.secret = sub.Secret

	vuln := scPushImage(t, env, b, "team/app:vuln", map[string]string{"musl": "1.2.4-r2"}, "")
	if r := scWaitReport(t, b, "team/app@"+vuln, time.Time{}); len(r.Findings) != 1 {
		t.Fatalf("vulnerable image: %v", r.ids())
	}
	sboms := func(digest string) []string {
		req, _ := http.NewRequest(http.MethodGet, b.URL("/v2/team/app/referrers/"+digest+"?artifactType="+url.QueryEscape("application/vnd.cyclonedx+json")), nil)
		req.SetBasicAuth("admin", admPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var idx clIndex
		if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("referrers of %s: %s %v", digest, resp.Status, err)
		}
		var out []string
		for _, d := range idx.Manifests {
			out = append(out, d.Digest)
		}
		return out
	}
	// The scan's completion reached the webhook, signed, with the report's counts.
	msg := hook.waitFor(1, time.Minute)[0]
	data, _ := msg.body["data"].(map[string]any)
	counts, _ := data["data"].(map[string]any)
	if c := whParse(msg); !strings.HasSuffix(c.Type, "scan.completed") || c.Digest != vuln || counts["high"] != float64(1) || counts["status"] != "ok" {
		t.Fatalf("scan.completed webhook: %+v %v", c, counts)
	}
	attached := sboms(vuln)
	if len(attached) != 1 {
		t.Fatalf("referrers of the scanned image: %v, want one SBOM", attached)
	}
	// Fetch the SBOM as any client would: the artifact's one layer.
	var m struct{ Layers []struct{ Digest string } }
	if err := json.Unmarshal([]byte(run(t, env, "crane", "manifest", "--insecure", b.Addr+"/team/app@"+attached[0])), &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("SBOM artifact: %v %+v", err, m)
	}
	sbom := run(t, env, "crane", "blob", "--insecure", b.Addr+"/team/app@"+m.Layers[0].Digest)
	if !strings.Contains(sbom, `"bomFormat": "CycloneDX"`) && !strings.Contains(sbom, `"bomFormat":"CycloneDX"`) || !strings.Contains(sbom, "musl") {
		t.Fatalf("attached SBOM is not the image's CycloneDX inventory:\n%.500s", sbom)
	}

	// Berth signed it: cosign verifies the SBOM artifact with Berth's published key, and
	// refuses it with another key.
	pub := filepath.Join(work, "berth-sbom.pub")
	if err := os.WriteFile(pub, []byte(admOK(t, b, "", "scan", "sbom-key")), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, env, "cosign", "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", b.Addr+"/team/app@"+attached[0])
	if out, err := runErrIn(work, append(env, "COSIGN_PASSWORD=e2e-key-pass"), "cosign", "generate-key-pair", "--output-key-prefix", "other"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	if out, err := runErr(env, "cosign", "verify", "--key", filepath.Join(work, "other.pub"), "--insecure-ignore-tlog=true", "--allow-http-registry",
		b.Addr+"/team/app@"+attached[0]); err == nil {
		t.Fatalf("cosign verified Berth's SBOM with another key:\n%s", out)
	}

	// A re-scan replaces Berth's SBOM referrer.
	admOK(t, b, "", "scan", "run", "team/app@"+vuln)
	deadline := time.Now().Add(time.Minute)
	for got := sboms(vuln); len(got) != 1 || got[0] == attached[0]; got = sboms(vuln) {
		if time.Now().After(deadline) {
			t.Fatalf("after a re-scan the SBOM referrers are %v (before: %v), want one new one", got, attached)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// An image without packages, with the vulnerable image's SBOM attached by "CI": the
	// pushed SBOM is what the scan sees.
	empty := scPushImage(t, env, b, "team/app:empty", map[string]string{}, "")
	first := scWaitReport(t, b, "team/app@"+empty, time.Time{})
	if len(first.Findings) != 0 {
		t.Fatalf("image without packages: %v", first.ids())
	}
	sbomFile := filepath.Join(work, "ci.cdx.json")
	if err := os.WriteFile(sbomFile, []byte(sbom), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runErrIn(work, env, oras, "attach", "--plain-http", "-u", "admin", "-p", admPassword, "--artifact-type", "application/vnd.cyclonedx+json",
		b.Addr+"/team/app@"+empty, "ci.cdx.json:application/vnd.cyclonedx+json"); err != nil {
		t.Fatalf("oras attach: %v\n%s", err, out)
	}
	admOK(t, b, "", "scan", "run", "team/app@"+empty)
	deadline = time.Now().Add(2 * time.Minute)
	for {
		r := scWaitReport(t, b, "team/app@"+empty, time.Time{})
		if slices.Equal(r.ids(), []string{"HIGH CVE-2099-0001 musl 1.2.4-r2->1.2.4-r3"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pushed SBOM was not evaluated: %v", r.ids())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Berth's own SBOM from the first scan stays beside the pushed one: the scan that
	// used the pushed SBOM attached nothing.
	if got := sboms(empty); len(got) != 2 {
		t.Errorf("SBOM referrers of the CI-attested image: %v, want Berth's first and the pushed one", got)
	}
}
