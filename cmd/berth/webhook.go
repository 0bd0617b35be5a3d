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
	"time"

	"github.com/spf13/cobra"
)

// ---------------------------------------------------------------- webhooks
//
// berth admin webhook …: a client of /api/v1/webhooks and /api/v1/projects/{project}/webhooks
// (package events delivers on the server).

type cliWebhook struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	Project      string    `json:"project"`
	URL          string    `json:"url"`
	Format       string    `json:"format"`
	Events       []string  `json:"events"`
	Repositories []string  `json:"repositories"`
	Enabled      bool      `json:"enabled"`
	CreatedBy    string    `json:"createdBy"`
	CreatedAt    time.Time `json:"createdAt"`
	Secret       string    `json:"secret"`
}

type cliAttempt struct {
	At         time.Time `json:"at"`
	Status     int       `json:"status"`
	Error      string    `json:"error"`
	DurationMS int64     `json:"durationMs"`
}

type cliDelivery struct {
	ID          int64        `json:"id"`
	EventID     string       `json:"eventId"`
	EventType   string       `json:"eventType"`
	Repository  string       `json:"repository"`
	State       string       `json:"state"`
	Attempts    int          `json:"attempts"`
	NextAttempt time.Time    `json:"nextAttempt"`
	LastStatus  int          `json:"lastStatus"`
	LastError   string       `json:"lastError"`
	ReplayOf    int64        `json:"replayOf"`
	CreatedAt   time.Time    `json:"createdAt"`
	DoneAt      time.Time    `json:"doneAt"`
	History     []cliAttempt `json:"history"`
}

func webhookPath(id string, rest ...string) (string, error) {
	if n, err := strconv.ParseInt(id, 10, 64); err != nil || n <= 0 {
		return "", fmt.Errorf("%q: a webhook id is a positive number (berth admin webhook list)", id)
	}
	return "/webhooks/" + id + strings.Join(rest, ""), nil
}

func listOrAll(s string) string {
	if s == "" {
		return "all"
	}
	return s
}

func splitFlag(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (c *adminClient) printWebhookSecret(w cliWebhook, verb string) error {
	if c.json {
		return nil
	}
	_, err := fmt.Fprintf(c.out, "webhook %d (%s) %s\nsigning secret (shown once; receivers verify webhook-signature with it):\n%s\n", w.ID, w.Name, verb, w.Secret)
	return err
}

func (c *adminClient) webhookCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Manage webhook subscriptions, their delivery history and replays",
		Long: `A webhook receives the events it filters for: artifact.pushed, artifact.deleted,
tag.deleted (and artifact.pulled with events.pullSample, verification.failed, scan.completed,
replication.completed/failed, quota.exceeded where they are emitted), as CloudEvents 1.0 JSON (default) or in Harbor's webhook shape. Each delivery is
signed per Standard Webhooks: headers webhook-id (the event id, the same on every retry),
webhook-timestamp and webhook-signature "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>",
the key being the base64 after "whsec_" in the secret.

A failing receiver is retried with exponential backoff for events.webhooks.retryFor; the
events of one repository arrive in order (a failing one holds back the later ones). System
administrators manage system-wide webhooks (every project's events); project
administrators their project's (--project).`,
		Example: `  berth admin webhook create ci https://ci.example/hooks/berth --project team --events artifact.pushed
  berth admin webhook list
  berth admin webhook deliveries 3 --state failed
  berth admin webhook replay 3 --failed`,
	}
	var project, format, evs, repos, secretFile string
	var disabled bool
	create := &cobra.Command{
		Use:   "create NAME URL",
		Short: "Create a webhook (system-wide, or a project's with --project) and print its secret",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"name": args[0], "url": args[1], "events": splitFlag(evs), "repositories": splitFlag(repos), "enabled": !disabled}
			if format != "" {
				body["format"] = format
			}
			if secretFile != "" {
				b, err := os.ReadFile(secretFile)
				if err != nil {
					return fmt.Errorf("--secret-file: %w", err)
				}
				body["secret"] = strings.TrimRight(string(b), "\r\n")
			}
			path := "/webhooks"
			if project != "" {
				path = "/projects/" + url.PathEscape(project) + "/webhooks"
			}
			var w cliWebhook
			if err := c.send(cmd, http.MethodPost, path, nil, body, &w); err != nil {
				return err
			}
			return c.printWebhookSecret(w, "created")
		},
	}
	create.Flags().StringVar(&project, "project", "", "a project's webhook (default: system-wide)")
	create.Flags().StringVar(&format, "format", "", "payload format: cloudevents (default) or harbor")
	create.Flags().StringVar(&evs, "events", "", "comma-separated event types (default: all)")
	create.Flags().StringVar(&repos, "repos", "", "comma-separated repository globs, e.g. team/*,team/prod/** (default: all)")
	create.Flags().StringVar(&secretFile, "secret-file", "", "read the signing secret from this file (default: generated)")
	create.Flags().BoolVar(&disabled, "disabled", false, "create it disabled")

	var listProject string
	list := &cobra.Command{
		Use:   "list",
		Short: "List webhooks (all, for system administrators; a project's with --project)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/webhooks"
			if listProject != "" {
				path = "/projects/" + url.PathEscape(listProject) + "/webhooks"
			}
			var ws []cliWebhook
			if err := c.send(cmd, http.MethodGet, path, nil, nil, &ws); err != nil || c.json {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tPROJECT\tFORMAT\tENABLED\tEVENTS\tREPOSITORIES\tURL")
			for _, w := range ws {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", w.ID, w.Name, orDash(w.Project), w.Format, yesNo(w.Enabled),
					listOrAll(strings.Join(w.Events, ",")), listOrAll(strings.Join(w.Repositories, ",")), w.URL)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&listProject, "project", "", "only this project's webhooks")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a webhook",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := webhookPath(args[0])
			if err != nil {
				return err
			}
			var w cliWebhook
			if err := c.send(cmd, http.MethodGet, path, nil, nil, &w); err != nil {
				return err
			}
			return c.done("webhook %d %s\n  project:      %s\n  url:          %s\n  format:       %s\n  enabled:      %s\n  events:       %s\n  repositories: %s\n  created:      %s by %s",
				w.ID, w.Name, orDash(w.Project), w.URL, w.Format, yesNo(w.Enabled), listOrAll(strings.Join(w.Events, ",")),
				listOrAll(strings.Join(w.Repositories, ",")), stamp(w.CreatedAt), orDash(w.CreatedBy))
		},
	}

	var uURL, uFormat, uEvents, uRepos string
	var enable, disable, rotate bool
	update := &cobra.Command{
		Use:   "update ID",
		Short: "Change a webhook's URL, format, filters or state, or rotate its secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := webhookPath(args[0])
			if err != nil {
				return err
			}
			p := map[string]any{}
			f := cmd.Flags()
			if f.Changed("url") {
				p["url"] = uURL
			}
			if f.Changed("format") {
				p["format"] = uFormat
			}
			if f.Changed("events") {
				p["events"] = splitFlag(uEvents)
			}
			if f.Changed("repos") {
				p["repositories"] = splitFlag(uRepos)
			}
			if enable && disable {
				return fmt.Errorf("--enable and --disable exclude each other")
			}
			if enable || disable {
				p["enabled"] = enable
			}
			if rotate {
				p["rotateSecret"] = true
			}
			if len(p) == 0 {
				return fmt.Errorf("nothing to change: give --url, --format, --events, --repos, --enable, --disable or --rotate-secret")
			}
			var w cliWebhook
			if err := c.send(cmd, http.MethodPatch, path, nil, p, &w); err != nil {
				return err
			}
			if rotate {
				return c.printWebhookSecret(w, "updated")
			}
			return c.done("webhook %d (%s) updated", w.ID, w.Name)
		},
	}
	update.Flags().StringVar(&uURL, "url", "", "new target URL")
	update.Flags().StringVar(&uFormat, "format", "", "cloudevents or harbor")
	update.Flags().StringVar(&uEvents, "events", "", "comma-separated event types (empty: all)")
	update.Flags().StringVar(&uRepos, "repos", "", "comma-separated repository globs (empty: all)")
	update.Flags().BoolVar(&enable, "enable", false, "send deliveries again")
	update.Flags().BoolVar(&disable, "disable", false, "stop sending (pending deliveries are skipped)")
	update.Flags().BoolVar(&rotate, "rotate-secret", false, "replace the signing secret and print the new one")

	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a webhook and its delivery history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := webhookPath(args[0])
			if err != nil {
				return err
			}
			if err := c.send(cmd, http.MethodDelete, path, nil, nil, nil); err != nil {
				return err
			}
			return c.done("webhook %s deleted", args[0])
		},
	}

	ping := &cobra.Command{
		Use:   "ping ID",
		Short: "Send a ping event to the webhook (see it with deliveries)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := webhookPath(args[0], "/ping")
			if err != nil {
				return err
			}
			var out struct {
				Delivery int64 `json:"delivery"`
			}
			if err := c.send(cmd, http.MethodPost, path, nil, nil, &out); err != nil {
				return err
			}
			return c.done("ping queued as delivery %d", out.Delivery)
		},
	}

	var state string
	var n int
	deliveries := &cobra.Command{
		Use:   "deliveries ID",
		Short: "List a webhook's deliveries, newest first, with their state and last status code",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := webhookPath(args[0], "/deliveries")
			if err != nil {
				return err
			}
			q := url.Values{"n": {strconv.Itoa(n)}}
			if state != "" {
				q.Set("state", state)
			}
			var ds []cliDelivery
			if err := c.send(cmd, http.MethodGet, path, q, nil, &ds); err != nil || c.json {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tEVENT\tREPOSITORY\tSTATE\tATTEMPTS\tSTATUS\tCREATED\tNEXT/DONE\tLAST ERROR")
			for _, d := range ds {
				when := stamp(d.DoneAt)
				if d.State == "pending" {
					when = stamp(d.NextAttempt)
				}
				replay := ""
				if d.ReplayOf != 0 {
					replay = fmt.Sprintf(" (replay of %d)", d.ReplayOf)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s%s\t%d\t%d\t%s\t%s\t%s\n", d.ID, d.EventType, orDash(d.Repository), d.State, replay,
					d.Attempts, d.LastStatus, stamp(d.CreatedAt), when, orDash(d.LastError))
			}
			return tw.Flush()
		},
	}
	deliveries.Flags().StringVar(&state, "state", "", "only pending, delivered, failed or skipped")
	deliveries.Flags().IntVarP(&n, "number", "n", 50, "how many (1-1000)")

	delivery := &cobra.Command{
		Use:   "delivery ID DELIVERY",
		Short: "Show one delivery with every attempt (time, status code, error, duration)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := webhookPath(args[0], "/deliveries/", url.PathEscape(args[1]))
			if err != nil {
				return err
			}
			var d cliDelivery
			if err := c.send(cmd, http.MethodGet, path, nil, nil, &d); err != nil || c.json {
				return err
			}
			fmt.Fprintf(c.out, "delivery %d: %s %s of %s, %s after %d attempt(s)\n", d.ID, d.EventType, d.EventID, orDash(d.Repository), d.State, d.Attempts)
			tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tSTATUS\tDURATION\tERROR")
			for _, a := range d.History {
				fmt.Fprintf(tw, "%s\t%d\t%dms\t%s\n", stamp(a.At), a.Status, a.DurationMS, orDash(a.Error))
			}
			return tw.Flush()
		},
	}

	var failed bool
	replay := &cobra.Command{
		Use:   "replay ID [DELIVERY...]",
		Short: "Send deliveries again (or every failed one with --failed), as new deliveries",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if failed == (len(args) > 1) {
				return fmt.Errorf("give delivery ids or --failed")
			}
			var ids []int64
			var paths []string
			if failed {
				p, err := webhookPath(args[0], "/replay")
				if err != nil {
					return err
				}
				paths = append(paths, p)
			}
			for _, d := range args[1:] {
				p, err := webhookPath(args[0], "/deliveries/", url.PathEscape(d), "/replay")
				if err != nil {
					return err
				}
				paths = append(paths, p)
			}
			for _, p := range paths {
				var out struct {
					Deliveries []int64 `json:"deliveries"`
				}
				data, _, err := c.call(cmd.Context(), http.MethodPost, p, nil, nil)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(data, &out); err != nil {
					return fmt.Errorf("POST %s: decoding the answer: %w", p, err)
				}
				ids = append(ids, out.Deliveries...)
			}
			if c.json {
				b, _ := json.Marshal(map[string][]int64{"deliveries": ids})
				_, err := fmt.Fprintf(c.out, "%s\n", b)
				return err
			}
			return c.done("%d delivery(ies) queued again: %v", len(ids), ids)
		},
	}
	replay.Flags().BoolVar(&failed, "failed", false, "every failed delivery of the webhook")

	cmd.AddCommand(create, list, show, update, del, ping, deliveries, delivery, replay)
	return cmd
}
