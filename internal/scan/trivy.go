package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Trivy runs the trivy program (v0.74.x).
type Trivy struct {
	// Path of the program.
	Path string
	// Timeout bounds one run.
	Timeout time.Duration
	// Dir holds the databases Trivy reads (one directory per downloaded copy) and
	// scratch space.
	Dir string
}

// Target is an image for the engine to read: registry host:port, repository, digest,
// and a bearer token ("" without auth) that grants pull of it and of the database.
type Target struct {
	Registry, Repository, Digest, Token string
}

func (t Target) ref() string { return t.Registry + "/" + t.Repository + "@" + t.Digest }

// env is the environment of a run: credentials never on the command line (other users
// see process arguments), plain HTTP allowed to the registry on loopback.
func (tr *Trivy) env(token string) []string {
	env := append(os.Environ(), "TRIVY_INSECURE=true", "TRIVY_NO_PROGRESS=true", "TRIVY_DISABLE_TELEMETRY=true")
	if token != "" {
		env = append(env, "TRIVY_REGISTRY_TOKEN="+token)
	}
	return env
}

func (tr *Trivy) run(ctx context.Context, token string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, tr.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tr.Path, args...)
	cmd.Env = tr.env(token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return nil, fmt.Errorf("trivy %s: %w: %s", args[0], err, msg)
	}
	return stdout.Bytes(), nil
}

// SBOM inventories the image into a CycloneDX document: the step that reads layers.
// cacheDir holds the database to use (DB.Current).
func (tr *Trivy) SBOM(ctx context.Context, t Target, cacheDir string) ([]byte, error) {
	out, err := tr.run(ctx, t.Token, "image", "--quiet", "--format", "cyclonedx", "--image-src", "remote",
		"--cache-dir", cacheDir, "--cache-backend", "memory", "--skip-db-update", "--skip-java-db-update", "--offline-scan",
		"--scanners", "vuln", t.ref())
	if err != nil {
		return nil, err
	}
	if !json.Valid(out) {
		return nil, errors.New("trivy image: the SBOM is not JSON")
	}
	return out, nil
}

// Evaluate matches an SBOM against the database in cacheDir: no registry access.
func (tr *Trivy) Evaluate(ctx context.Context, sbom []byte, cacheDir string) ([]Finding, error) {
	f, err := os.CreateTemp(tr.Dir, "sbom-*.cdx.json")
	if err != nil {
		return nil, fmt.Errorf("trivy: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(sbom); err != nil {
		f.Close()
		return nil, fmt.Errorf("trivy: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("trivy: %w", err)
	}
	out, err := tr.run(ctx, "", "sbom", "--quiet", "--format", "json", "--cache-dir", cacheDir, "--cache-backend", "memory",
		"--skip-db-update", "--skip-java-db-update", "--offline-scan", "--scanners", "vuln", f.Name())
	if err != nil {
		return nil, err
	}
	return parseTrivyReport(out)
}

// Download fetches the database from ref (a registry artifact) into a fresh directory
// under Dir and returns the directory and the database's build time. Scans running
// meanwhile keep reading the copy they started with.
func (tr *Trivy) Download(ctx context.Context, ref, token string) (string, time.Time, error) {
	dir, err := os.MkdirTemp(tr.Dir, "db-")
	if err != nil {
		return "", time.Time{}, fmt.Errorf("trivy: %w", err)
	}
	if _, err := tr.run(ctx, token, "image", "--quiet", "--download-db-only", "--db-repository", ref, "--cache-dir", dir); err != nil {
		os.RemoveAll(dir)
		return "", time.Time{}, err
	}
	updated, err := tr.DBUpdatedAt(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", time.Time{}, err
	}
	return dir, updated, nil
}

// DBUpdatedAt reads when the database in cacheDir was built.
func (tr *Trivy) DBUpdatedAt(ctx context.Context, cacheDir string) (time.Time, error) {
	out, err := tr.run(ctx, "", "version", "--format", "json", "--cache-dir", cacheDir)
	if err != nil {
		return time.Time{}, err
	}
	var v struct {
		VulnerabilityDB *struct{ UpdatedAt time.Time }
	}
	if err := json.Unmarshal(out, &v); err != nil || v.VulnerabilityDB == nil {
		return time.Time{}, fmt.Errorf("trivy version: no vulnerability database in %s", filepath.Base(cacheDir))
	}
	return v.VulnerabilityDB.UpdatedAt, nil
}

// trivyReport is the part of Trivy's JSON report (schema 2) Berth reads.
type trivyReport struct {
	SchemaVersion int
	Results       []struct {
		Target          string
		Vulnerabilities []struct {
			VulnerabilityID  string
			PkgName          string
			InstalledVersion string
			FixedVersion     string
			Severity         string
			Title            string
			CVSS             map[string]struct{ V3Score, V2Score float64 }
			Layer            struct{ DiffID string }
		}
	}
}

func parseTrivyReport(out []byte) ([]Finding, error) {
	var r trivyReport
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("trivy report: %w", err)
	}
	if r.SchemaVersion != 2 {
		return nil, fmt.Errorf("trivy report: schema version %d, want 2 (supported: trivy v0.74)", r.SchemaVersion)
	}
	findings := []Finding{}
	for _, res := range r.Results {
		for _, v := range res.Vulnerabilities {
			sev, _ := ParseSeverity(v.Severity)
			f := Finding{ID: v.VulnerabilityID, Severity: sev, Title: v.Title, Package: v.PkgName, Installed: v.InstalledVersion,
				Fixed: v.FixedVersion, Target: trivyTarget(res.Target), Layer: v.Layer.DiffID}
			for _, c := range v.CVSS { // the highest score any source gives
				f.CVSS = max(f.CVSS, c.V3Score, c.V2Score)
			}
			findings = append(findings, f)
		}
	}
	return findings, nil
}

// trivyTarget drops the scanned file's name from an OS target ("/tmp/sbom-1.json
// (alpine 3.19.1)" → "alpine 3.19.1"): it names Berth's scratch file, not the image.
func trivyTarget(t string) string {
	if i := strings.LastIndex(t, " ("); i >= 0 && strings.HasSuffix(t, ")") {
		return t[i+2 : len(t)-1]
	}
	return t
}
