package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/scan"
)

// ---------------------------------------------------------------- vulnerability scanning
//
// berth admin scan …: clients of /api/v1/projects/{project}/scan-policy,
// …/manifests/{digest}/scan, /api/v1/vulnerabilities/{id} and /api/v1/scan/db.

// scanRef splits REPO@DIGEST into the admin API path of its scan route.
func scanRef(ref string) (string, error) {
	repo, digest, ok := strings.Cut(ref, "@")
	if !ok || digest == "" {
		return "", fmt.Errorf("%q: want PROJECT/REPOSITORY@sha256:…", ref)
	}
	p, err := repoPath(repo)
	if err != nil {
		return "", err
	}
	return p + "/manifests/" + url.PathEscape(digest) + "/scan", nil
}

// parseAllow reads --allow ID=REASON or ID=REASON@EXPIRY (RFC 3339 or 2006-01-02).
func parseAllow(s string) (scan.Allowance, error) {
	id, rest, ok := strings.Cut(s, "=")
	if !ok || id == "" || rest == "" {
		return scan.Allowance{}, fmt.Errorf("--allow %q: want ID=REASON or ID=REASON@EXPIRY", s)
	}
	a := scan.Allowance{ID: id, Reason: rest}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		exp := rest[i+1:]
		t, err := time.Parse(time.RFC3339, exp)
		if err != nil {
			t, err = time.Parse("2006-01-02", exp)
		}
		if err != nil {
			return scan.Allowance{}, fmt.Errorf("--allow %q: expiry %q: want RFC 3339 or YYYY-MM-DD", s, exp)
		}
		a.Reason, a.Expires = rest[:i], t
	}
	return a, nil
}

func (c *adminClient) scanCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Vulnerability scanning: project policies, reports, affected images",
		Long: `With scan.enabled, Berth scans images with Trivy as background jobs and keeps the reports
by digest. A project's policy scans on push and, in enforce mode, refuses pulls of images
with findings at or above a severity (403 DENIED naming them), unless allowed; warn mode
serves them and records an audit entry.`,
		Example: `  berth admin scan policy set team --scan-on-push --mode enforce --severity HIGH
  berth admin scan policy set team --mode enforce --severity CRITICAL --allow 'CVE-2024-1234=no fix, mitigated@2027-01-31'
  berth admin scan run team/app@sha256:…
  berth admin scan show team/app@sha256:…
  berth admin scan cve CVE-2024-1234`,
	}
	var p scan.Policy
	var allow []string
	var upstream bool
	set := &cobra.Command{
		Use:   "set PROJECT|UPSTREAM",
		Short: "Set the project's scan policy (project administrators)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc := p
			for _, s := range allow {
				a, err := parseAllow(s)
				if err != nil {
					return err
				}
				doc.Allow = append(doc.Allow, a)
			}
			var got scan.Policy
			if err := c.send(cmd, http.MethodPut, policyPath(args[0], upstream), nil, doc, &got); err != nil {
				return err
			}
			return c.done("%s: scan policy %s", policyScope(args[0], upstream), policyText(got))
		},
	}
	fl := set.Flags()
	fl.BoolVar(&p.ScanOnPush, "scan-on-push", false, "scan every image pushed to the project")
	fl.StringVar(&p.Mode, "mode", "off", "off, warn (serve and audit) or enforce (refuse pulls)")
	fl.StringVar(&p.Severity, "severity", "", "lowest blocking severity: LOW, MEDIUM, HIGH or CRITICAL")
	fl.BoolVar(&p.BlockUnscanned, "block-unscanned", false, "also block images without a successful scan")
	fl.StringArrayVar(&allow, "allow", nil, "never block this vulnerability: ID=REASON[@EXPIRY] (repeatable)")
	fl.BoolVar(&p.AttachSBOM, "attach-sbom", false, "store the SBOM of each scanned image as its OCI referrer (CycloneDX)")
	fl.BoolVar(&p.UsePushedSBOMs, "use-pushed-sboms", false, "evaluate a CycloneDX SBOM pushed as the image's referrer instead of reading its layers (trust who pushes)")
	show := &cobra.Command{
		Use:   "show PROJECT|UPSTREAM",
		Short: "Show the project's scan policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var got scan.Policy
			if err := c.send(cmd, http.MethodGet, policyPath(args[0], upstream), nil, nil, &got); err != nil {
				return err
			}
			return c.done("%s: scan policy %s", policyScope(args[0], upstream), policyText(got))
		},
	}
	del := &cobra.Command{
		Use:   "delete PROJECT|UPSTREAM",
		Short: "Remove the project's scan policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.send(cmd, http.MethodDelete, policyPath(args[0], upstream), nil, nil, nil); err != nil {
				return err
			}
			return c.done("%s: scan policy removed", policyScope(args[0], upstream))
		},
	}
	policy := &cobra.Command{Use: "policy", Short: "Show, set or remove the scan policy of a project or (--upstream) a mirror upstream"}
	policy.PersistentFlags().BoolVar(&upstream, "upstream", false, "the name is a mirror upstream (registry.k8s.io): the policy covers what is mirrored from it, scanned when cached")
	policy.AddCommand(set, show, del)

	run := &cobra.Command{
		Use:   "run PROJECT/REPOSITORY@DIGEST",
		Short: "Queue a scan (callers who may push to the repository)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := scanRef(args[0])
			if err != nil {
				return err
			}
			if err := c.send(cmd, http.MethodPost, path, nil, nil, nil); err != nil {
				return err
			}
			return c.done("%s: scan queued", args[0])
		},
	}
	var sarif bool
	showReport := &cobra.Command{
		Use:   "report PROJECT/REPOSITORY@DIGEST",
		Short: "Show the last scan report of a manifest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := scanRef(args[0])
			if err != nil {
				return err
			}
			if sarif {
				// The SARIF log as the server renders it, for code-scanning dashboards.
				data, _, err := c.call(cmd.Context(), http.MethodGet, path, url.Values{"format": {"sarif"}}, nil)
				if err != nil {
					return err
				}
				_, err = c.out.Write(data)
				return err
			}
			var r scan.Report
			if err := c.send(cmd, http.MethodGet, path, nil, nil, &r); err != nil || c.json {
				return err
			}
			s := r.Summary
			fmt.Fprintf(c.out, "%s: %s, scanned %s with the database of %s: %d critical, %d high, %d medium, %d low, %d unknown (%d fixable)\n",
				args[0], r.Status, stamp(r.ScannedAt), stamp(r.DBUpdatedAt), s.Critical, s.High, s.Medium, s.Low, s.Unknown, s.Fixable)
			if r.Error != "" {
				fmt.Fprintln(c.out, "error:", r.Error)
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEVERITY\tID\tPACKAGE\tINSTALLED\tFIXED\tTARGET")
			for _, f := range r.Findings {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Severity, f.ID, f.Package, f.Installed, orDash(f.Fixed), f.Target)
			}
			return tw.Flush()
		},
	}
	showReport.Flags().BoolVar(&sarif, "sarif", false, "print the report as a SARIF 2.1.0 log")
	list := &cobra.Command{
		Use:   "list PROJECT",
		Short: "List a project's scanned images, worst first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ Artifacts []scan.ArtifactReport }
			if err := c.send(cmd, http.MethodGet, "/projects/"+url.PathEscape(args[0])+"/scan/reports", url.Values{"n": {"10000"}}, nil, &out); err != nil || c.json {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tDIGEST\tSTATUS\tCRITICAL\tHIGH\tMEDIUM\tLOW\tFIXABLE\tSCANNED")
			for _, a := range out.Artifacts {
				s := a.Summary
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", a.Repository, a.Digest, a.Status, s.Critical, s.High, s.Medium, s.Low, s.Fixable, stamp(a.ScannedAt))
			}
			return tw.Flush()
		},
	}
	cve := &cobra.Command{
		Use:   "cve ID",
		Short: "List the images holding a vulnerability, in the repositories you may pull",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ Artifacts []scan.Affected }
			if err := c.send(cmd, http.MethodGet, "/vulnerabilities/"+url.PathEscape(args[0]), nil, nil, &out); err != nil || c.json {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tDIGEST\tSEVERITY\tPACKAGE\tINSTALLED\tFIXED")
			for _, a := range out.Artifacts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Repository, a.Digest, a.Severity, a.Package, a.Installed, orDash(a.Fixed))
			}
			return tw.Flush()
		},
	}
	db := &cobra.Command{
		Use:   "db",
		Short: "Show the vulnerability database the server scans with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var info scan.DBInfo
			if err := c.send(cmd, http.MethodGet, "/scan/db", nil, nil, &info); err != nil {
				return err
			}
			stale := ""
			if info.Stale {
				stale = " (STALE: update the database artifact)"
			}
			java := "an empty Java database"
			if info.JavaDigest != "" {
				java = "Java database " + info.JavaDigest
			}
			return c.done("%s %s: built %s%s; %s", info.Repository, orDash(info.Digest), stamp(info.UpdatedAt), stale, java)
		},
	}
	sbomKey := &cobra.Command{
		Use:   "sbom-key",
		Short: "Print the public key Berth signs its SBOM referrers with (for cosign verify --key, trust policies)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ PublicKey string }
			if err := c.send(cmd, http.MethodGet, "/scan/sbom-key", nil, nil, &out); err != nil || c.json {
				return err
			}
			_, err := fmt.Fprint(c.out, out.PublicKey)
			return err
		},
	}
	cmd.AddCommand(policy, run, showReport, list, cve, db, sbomKey)
	return cmd
}

// policyPath is the admin API path of a project's or a mirror upstream's scan policy.
func policyPath(name string, upstream bool) string {
	if upstream {
		return "/upstreams/" + url.PathEscape(name) + "/scan-policy"
	}
	return "/projects/" + url.PathEscape(name) + "/scan-policy"
}

func policyScope(name string, upstream bool) string {
	if upstream {
		return "upstream " + name
	}
	return "project " + name
}

func policyText(p scan.Policy) string {
	s := "mode " + p.Mode
	if p.Severity != "" {
		s += ", blocks " + p.Severity + " and above"
	}
	if p.ScanOnPush {
		s += ", scans on push"
	}
	if p.BlockUnscanned {
		s += ", blocks unscanned images"
	}
	if p.AttachSBOM {
		s += ", attaches SBOMs"
	}
	if p.UsePushedSBOMs {
		s += ", uses pushed SBOMs"
	}
	for _, a := range p.Allow {
		s += ", allows " + a.ID
		if !a.Expires.IsZero() {
			s += " until " + a.Expires.Format("2006-01-02")
		}
	}
	return s
}
