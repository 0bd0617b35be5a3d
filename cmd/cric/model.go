package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/cric"
)

func modelCmd(f *flags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Push and pull model directories as CNCF ModelPack artifacts",
		Long: `A model directory (config.json, tokenizer files, weights, README...) as a CNCF ModelPack
artifact: an OCI manifest with artifactType application/vnd.cncf.model.manifest.v1+json,
one raw layer per file typed weight, weight config, doc or code and annotated with its
path. Kubernetes mounts it with an image volume; Berth's Hugging Face mirror serves cached
models the same way. Files move in parallel (--jobs); a push or pull run again after an
interruption skips what already arrived.`,
	}
	push := &cobra.Command{
		Use:     "push DIR IMAGE",
		Short:   "Package a model directory as a ModelPack artifact and push it",
		Example: `  cric model push ./qwen2.5-0.5b registry.example.com/models/qwen2.5-0.5b:v1`,
		Args:    args(2, 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			res, err := c.ModelPush(cmd.Context(), a[0], a[1])
			if err != nil {
				return err
			}
			return c.Out().PrintResults([]*cric.Result{res})
		},
	}
	pull := &cobra.Command{
		Use:   "pull IMAGE DIR",
		Short: "Download a ModelPack artifact's files into a directory",
		Example: `  cric model pull registry.example.com/models/qwen2.5-0.5b:v1 ./qwen
  cric model pull berth:5000/hf/qwen/qwen2.5-0.5b-instruct:main ./qwen   # a model cached from Hugging Face`,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			res, err := c.ModelPull(cmd.Context(), a[0], a[1])
			if err != nil {
				return err
			}
			return c.Out().PrintResults([]*cric.Result{res})
		},
	}
	cmd.AddCommand(push, pull)
	return cmd
}
