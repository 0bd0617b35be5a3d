// Command berth is the Berth container registry: the server and its admin commands.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/buildinfo"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/server"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}

type globalFlags struct {
	configFile string
	addr       string
	data       string
}

// load reads the configuration; flags win over the file and the environment, so they
// are applied as the last environment entries.
func (g *globalFlags) load() (config.Config, error) {
	environ := os.Environ()
	if g.addr != "" {
		environ = append(environ, "BERTH_ADDR="+g.addr)
	}
	if g.data != "" {
		environ = append(environ, "BERTH_DATA="+g.data)
	}
	return config.Load(g.configFile, environ)
}

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

func rootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Berth: an OCI container registry in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.configFile, "config", "", "YAML configuration file (BERTH_* environment variables override it)")
	root.PersistentFlags().StringVar(&g.addr, "addr", "", "listen address HOST:PORT (default :5000)")
	root.PersistentFlags().StringVar(&g.data, "data", "", "data directory for the embedded database and blobs (default ./data)")

	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run the registry",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			log := newLogger(cfg)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// Listen first: a taken port must not leave a fresh data directory behind.
			ln, err := server.Listen(cfg.Addr)
			if err != nil {
				return err
			}
			defer ln.Close()
			var metricsLn net.Listener
			if cfg.Metrics.Addr != "" {
				if metricsLn, err = server.Listen(cfg.Metrics.Addr); err != nil {
					return fmt.Errorf("metrics.addr: %w", err)
				}
				defer metricsLn.Close()
			}
			srv, err := server.New(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer srv.Close()
			if metricsLn != nil {
				go func() {
					if err := srv.ServeMetrics(ctx, metricsLn); err != nil {
						log.Error("metrics listener", "err", err)
					}
				}()
			}
			return srv.Serve(ctx, ln)
		},
	}

	configCmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	configCmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print it with secrets redacted",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), cfg.Redacted())
			fmt.Fprintln(cmd.ErrOrStderr(), "FIPS 140-3 mode:", config.FIPSStatus())
			fmt.Fprintln(cmd.ErrOrStderr(), "configuration is valid")
			return nil
		},
	})

	repoCmd := &cobra.Command{Use: "repo", Short: "Administer repositories"}
	repoCmd.AddCommand(&cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a repository with all its tags, manifests and blob links (offline: opens the database)",
		Long: "Deletes the repository's rows directly in the database named by the configuration. On a running\n" +
			"server use the admin API instead: DELETE /api/v1/projects/{project}/repositories/{repository}\n" +
			"(the name inside the project, / escaped as %2F), which checks the delete right and is audited.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := oci.ValidateName(args[0]); err != nil {
				return err
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			m, b, err := server.OpenStores(ctx, cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			reg := registry.New(m, b, registry.Options{}, newLogger(cfg))
			if err := reg.DeleteRepository(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted repository %s\n", args[0])
			return nil
		},
	})
	root.AddCommand(serve, configCmd, repoCmd, mirrorCmd(g), adminCmd(), gcCmd(g), tlsCmd(g), buildinfo.Command("berth"), healthcheckCmd(g))
	return root
}
