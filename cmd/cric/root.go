package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/buildinfo"
	"github.com/berth-registry/berth/internal/cric"
)

const rootLong = `cric is a client for any OCI registry: Docker Hub, registry.k8s.io, ghcr.io, cloud
registries, Harbor, Distribution, Berth. It logs in the way docker does (config.json and
credential helpers, shared with docker, crane, skopeo, helm, oras and cosign), copies
images between registries with every platform and digest intact, and carries many
images across an air gap in one bundle whose shared layers are stored once.

Images are written as docker does: nginx, ghcr.io/org/app:v1, host:5000/team/app@sha256:…
Local images live in OCI image layouts: a directory, or a tar of one (PATH, PATH:TAG).

Exit codes: 0 ok, 1 error, 2 usage, 3 unauthorized or denied, 4 not found,
5 network (unreachable, TLS, http/https mismatch), 6 content did not match its digest.`

const rootExample = `  cric login registry.example.com -u me --password-stdin < token.txt
  cric cp docker.io/library/nginx:1.27 registry.example.com/mirror/nginx:1.27
  cric cp --referrers ghcr.io/org/app:v1 registry.example.com/org/app:v1
  cric pull registry.example.com/team/app:v1.2 -o app.tar
  cric save --from-file images.txt -o bundle.tar      # on the connected side
  cric load bundle.tar --to registry.internal/mirror   # on the air-gapped side
  cric inspect registry.example.com/team/app:v1.2`

// flags are the global flags.
type flags struct {
	opts cric.Options
}

func (f *flags) client(cmd *cobra.Command) (*cric.Client, error) {
	f.opts.Stdout, f.opts.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
	return cric.New(f.opts)
}

func rootCmd() *cobra.Command {
	f := &flags{}
	root := &cobra.Command{
		Use:           "cric",
		Short:         "A client for any OCI registry: login, pull, push, copy, save/load bundles, inspect",
		Long:          rootLong,
		Example:       rootExample,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       cric.Version(),
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cric.Usagef("%v", err) })
	pf := root.PersistentFlags()
	pf.StringSliceVar(&f.opts.Insecure, "insecure", nil,
		"skip TLS verification (and allow plain http) for --insecure=HOST[,HOST], or every registry when given alone")
	pf.Lookup("insecure").NoOptDefVal = "*"
	pf.StringSliceVar(&f.opts.PlainHTTP, "plain-http", nil,
		"speak plain http to --plain-http=HOST[,HOST], or every registry when given alone (loopback hosts need not be listed)")
	pf.Lookup("plain-http").NoOptDefVal = "*"
	pf.IntVarP(&f.opts.Jobs, "jobs", "j", 8, "blobs transferred in parallel")
	pf.IntVar(&f.opts.Retries, "retries", 3, "retries of requests failing with 408, 429, 5xx or a network error (exponential backoff)")
	pf.BoolVar(&f.opts.JSON, "json", false, "machine-readable JSON output")
	pf.BoolVarP(&f.opts.Quiet, "quiet", "q", false, "no progress output, only results and errors")
	pf.StringVar(&f.opts.Progress, "progress", "auto", "progress display: auto (bars on a terminal, lines otherwise), bars, plain or none")
	pf.BoolVar(&f.opts.Debug, "debug", false, "log every HTTP request and response")

	root.AddGroup(
		&cobra.Group{ID: "auth", Title: "Credentials:"},
		&cobra.Group{ID: "move", Title: "Moving images:"},
		&cobra.Group{ID: "look", Title: "Looking and managing:"},
	)
	for _, c := range []*cobra.Command{loginCmd(f), logoutCmd(f)} {
		c.GroupID = "auth"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{pullCmd(f), pushCmd(f), cpCmd(f), saveCmd(f), loadCmd(f), modelCmd(f)} {
		c.GroupID = "move"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{tagsCmd(f), catalogCmd(f), inspectCmd(f), digestCmd(f), rmCmd(f), tagCmd(f)} {
		c.GroupID = "look"
		root.AddCommand(c)
	}
	root.AddCommand(buildinfo.Command("cric"))
	return root
}

// args checks the number of positional arguments, as a usage error.
func args(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) < min || (max >= 0 && len(a) > max) {
			want := fmt.Sprintf("%d", min)
			switch {
			case max < 0:
				want = fmt.Sprintf("at least %d", min)
			case max != min:
				want = fmt.Sprintf("%d to %d", min, max)
			}
			return cric.Usagef("%s takes %s argument(s), got %d (usage: %s)", cmd.Name(), want, len(a), cmd.UseLine())
		}
		return nil
	}
}

func platformFlag(cmd *cobra.Command, p *string, what string) {
	cmd.Flags().StringVar(p, "platform", "", what+" (os/arch[/variant], e.g. linux/arm64)")
}
