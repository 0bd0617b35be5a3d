package main

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

// cliSecretCmd is "berth admin user cli-secret NAME": a system administrator makes,
// rotates or revokes the CLI secret of an OIDC user (users see and rotate their own in
// the web UI).
func (c *adminClient) cliSecretCmd() *cobra.Command {
	var revoke bool
	cmd := &cobra.Command{
		Use:   "cli-secret NAME",
		Short: "Make or rotate (or --revoke) the CLI secret of a user who logs in through OIDC",
		Long: `Make or rotate the CLI secret of a user who logs in through OIDC: the password of
docker login, crane, helm and the token endpoint for that user. It is printed once; the
previous secret stops working (on other replicas within auth.basicCacheTTL).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/users/" + url.PathEscape(args[0]) + "/cli-secret"
			if revoke {
				if err := c.send(cmd, http.MethodDelete, path, nil, nil, nil); err != nil {
					return err
				}
				return c.done("revoked the CLI secret of %s", args[0])
			}
			var out struct {
				User   string `json:"user"`
				Secret string `json:"secret"`
			}
			if err := c.send(cmd, http.MethodPost, path, nil, nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.errOut, "WARNING: this is the only time the CLI secret of %s is shown: hand it over now.\n", out.User)
			if c.json {
				return nil
			}
			_, err := fmt.Fprintf(c.out, "username: %s\nsecret:   %s\n", out.User, out.Secret)
			return err
		},
	}
	cmd.Flags().BoolVar(&revoke, "revoke", false, "delete the secret instead of making a new one")
	return cmd
}
