package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/proxy"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/server"
)

// gcEnv is what the gc commands work with: the stores and a collector over them.
type gcEnv struct {
	cfg   config.Config
	meta  *meta.Store
	store *gc.Store
	queue *jobs.Store
	col   *gc.Collector
	log   *slog.Logger
}

func openGC(ctx context.Context, g *globalFlags) (*gcEnv, error) {
	cfg, err := g.load()
	if err != nil {
		return nil, err
	}
	log := newLogger(cfg)
	m, b, err := server.OpenStores(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var mirror *proxy.Mirror
	if len(cfg.Mirror.Upstreams) > 0 {
		if mirror, err = server.NewMirror(cfg, m, registry.New(m, b, registry.Options{}, log), log); err != nil {
			m.Close()
			return nil, err
		}
	}
	col, queue := server.NewGC(cfg, m, b, mirror, nil, log)
	return &gcEnv{cfg: cfg, meta: m, store: gc.NewStore(m.DB()), queue: queue, col: col, log: log}, nil
}

func gcCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "gc", Short: "Online garbage collection: status, runs, untagged policies"}
	cmd.AddCommand(gcStatusCmd(g), gcRunCmd(g), gcPolicyCmd(g))
	return cmd
}

func gcStatusCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the review queues, what GC deleted so far and recent failures",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			e, err := openGC(ctx, g)
			if err != nil {
				return err
			}
			defer e.meta.Close()
			stats, err := e.queue.Stats(ctx)
			if err != nil {
				return err
			}
			tot, err := e.store.Totals(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "review after: %s (gc.reviewAfter), workers per replica: %d, enabled: %v\n",
				time.Duration(e.cfg.GC.ReviewAfter), e.cfg.GC.Workers, e.cfg.GC.Enabled)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tQUEUED\tRUNNING\tFAILED\tDONE\tOLDEST DUE")
			for _, k := range stats {
				if !strings.HasPrefix(k.Kind, "gc.") {
					continue
				}
				lag := "-"
				if !k.OldestDue.IsZero() {
					lag = time.Since(k.OldestDue).Round(time.Second).String() + " ago"
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", k.Kind, k.States[jobs.Queued], k.States[jobs.Running], k.States[jobs.Failed], k.States[jobs.Done], lag)
			}
			tw.Flush()
			last := "never"
			if !tot.LastDelete.IsZero() {
				last = tot.LastDelete.Format(time.RFC3339)
			}
			fmt.Fprintf(out, "deleted so far: %d manifests, %d blob links, %d blobs, %s (last %s)\n",
				tot.Manifests, tot.Links, tot.Blobs, humanBytes(tot.Bytes), last)
			failed, err := e.queue.Failures(ctx, 10)
			if err != nil {
				return err
			}
			for _, f := range failed {
				if strings.HasPrefix(f.Kind, "gc.") {
					fmt.Fprintf(out, "failed: %s %s after %d attempts: %s\n", f.Kind, f.Key, f.Attempts, f.LastError)
				}
			}
			return nil
		},
	}
}

func gcRunCmd(g *globalFlags) *cobra.Command {
	var dryRun, list bool
	c := &cobra.Command{
		Use:   "run",
		Short: "Review everything now (sparing what is younger than gc.reviewAfter) and sweep orphaned bytes",
		Long: "Queues a review of every manifest, blob link and blob, works the queue to the end in this process " +
			"(running servers take part), then sweeps stored bytes no row names. With --dry-run nothing changes: " +
			"it prints what would go and how many bytes.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			e, err := openGC(ctx, g)
			if err != nil {
				return err
			}
			defer e.meta.Close()
			out := cmd.OutOrStdout()
			if dryRun {
				return gcDryRun(ctx, e, out, list)
			}
			before, err := e.store.Totals(ctx)
			if err != nil {
				return err
			}
			start := time.Now()
			runner := jobs.NewRunner(e.queue, jobs.Options{Concurrency: e.cfg.GC.Workers}, nil, e.log)
			e.col.Register(runner)
			// What a deletion frees is queued for review_after later by the triggers; a
			// run reviews it now too, round after round, until a round deletes nothing.
			after := before
			for round := 0; round < 20; round++ {
				prev := after
				if _, err := e.store.EnqueueAll(ctx, e.queue); err != nil {
					return err
				}
				if err := runner.Drain(ctx, gc.Kinds...); err != nil {
					return err
				}
				if after, err = e.store.Totals(ctx); err != nil {
					return err
				}
				if after == prev {
					break
				}
			}
			sw, err := e.col.Sweep(ctx, false)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "deleted %d manifests, %d blob links, %d blobs (%s) and %d orphaned files (%s) in %s\n",
				after.Manifests-before.Manifests, after.Links-before.Links, after.Blobs-before.Blobs, humanBytes(after.Bytes-before.Bytes),
				sw.Files, humanBytes(sw.Bytes), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be deleted, change nothing")
	c.Flags().BoolVar(&list, "list", false, "with --dry-run: list each manifest and blob")
	return c
}

func gcDryRun(ctx context.Context, e *gcEnv, out io.Writer, list bool) error {
	plan, err := e.store.Plan(ctx, gc.Rules{ReviewAfter: time.Duration(e.cfg.GC.ReviewAfter), Mirrored: e.col.Mirrored})
	if err != nil {
		return err
	}
	sw, err := e.col.Sweep(ctx, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "would delete %d manifests, %d blob links, %d blobs (%s) and %d orphaned files (%s)\n",
		len(plan.Manifests), plan.Links, len(plan.Blobs), humanBytes(plan.Bytes), sw.Files, humanBytes(sw.Bytes))
	if list {
		for _, m := range plan.Manifests {
			fmt.Fprintln(out, "manifest", m)
		}
		for _, b := range plan.Blobs {
			fmt.Fprintln(out, "blob", b)
		}
	}
	return nil
}

func gcPolicyCmd(g *globalFlags) *cobra.Command {
	c := &cobra.Command{Use: "policy", Short: "Per-project rules for untagged manifests"}
	var untagged, pulled time.Duration
	set := &cobra.Command{
		Use:   "set PROJECT",
		Short: "Keep a project's untagged manifests for a while after push, or while they are pulled (both 0: remove the policy)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openGC(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer e.meta.Close()
			p := gc.Policy{Project: args[0], UntaggedAfter: untagged, KeepPulledWithin: pulled}
			if err := e.store.SetPolicy(cmd.Context(), p); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "project %s: untagged manifests kept %s after push and while pulled within %s\n", p.Project, untagged, pulled)
			return nil
		},
	}
	set.Flags().DurationVar(&untagged, "untagged-after", 0, "keep untagged manifests this long after their push (e.g. 720h)")
	set.Flags().DurationVar(&pulled, "keep-pulled-within", 0, "keep untagged manifests pulled within this long (digest-pinned deployments)")
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List the projects' untagged policies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := openGC(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer e.meta.Close()
			ps, err := e.store.Policies(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROJECT\tUNTAGGED AFTER\tKEEP PULLED WITHIN")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Project, p.UntaggedAfter, p.KeepPulledWithin)
			}
			return tw.Flush()
		},
	}
	c.AddCommand(set, listCmd)
	return c
}

// humanBytes prints exact bytes (what tests and scripts compare) with MiB for people.
func humanBytes(n int64) string { return fmt.Sprintf("%d bytes (%.1f MiB)", n, float64(n)/(1<<20)) }
