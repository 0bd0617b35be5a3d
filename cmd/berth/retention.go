package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/berth-registry/berth/internal/tagrules"
)

// ---------------------------------------------------------------- retention and immutable tags
//
// berth admin retention … and berth admin immutable …: clients of
// /api/v1/projects/{project}/retention and …/immutable (package tagrules decides on the
// server).

func retentionPath(project string) string {
	return "/projects/" + url.PathEscape(project) + "/retention"
}

// retentionFlags build a policy from a file or from a one-rule shorthand.
type retentionFlags struct {
	file, keep, within, schedule string
	repos, excludeRepos          string
	tags, excludeTags            string
	count                        int
}

// document returns the policy as JSON for the API, which validates it: a file (YAML or
// JSON, the API's field names) or the shorthand flags.
func (f *retentionFlags) document() (map[string]any, error) {
	if f.file != "" {
		b, err := os.ReadFile(f.file)
		if err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f.file, err)
		}
		if f.schedule != "" {
			doc["schedule"] = f.schedule
		}
		return doc, nil
	}
	if f.keep == "" {
		return nil, fmt.Errorf("give --file or --keep (latestPushed, latestPulled, pushedWithin, pulledWithin, always)")
	}
	rule := map[string]any{"keep": f.keep,
		"repositories": map[string]string{"match": f.repos, "exclude": f.excludeRepos},
		"tags":         map[string]string{"match": f.tags, "exclude": f.excludeTags}}
	if f.count > 0 {
		rule["count"] = f.count
	}
	if f.within != "" {
		rule["within"] = f.within
	}
	doc := map[string]any{"rules": []any{rule}}
	if f.schedule != "" {
		doc["schedule"] = f.schedule
	}
	return doc, nil
}

func (c *adminClient) retentionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Show, set and run a project's tag retention policy",
		Long: `A retention policy deletes the tags its rules do not keep. A tag is in scope when its
repository (the path after the project) is selected by at least one rule; a tag in scope
is kept when an immutable rule protects it or when a rule selecting its repository and its
name keeps it (the latest N pushed or pulled per repository, those pushed or pulled
within a duration, or always); every other tag in scope is deleted. Repositories no rule
selects are never touched. Deleted tags feed garbage collection. Patterns are globs:
* (not /), ** (anything), ?, [a-z], [!a-z], {a,b}.`,
		Example: `  berth admin retention set team --keep latestPushed --count 10 --schedule 24h
  berth admin retention set team --file policy.yaml
  berth admin retention run team --dry-run
  berth admin retention show team`,
	}
	var f retentionFlags
	set := &cobra.Command{
		Use:   "set PROJECT",
		Short: "Create or replace the policy (project administrators)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := f.document()
			if err != nil {
				return err
			}
			var sp tagrules.StoredPolicy
			if err := c.send(cmd, http.MethodPut, retentionPath(args[0]), nil, doc, &sp); err != nil {
				return err
			}
			return c.done("project %s: retention policy with %d rule(s), %s", sp.Project, len(sp.Policy.Rules), scheduleOf(sp.Policy))
		},
	}
	fl := set.Flags()
	fl.StringVar(&f.file, "file", "", "policy document (YAML or JSON: rules, schedule)")
	fl.StringVar(&f.keep, "keep", "", "one-rule policy: latestPushed, latestPulled, pushedWithin, pulledWithin or always")
	fl.IntVar(&f.count, "count", 0, "tags kept per repository by latestPushed / latestPulled")
	fl.StringVar(&f.within, "within", "", "age kept by pushedWithin / pulledWithin, e.g. 720h")
	fl.StringVar(&f.repos, "repositories", "", "repositories the rule selects (glob after the project; default all)")
	fl.StringVar(&f.excludeRepos, "exclude-repositories", "", "repositories the rule leaves out")
	fl.StringVar(&f.tags, "tags", "", "tags the rule selects (glob; default all)")
	fl.StringVar(&f.excludeTags, "exclude-tags", "", "tags the rule leaves out")
	fl.StringVar(&f.schedule, "schedule", "", "run every this long as a background job, e.g. 24h (default: only by hand)")

	show := &cobra.Command{
		Use:   "show PROJECT",
		Short: "Show the policy and its last run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sp tagrules.StoredPolicy
			if err := c.send(cmd, http.MethodGet, retentionPath(args[0]), nil, nil, &sp); err != nil || c.json {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "project %s: %s; last run %s %s\n", sp.Project, scheduleOf(sp.Policy), stamp(sp.LastRunAt), sp.LastResult)
			fmt.Fprintln(tw, "RULE\tKEEP\tREPOSITORIES\tTAGS")
			for i, r := range sp.Policy.Rules {
				keep := r.Keep
				if r.Count > 0 {
					keep += " " + strconv.Itoa(r.Count)
				}
				if r.Within > 0 {
					b, _ := json.Marshal(r.Within)
					keep += " " + strings.Trim(string(b), `"`)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", i+1, keep, r.Repositories, r.Tags)
			}
			return tw.Flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete PROJECT",
		Short: "Remove the policy: every tag is kept from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.send(cmd, http.MethodDelete, retentionPath(args[0]), nil, nil, nil); err != nil {
				return err
			}
			return c.done("project %s: retention policy removed", args[0])
		},
	}
	var dry bool
	run := &cobra.Command{
		Use:   "run PROJECT",
		Short: "Run the policy now (project administrators), or with --dry-run show what it would delete",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rep tagrules.Report
			q := url.Values{"dryRun": {strconv.FormatBool(dry)}}
			if err := c.send(cmd, http.MethodPost, retentionPath(args[0])+"/run", q, nil, &rep); err != nil || c.json {
				return err
			}
			return c.printReport(rep)
		},
	}
	run.Flags().BoolVar(&dry, "dry-run", false, "decide and report only; delete nothing")
	cmd.AddCommand(set, show, del, run)
	return cmd
}

func scheduleOf(p tagrules.Policy) string {
	if p.Schedule <= 0 {
		return "run by hand"
	}
	b, _ := json.Marshal(p.Schedule)
	return "runs every " + strings.Trim(string(b), `"`)
}

// printReport lists every tag in scope with what happened to it and why.
func (c *adminClient) printReport(rep tagrules.Report) error {
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	del := "deleted"
	if rep.DryRun {
		del = "would delete"
	}
	fmt.Fprintln(tw, "ACTION\tREPOSITORY\tTAG\tDIGEST\tPUSHED\tPULLED\tREASON")
	for _, group := range []struct {
		action string
		list   []tagrules.Decision
	}{{del, rep.Deleted}, {"kept", rep.Skipped}, {"kept", rep.Kept}} {
		for _, d := range group.list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", group.action, d.Repository, d.Tag, shortDigest(d.Digest), stamp(d.Pushed), stamp(d.Pulled), d.Reason)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return c.done("project %s: %s", rep.Project, rep.Summary())
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func (c *adminClient) immutableCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "immutable",
		Short: "Protect tags from being moved or deleted",
		Long: `A tag of the project whose name matches an immutable rule's tag pattern (and whose
repository path after the project matches its repository pattern, ** by default) can be
created and pushed again with the same manifest, but a push moving it to another manifest
and a delete of it, of a manifest it names or of its repository fail with 403 DENIED
naming the rule. Retention keeps such tags. Mirrored namespaces take no rules.`,
		Example: `  berth admin immutable add team 'v*'
  berth admin immutable add team 'release-*' --repositories 'prod/**'
  berth admin immutable list team
  berth admin immutable delete team 3`,
	}
	path := func(project string) string { return "/projects/" + url.PathEscape(project) + "/immutable" }
	list := &cobra.Command{
		Use:   "list PROJECT",
		Short: "List the project's rules",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, _, err := c.call(cmd.Context(), http.MethodGet, path(args[0]), nil, nil)
			if err != nil {
				return err
			}
			var page map[string][]json.RawMessage
			if err := json.Unmarshal(data, &page); err != nil {
				return err
			}
			return c.printList("rules", page["rules"], "ID\tTAGS\tREPOSITORIES\tCREATED", func(raw json.RawMessage) (string, error) {
				var r tagrules.ImmutableRule
				if err := json.Unmarshal(raw, &r); err != nil {
					return "", err
				}
				return fmt.Sprintf("%d\t%s\t%s\t%s", r.ID, r.Tags, r.Repositories, stamp(r.CreatedAt)), nil
			})
		},
	}
	var repos string
	add := &cobra.Command{
		Use:   "add PROJECT TAG-PATTERN",
		Short: "Add a rule (project administrators)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r tagrules.ImmutableRule
			if err := c.send(cmd, http.MethodPost, path(args[0]), nil, map[string]string{"tags": args[1], "repositories": repos}, &r); err != nil {
				return err
			}
			return c.done("project %s: %s added", r.Project, r)
		},
	}
	add.Flags().StringVar(&repos, "repositories", "", "repositories the rule covers (glob after the project; default **)")
	del := &cobra.Command{
		Use:   "delete PROJECT RULE-ID",
		Short: "Remove a rule (project administrators)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.send(cmd, http.MethodDelete, path(args[0])+"/"+url.PathEscape(args[1]), nil, nil, nil); err != nil {
				return err
			}
			return c.done("project %s: immutable rule %s removed", args[0], args[1])
		},
	}
	cmd.AddCommand(list, add, del)
	return cmd
}
