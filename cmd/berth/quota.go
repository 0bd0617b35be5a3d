package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/berth-registry/berth/internal/config"
)

// cliQuota is a project's quota and usage as the admin API answers it.
type cliQuota struct {
	Project    string     `json:"project"`
	QuotaBytes *int64     `json:"quotaBytes"`
	UsageBytes int64      `json:"usageBytes"`
	UsageBlobs int64      `json:"usageBlobs"`
	UpdatedAt  *time.Time `json:"updatedAt"`
}

// quotaText is a quota for a table: "unlimited" or its size (humanBytes, gc.go).
func quotaText(q *int64) string {
	if q == nil {
		return "unlimited"
	}
	return humanBytes(*q)
}

// parseQuota reads a quota argument: a byte size (10GiB, 500MB, 1048576) or unlimited.
func parseQuota(s string) (*int64, error) {
	switch strings.ToLower(s) {
	case "unlimited", "none":
		return nil, nil
	}
	var b config.ByteSize
	if err := yaml.Unmarshal([]byte(s), &b); err != nil {
		return nil, fmt.Errorf("%q: want a size such as 10GiB, 500MB or 1048576, or unlimited", s)
	}
	n := int64(b)
	return &n, nil
}

func (c *adminClient) quotaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Show or set a project's byte quota (each blob counts once per project)",
		Long: `A project's usage is the bytes of the distinct blobs its repositories hold, each counted
once however many repositories and manifests share it. A push that would take the project
past its quota is refused with 403 DENIED. Mirrored namespaces have no quota.`,
		Example: `  berth admin project quota set team 50GiB
  berth admin project quota show team
  berth admin project quota set team unlimited`,
	}
	show := &cobra.Command{
		Use:   "show PROJECT",
		Short: "Show a project's quota and usage",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var q cliQuota
			if err := c.send(cmd, http.MethodGet, "/projects/"+url.PathEscape(args[0])+"/quota", nil, nil, &q); err != nil {
				return err
			}
			return c.done("project %s: usage %s in %d blobs, quota %s", q.Project, humanBytes(q.UsageBytes), q.UsageBlobs, quotaText(q.QuotaBytes))
		},
	}
	set := &cobra.Command{
		Use:   "set PROJECT SIZE|unlimited",
		Short: "Set a project's quota (system administrators); below the usage, pushes adding bytes are refused",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			limit, err := parseQuota(args[1])
			if err != nil {
				return err
			}
			var q cliQuota
			if err := c.send(cmd, http.MethodPut, "/projects/"+url.PathEscape(args[0])+"/quota", nil, map[string]any{"quotaBytes": limit}, &q); err != nil {
				return err
			}
			return c.done("project %s: quota %s, usage %s", q.Project, quotaText(q.QuotaBytes), humanBytes(q.UsageBytes))
		},
	}
	cmd.AddCommand(show, set)
	return cmd
}
