package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/berth-registry/berth/internal/config"
)

// ---------------------------------------------------------------- replication
//
// berth admin replication …: a client of /api/v1/replication (package replication
// copies on the server).

type cliReplRule struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	Direction string `json:"direction"`
	Remote    struct {
		URL      string `json:"url"`
		Insecure bool   `json:"insecure"`
		Username string `json:"username"`
	} `json:"remote"`
	Repositories      []string `json:"repositories"`
	Tags              []string `json:"tags"`
	TagVersions       string   `json:"tagVersions"`
	ArtifactTypes     []string `json:"artifactTypes"`
	Platform          string   `json:"platform"`
	DestinationPrefix string   `json:"destinationPrefix"`
	Referrers         *bool    `json:"referrers"`
	Schedule          string   `json:"schedule"`
	Cron              string   `json:"cron"`
	OnPush            bool     `json:"onPush"`
	PropagateDeletes  bool     `json:"propagateDeletes"`
	Enabled           bool     `json:"enabled"`
}

type cliReplExecution struct {
	ID       int64     `json:"id"`
	Cause    string    `json:"cause"`
	State    string    `json:"state"`
	Started  time.Time `json:"startedAt"`
	Finished time.Time `json:"finishedAt"`
	Copied   int       `json:"copied"`
	Failed   int       `json:"failed"`
	Bytes    int64     `json:"bytes"`
	Error    string    `json:"error"`
	Items    []struct {
		Source      string `json:"source"`
		Destination string `json:"destination"`
		Digest      string `json:"digest"`
		State       string `json:"state"`
		Referrers   int    `json:"referrers"`
		Bytes       int64  `json:"bytes"`
		Error       string `json:"error"`
	} `json:"items"`
}

func replRulePath(id string, rest string) (string, error) {
	if n, err := strconv.ParseInt(id, 10, 64); err != nil || n <= 0 {
		return "", fmt.Errorf("%q: a rule id is a positive number (berth admin replication list)", id)
	}
	return "/replication/rules/" + id + rest, nil
}

func (c *adminClient) replicationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replication",
		Short: "Manage replication rules: copy artifact graphs to or from other registries",
		Long: `A push rule copies local repositories to a remote registry, a pull rule copies the
remote's repositories here. Each artifact travels whole — an index with every platform,
its manifests and blobs, and (unless --no-referrers) the signatures, attestations and SBOMs
that refer to it — with its digests unchanged; blobs the destination already has are not
sent again. Rules run by hand (run), every --schedule interval, or on each matching push
(--on-push, push rules). Every run is an execution with a result per artifact. System
administrators only: rules hold the remote's credentials.`,
		Example: `  berth admin replication create to-dr --push --remote https://dr.example --username robot --password-file pw \
      --repos 'team/**' --tags 'v*' --on-push
  berth admin replication create from-hub --pull --remote registry.example:5000 --repos library/alpine --schedule 1h --prefix hub/
  berth admin replication run 1
  berth admin replication executions 1`,
	}
	var push, pull, insecure, onPush, propagate, noReferrers, disabled bool
	var remote, user, pwFile, repos, tags, tagVersions, artifactTypes, platform, prefix, schedule, cron, bandwidth string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a replication rule",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if push == pull {
				return fmt.Errorf("give --push or --pull")
			}
			dir := "push"
			if pull {
				dir = "pull"
			}
			rm := map[string]any{"url": remote, "insecure": insecure}
			if user != "" {
				rm["username"] = user
			}
			if pwFile != "" {
				b, err := os.ReadFile(pwFile)
				if err != nil {
					return fmt.Errorf("--password-file: %w", err)
				}
				rm["password"] = strings.TrimRight(string(b), "\r\n")
			}
			body := map[string]any{"name": args[0], "direction": dir, "remote": rm, "repositories": splitFlag(repos), "tags": splitFlag(tags),
				"onPush": onPush, "propagateDeletes": propagate, "enabled": !disabled, "referrers": !noReferrers}
			if prefix != "" {
				body["destinationPrefix"] = prefix
			}
			if tagVersions != "" {
				body["tagVersions"] = tagVersions
			}
			if artifactTypes != "" {
				body["artifactTypes"] = splitFlag(artifactTypes)
			}
			if platform != "" {
				body["platform"] = platform
			}
			if schedule != "" {
				body["schedule"] = schedule
			}
			if cron != "" {
				body["cron"] = cron
			}
			if bandwidth != "" {
				var bw config.ByteSize
				if err := yaml.Unmarshal([]byte(bandwidth), &bw); err != nil || bw <= 0 {
					return fmt.Errorf("--bandwidth %q: want bytes per second such as 10MiB", bandwidth)
				}
				body["bandwidthLimit"] = int64(bw)
			}
			var r cliReplRule
			if err := c.send(cmd, http.MethodPost, "/replication/rules", nil, body, &r); err != nil {
				return err
			}
			return c.done("replication rule %d (%s) created", r.ID, r.Name)
		},
	}
	f := create.Flags()
	f.BoolVar(&push, "push", false, "copy local repositories to the remote")
	f.BoolVar(&pull, "pull", false, "copy the remote's repositories here")
	f.StringVar(&remote, "remote", "", "the other registry: host[:port], optionally with https:// or http://")
	f.BoolVar(&insecure, "insecure", false, "skip TLS verification of the remote (and allow plain http)")
	f.StringVar(&user, "username", "", "user name at the remote")
	f.StringVar(&pwFile, "password-file", "", "read the remote password from this file")
	f.StringVar(&repos, "repos", "", "comma-separated repository globs (team/**, team/app)")
	f.StringVar(&tags, "tags", "", "comma-separated tag globs (default: all)")
	f.StringVar(&platform, "platform", "", "copy only this platform (linux/arm64) of multi-platform images: its manifest, digest unchanged, under the tag")
	f.StringVar(&artifactTypes, "artifact-types", "", "comma-separated globs on artifact types (default: all): the artifactType, or the config media type (images application/vnd.oci.image.config.v1+json, charts application/vnd.cncf.helm.config.v1+json)")
	f.StringVar(&tagVersions, "tag-versions", "", "only tags that are semantic versions in this range (\">=1.2, <2\", \"~1.4\", \"^2\"; a leading v allowed)")
	f.StringVar(&prefix, "prefix", "", "put this path (ending in /) before each name at the destination")
	f.StringVar(&schedule, "schedule", "", "run every interval, e.g. 1h")
	f.StringVar(&cron, "cron", "", "run at the times of a five-field cron expression in UTC, e.g. '0 3 * * *'")
	f.StringVar(&bandwidth, "bandwidth", "", "bytes per second a run may exchange with the remote, e.g. 10MiB (default: unlimited)")
	f.BoolVar(&onPush, "on-push", false, "replicate each matching push within seconds (push rules)")
	f.BoolVar(&propagate, "propagate-deletes", false, "delete at the remote the tags and manifests deleted here (push rules)")
	f.BoolVar(&noReferrers, "no-referrers", false, "do not copy signatures, attestations and SBOMs")
	f.BoolVar(&disabled, "disabled", false, "create it disabled")

	list := &cobra.Command{
		Use:   "list",
		Short: "List replication rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var rs []cliReplRule
			if err := c.send(cmd, http.MethodGet, "/replication/rules", nil, nil, &rs); err != nil || c.json {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tDIRECTION\tREMOTE\tREPOSITORIES\tTAGS\tTRIGGERS\tENABLED")
			for _, r := range rs {
				trig := []string{"manual"}
				if r.Schedule != "" && r.Schedule != "0s" {
					trig = append(trig, "every "+r.Schedule)
				}
				if r.Cron != "" {
					trig = append(trig, "cron "+r.Cron)
				}
				if r.OnPush {
					trig = append(trig, "on push")
				}
				if r.PropagateDeletes {
					trig = append(trig, "deletes")
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Direction, r.Remote.URL, strings.Join(r.Repositories, ","),
					listOrAll(strings.Join(r.Tags, ",")), strings.Join(trig, ", "), yesNo(r.Enabled))
			}
			return tw.Flush()
		},
	}

	simple := func(use, short, method, rest string, body any, done string) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, err := replRulePath(args[0], rest)
				if err != nil {
					return err
				}
				if err := c.send(cmd, method, p, nil, body, nil); err != nil {
					return err
				}
				return c.done(done, args[0])
			},
		}
	}
	show := &cobra.Command{
		Use: "show ID", Short: "Show a replication rule", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := replRulePath(args[0], "")
			if err != nil {
				return err
			}
			var r cliReplRule
			if err := c.send(cmd, http.MethodGet, p, nil, nil, &r); err != nil {
				return err
			}
			return c.done("rule %d %s: %s %s\n  repositories: %s\n  tags:         %s\n  versions:     %s\n  types:        %s\n  platform:     %s\n  prefix:       %s\n  schedule:     %s\n  on push:      %s\n  enabled:      %s",
				r.ID, r.Name, r.Direction, r.Remote.URL, strings.Join(r.Repositories, ","), listOrAll(strings.Join(r.Tags, ",")), listOrAll(r.TagVersions), listOrAll(strings.Join(r.ArtifactTypes, ",")), listOrAll(r.Platform),
				orDash(r.DestinationPrefix), orDash(r.Schedule), yesNo(r.OnPush), yesNo(r.Enabled))
		},
	}
	run := simple("run", "Run a rule now (queued; see executions)", http.MethodPost, "/run", nil, "replication rule %s queued")
	del := simple("delete", "Delete a rule and its history", http.MethodDelete, "", nil, "replication rule %s deleted")
	enable := simple("enable", "Enable a rule", http.MethodPatch, "", map[string]bool{"enabled": true}, "replication rule %s enabled")
	disable := simple("disable", "Disable a rule", http.MethodPatch, "", map[string]bool{"enabled": false}, "replication rule %s disabled")

	var n int
	executions := &cobra.Command{
		Use: "executions ID", Short: "List a rule's executions, newest first", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := replRulePath(args[0], "/executions")
			if err != nil {
				return err
			}
			var es []cliReplExecution
			if err := c.send(cmd, http.MethodGet, p, url.Values{"n": {strconv.Itoa(n)}}, nil, &es); err != nil || c.json {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCAUSE\tSTATE\tSTARTED\tFINISHED\tCOPIED\tFAILED\tBYTES\tERROR")
			for _, e := range es {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", e.ID, e.Cause, e.State, stamp(e.Started), stamp(e.Finished), e.Copied, e.Failed, humanBytes(e.Bytes), orDash(e.Error))
			}
			return tw.Flush()
		},
	}
	executions.Flags().IntVarP(&n, "number", "n", 20, "how many (1-1000)")
	execution := &cobra.Command{
		Use: "execution EXECUTION", Short: "Show an execution with its per-artifact results", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if v, err := strconv.ParseInt(args[0], 10, 64); err != nil || v <= 0 {
				return fmt.Errorf("%q: an execution id is a positive number", args[0])
			}
			var e cliReplExecution
			if err := c.send(cmd, http.MethodGet, "/replication/executions/"+args[0], nil, nil, &e); err != nil || c.json {
				return err
			}
			fmt.Fprintf(c.out, "execution %d (%s): %s, %d copied, %d failed\n", e.ID, e.Cause, e.State, e.Copied, e.Failed)
			tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tDESTINATION\tDIGEST\tSTATE\tREFERRERS\tBYTES\tERROR")
			for _, it := range e.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", it.Source, it.Destination, orDash(it.Digest), it.State, it.Referrers, humanBytes(it.Bytes), orDash(it.Error))
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(create, list, show, run, enable, disable, del, executions, execution)
	return cmd
}
