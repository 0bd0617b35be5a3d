package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/cric"
)

func loginCmd(f *flags) *cobra.Command {
	var user, pass string
	var stdin bool
	cmd := &cobra.Command{
		Use:   "login REGISTRY",
		Short: "Check credentials against a registry and store them for docker-compatible tools",
		Long: `Log in to a registry. The credentials are checked against the registry first and only
stored if they work: in $DOCKER_CONFIG/config.json (default ~/.docker/config.json), or in
the credential helper that file names for the registry (credHelpers) or for every
registry (credsStore). docker, crane, skopeo, helm, oras and cosign read them from there.`,
		Example: `  cric login registry.example.com -u me --password-stdin < token.txt
  echo "$PASSWORD" | cric login 127.0.0.1:5000 -u ci --password-stdin
  cric login docker.io -u me          # prompts for the password`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if stdin && pass != "" {
				return cric.Usagef("--password and --password-stdin exclude each other")
			}
			if user == "" {
				if !cric.IsTerminal(os.Stdin) {
					return cric.Usagef("login needs --username")
				}
				fmt.Fprint(cmd.ErrOrStderr(), "Username: ")
				if _, err := fmt.Fscanln(os.Stdin, &user); err != nil {
					return cric.Usagef("login needs a username")
				}
			}
			if pass == "" {
				if !stdin && !cric.IsTerminal(os.Stdin) {
					return cric.Usagef("give the password with --password-stdin (or -p)")
				}
				if pass, err = cric.ReadSecret(os.Stdin, cmd.ErrOrStderr(), "Password: "); err != nil {
					return err
				}
			} else if !f.opts.Quiet {
				fmt.Fprintln(cmd.ErrOrStderr(), "cric: warning: a password on the command line ends up in shell history; prefer --password-stdin")
			}
			res, err := c.Login(cmd.Context(), a[0], user, pass)
			if err != nil {
				return err
			}
			if c.Out().JSONMode() {
				return c.Out().JSON(res)
			}
			if !res.Verified {
				fmt.Fprintf(cmd.ErrOrStderr(), "cric: warning: %s asks for no credentials, so they could not be checked\n", res.Registry)
			}
			where := res.StoredIn
			if res.Unencrypted {
				where += ", unencrypted: set credsStore or credHelpers there to use a credential helper"
			}
			c.Out().Linef("Login succeeded: %s (credentials in %s)", res.Registry, where)
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&pass, "password", "p", "", "password or token (prefer --password-stdin)")
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password or token from standard input")
	return cmd
}

func logoutCmd(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "Remove a registry's stored credentials",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			where, err := c.Logout(a[0])
			if err != nil {
				return err
			}
			c.Out().Linef("Removed credentials for %s from %s", a[0], where)
			return nil
		},
	}
}
