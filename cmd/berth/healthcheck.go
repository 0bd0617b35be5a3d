package main

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// healthcheckCmd probes a running Berth's /readyz: the image has no shell and no curl,
// so `berth healthcheck` is what a container engine's health check runs
// (podman run --health-cmd "berth healthcheck").
func healthcheckCmd(g *globalFlags) *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the Berth at --url (default: the configured address on loopback) answers /readyz with 200",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				cfg, err := g.load()
				if err != nil {
					return err
				}
				host, port, err := net.SplitHostPort(cfg.Addr)
				if err != nil {
					return fmt.Errorf("addr %q: %w", cfg.Addr, err)
				}
				if host == "" || host == "0.0.0.0" || host == "::" {
					host = "127.0.0.1"
				}
				if cfg.TLS.On() {
					// The certificate names the public host, not loopback.
					return fmt.Errorf("TLS is on: pass --url https://NAME:%s/readyz", port)
				}
				url = "http://" + net.JoinHostPort(host, port) + "/readyz"
			}
			c := &http.Client{Timeout: 5 * time.Second}
			resp, err := c.Get(url)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck: %s: %s", url, resp.Status)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "URL to probe (default http://127.0.0.1:<port of addr>/readyz)")
	return cmd
}
