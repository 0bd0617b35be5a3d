package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/hf"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/server"
)

// splitModels separates hf://org/model[@rev] arguments from image references.
func splitModels(args []string) (models, images []string) {
	for _, a := range args {
		if strings.HasPrefix(a, hf.RefScheme) {
			models = append(models, a)
		} else {
			images = append(images, a)
		}
	}
	return models, images
}

// warmModels caches Hugging Face revisions into the mirror (hf.enabled) and makes each
// complete one a ModelPack artifact, printing a line per file and one per revision.
func warmModels(cmd *cobra.Command, cfg config.Config, m *meta.Store, reg *registry.Registry, models, include, exclude []string, log *slog.Logger) error {
	if !cfg.HF.Enabled {
		return fmt.Errorf("hf:// models need the Hugging Face mirror (hf.enabled)")
	}
	svc, err := server.NewHFMirror(cfg, m, reg, log)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	var failed int
	for _, ref := range models {
		repo, rev, err := hf.ParseRef(ref)
		if err != nil {
			return err
		}
		commit, dgst, err := svc.Warm(cmd.Context(), repo, rev, include, exclude, func(ev hf.WarmEvent) {
			switch {
			case ev.Err != nil:
				fmt.Fprintf(out, "%s %s: FAILED: %v\n", ref, ev.Path, ev.Err)
			case ev.Cached:
				fmt.Fprintf(out, "%s %s: %d bytes already cached\n", ref, ev.Path, ev.Size)
			default:
				fmt.Fprintf(out, "%s %s: %d bytes fetched\n", ref, ev.Path, ev.Size)
			}
		})
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(out, "%s: FAILED: %v\n", ref, err)
		case dgst != "":
			local, _ := hf.LocalRepo(cfg.HF.Project, repo)
			fmt.Fprintf(out, "%s: commit %s cached; ModelPack artifact %s@%s\n", ref, commit, local, dgst)
		default:
			fmt.Fprintf(out, "%s: commit %s partly cached (include/exclude); no ModelPack artifact\n", ref, commit)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d models could not be warmed", failed, len(models))
	}
	return nil
}
