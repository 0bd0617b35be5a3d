package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/trust"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// ---------------------------------------------------------------- signature policies
//
// berth admin policy … and berth admin verify: clients of /api/v1/policies and
// /api/v1/verify (package trust does the checking on the server).

// policyFlags build a policy document from a file and from shorthand flags.
type policyFlags struct {
	project, upstream, mode, file    string
	keys, notationCerts, notationIDs []string
	issuer, subject, subjectRegex    string
	trustedRoot, predicateType, name string
	requireTlog, requireTimestamp    bool
	requireSCT                       bool
}

// document reads --file (YAML or JSON: mode and requirements) and adds the requirement
// the shorthand flags describe. Key and certificate files are read here and sent
// inline; a trusted root is a path on the server.
func (f *policyFlags) document() (config.TrustPolicy, error) {
	var doc config.TrustPolicy
	if f.file != "" {
		b, err := os.ReadFile(f.file)
		if err != nil {
			return doc, fmt.Errorf("--file: %w", err)
		}
		// YAML is a superset of JSON, and the document's YAML keys are its JSON names.
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			return doc, fmt.Errorf("%s: %w", f.file, err)
		}
	}
	if f.mode != "" {
		doc.Mode = f.mode
	}
	r := config.TrustRequirement{Name: f.name, TrustedRoot: f.trustedRoot, PredicateType: f.predicateType,
		RequireTlog: f.requireTlog, RequireTimestamp: f.requireTimestamp, RequireSCT: f.requireSCT,
		NotationIdentities: f.notationIDs}
	for _, k := range f.keys {
		b, err := os.ReadFile(k)
		if err != nil {
			return doc, fmt.Errorf("--cosign-key: %w", err)
		}
		r.CosignKeys = append(r.CosignKeys, string(b))
	}
	for _, c := range f.notationCerts {
		b, err := os.ReadFile(c)
		if err != nil {
			return doc, fmt.Errorf("--notation-cert: %w", err)
		}
		r.NotationCertificates = append(r.NotationCertificates, string(b))
	}
	if f.issuer != "" || f.subject != "" || f.subjectRegex != "" {
		r.Identities = []config.TrustIdentity{{Issuer: f.issuer, Subject: f.subject, SubjectRegex: f.subjectRegex}}
	}
	if len(r.CosignKeys) > 0 || len(r.NotationCertificates) > 0 || len(r.Identities) > 0 {
		if r.Name == "" {
			r.Name = "signed"
		}
		doc.Requirements = append(doc.Requirements, r)
	}
	return doc, nil
}

func (c *adminClient) policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Manage signature policies enforced at pull (system administrators)"}

	var f policyFlags
	set := &cobra.Command{
		Use:   "set NAME (--project P | --upstream U) [--file policy.yaml] [requirement flags]",
		Short: "Create or replace a signature policy",
		Long: `Create or replace the signature policy NAME of a project or a mirror upstream.

The policy document (--file, YAML or JSON) has a mode (off, warn, enforce) and requirements;
the flags --cosign-key, --notation-cert and --issuer/--subject add one more requirement
(named by --requirement, default "signed"). Key and certificate files are read here and
sent inline; --trusted-root is a path on the server.`,
		Example: `  berth admin policy set prod --project prod --cosign-key cosign.pub
  berth admin policy set k8s --upstream registry.k8s.io --trusted-root /etc/berth/trusted_root.json \
    --issuer https://accounts.google.com --subject krel-trust@k8s-releng-prod.iam.gserviceaccount.com
  berth admin policy set team --project team --notation-cert ca.pem --notation-identity 'x509.subject: CN=release'
  berth admin policy set prod --project prod --file policy.yaml --mode warn`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, scope := "project", f.project
			switch {
			case (f.project == "") == (f.upstream == ""):
				return errors.New("give exactly one of --project and --upstream")
			case f.upstream != "":
				kind, scope = "upstream", f.upstream
			}
			doc, err := f.document()
			if err != nil {
				return err
			}
			var p trust.Policy
			body := map[string]any{"scopeKind": kind, "scope": scope, "policy": doc}
			if err := c.send(cmd, http.MethodPut, "/policies/"+url.PathEscape(args[0]), nil, body, &p); err != nil {
				return err
			}
			return c.done("policy %s (%s %s, mode %s, %d requirement(s)) stored, revision %d", p.Name, p.ScopeKind, p.Scope, p.Spec.Mode, len(p.Spec.Requirements), p.Revision)
		},
	}
	fl := set.Flags()
	fl.StringVar(&f.project, "project", "", "the project the policy covers")
	fl.StringVar(&f.upstream, "upstream", "", "the mirror upstream the policy covers (e.g. registry.k8s.io)")
	fl.StringVar(&f.file, "file", "", "policy document (YAML or JSON): mode and requirements")
	fl.StringVar(&f.mode, "mode", "", "off, warn or enforce (default enforce)")
	fl.StringVar(&f.name, "requirement", "", `name of the requirement the flags add (default "signed")`)
	fl.StringArrayVar(&f.keys, "cosign-key", nil, "cosign public key file (PEM); repeatable")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "sigstore trusted_root.json path on the server (keyless identities)")
	fl.StringVar(&f.issuer, "issuer", "", "keyless: OIDC issuer of the signing certificate")
	fl.StringVar(&f.subject, "subject", "", "keyless: certificate subject (SAN), exact")
	fl.StringVar(&f.subjectRegex, "subject-regex", "", "keyless: certificate subject (SAN), regular expression matching the whole value")
	fl.BoolVar(&f.requireTlog, "require-tlog", false, "require a verified transparency-log entry")
	fl.BoolVar(&f.requireTimestamp, "require-timestamp", false, "keyless: require a verified timestamp (else the certificate is checked at the current time)")
	fl.BoolVar(&f.requireSCT, "require-sct", false, "keyless: require the certificate's embedded certificate-transparency proof")
	fl.StringArrayVar(&f.notationCerts, "notation-cert", nil, "notation trust-store CA certificate file (PEM); repeatable")
	fl.StringArrayVar(&f.notationIDs, "notation-identity", nil, `notation trusted identity ("x509.subject: C=US, O=Acme, CN=release", commas kept); repeatable`)
	fl.StringVar(&f.predicateType, "predicate-type", "", "require a signed attestation of this in-toto predicate type instead of a signature")

	list := &cobra.Command{
		Use:   "list",
		Short: "List signature policies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, _, err := c.call(cmd.Context(), http.MethodGet, "/policies", nil, nil)
			if err != nil {
				return err
			}
			var page map[string][]json.RawMessage
			if err := json.Unmarshal(data, &page); err != nil {
				return err
			}
			return c.printList("policies", page["policies"], "NAME\tSCOPE\tMODE\tREQUIREMENTS\tREVISION\tUPDATED", func(raw json.RawMessage) (string, error) {
				var p trust.Policy
				err := json.Unmarshal(raw, &p)
				names := make([]string, 0, len(p.Spec.Requirements))
				for _, r := range p.Spec.Requirements {
					names = append(names, r.Name)
				}
				rev := fmt.Sprint(p.Revision)
				if p.FromConfig {
					rev = "config"
				}
				return fmt.Sprintf("%s\t%s %s\t%s\t%s\t%s\t%s", p.Name, p.ScopeKind, p.Scope, p.Spec.Mode, orDash(strings.Join(names, ",")), rev, stamp(p.UpdatedAt)), err
			})
		},
	}

	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Print a policy as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, _, err := c.call(cmd.Context(), http.MethodGet, "/policies/"+url.PathEscape(args[0]), nil, nil)
			if err != nil {
				return err
			}
			_, err = c.out.Write(data)
			return err
		},
	}

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.send(cmd, http.MethodDelete, "/policies/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			return c.done("deleted policy %s", args[0])
		},
	}
	cmd.AddCommand(set, list, get, del)
	return cmd
}

// errNotVerified makes `berth admin verify` exit non-zero for an image its policy refuses.
var errNotVerified = errors.New("the image does not meet its signature policy")

func (c *adminClient) verifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify IMAGE",
		Short: "Check an image against its signature policy and show every signature found",
		Long: `Check REPOSITORY[:TAG|@DIGEST] as a pull would (without the verdict cache) and print
every signature and attestation found, with why each passed or failed. Exits 1 when the
policy's requirements are not met.`,
		Example: `  berth admin verify prod/app:v1
  berth admin verify registry.k8s.io/pause:3.10 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v trust.Verdict
			if err := c.send(cmd, http.MethodGet, "/verify", url.Values{"image": {args[0]}}, nil, &v); err != nil {
				return err
			}
			if !c.json {
				c.printVerdict(args[0], v)
			}
			if !v.Passed {
				cmd.SilenceUsage = true
				return errNotVerified
			}
			return nil
		},
	}
}

func (c *adminClient) printVerdict(image string, v trust.Verdict) {
	result := "FAILED"
	if v.Passed {
		result = "PASSED"
	}
	if v.Policy == "" {
		fmt.Fprintf(c.out, "%s %s: no signature policy applies\n", image, v.Digest)
		return
	}
	fmt.Fprintf(c.out, "%s %s: %s (policy %s, mode %s)\n", image, v.Digest, result, v.Policy, v.Mode)
	switch {
	case v.Exempt != "":
		fmt.Fprintf(c.out, "exempt: %s\n", v.Exempt)
	case v.Via != "":
		fmt.Fprintf(c.out, "passed through the signed index %s\n", v.Via)
	}
	if len(v.Missing) > 0 {
		fmt.Fprintf(c.out, "missing: %s\n", strings.Join(v.Missing, ", "))
	}
	if len(v.Signatures) == 0 {
		fmt.Fprintln(c.out, "no signatures found")
		return
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tREF\tREQUIREMENT\tRESULT\tREASON")
	for _, s := range v.Signatures {
		res := "failed"
		if s.Verified {
			res = "verified"
			if s.PredicateType != "" {
				res += " (" + s.PredicateType + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Kind, s.Ref, s.Requirement, res, orDash(s.Reason))
	}
	_ = tw.Flush()
}
