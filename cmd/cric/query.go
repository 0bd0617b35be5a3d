package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/cric"
)

func tagsCmd(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:     "tags REPOSITORY",
		Aliases: []string{"ls"},
		Short:   "List a repository's tags",
		Example: `  cric tags registry.example.com/team/app
  cric tags --json 127.0.0.1:5000/library/nginx`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			tl, err := c.Tags(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if c.Out().JSONMode() {
				return c.Out().JSON(tl)
			}
			c.Out().Lines(tl.Tags)
			return nil
		},
	}
}

func catalogCmd(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "catalog REGISTRY[/PREFIX]",
		Short: "List a registry's repositories",
		Example: `  cric catalog registry.example.com
  cric catalog --json 127.0.0.1:5000/team`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			cat, err := c.Catalog(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if c.Out().JSONMode() {
				return c.Out().JSON(cat)
			}
			c.Out().Lines(cat.Repositories)
			return nil
		},
	}
}

func inspectCmd(f *flags) *cobra.Command {
	var plat string
	var raw, config bool
	cmd := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Show an image's manifest, platforms, config, size and referrers",
		Example: `  cric inspect registry.example.com/team/app:v1.2
  cric inspect --platform linux/arm64 nginx:1.27
  cric inspect --raw nginx:1.27 | jq .
  cric inspect --json 127.0.0.1:5000/app:v1`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			p, err := cric.ParsePlatform(plat)
			if err != nil {
				return err
			}
			var b []byte
			switch {
			case raw && config:
				return cric.Usagef("--raw and --config exclude each other")
			case raw:
				b, err = c.RawManifest(cmd.Context(), a[0], p)
			case config:
				b, err = c.RawConfig(cmd.Context(), a[0], p)
			default:
				in, err := c.Inspect(cmd.Context(), a[0], p)
				if err != nil {
					return err
				}
				return c.Out().PrintInspection(in)
			}
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(append(b, '\n'))
			return err
		},
	}
	platformFlag(cmd, &plat, "describe this platform's manifest of a multi-platform image")
	cmd.Flags().BoolVar(&raw, "raw", false, "print the manifest exactly as the registry serves it")
	cmd.Flags().BoolVar(&config, "config", false, "print the image config (of --platform, default linux on this architecture)")
	return cmd
}

func digestCmd(f *flags) *cobra.Command {
	var plat string
	cmd := &cobra.Command{
		Use:     "digest IMAGE",
		Short:   "Print an image's manifest digest",
		Example: `  cric digest registry.k8s.io/pause:3.10`,
		Args:    args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			p, err := cric.ParsePlatform(plat)
			if err != nil {
				return err
			}
			d, err := c.Digest(cmd.Context(), a[0], p)
			if err != nil {
				return err
			}
			c.Out().Linef("%s", d)
			return nil
		},
	}
	platformFlag(cmd, &plat, "the digest of this platform's manifest")
	return cmd
}

func rmCmd(f *flags) *cobra.Command {
	var manifest bool
	cmd := &cobra.Command{
		Use:     "rm IMAGE",
		Aliases: []string{"delete"},
		Short:   "Delete a tag (IMAGE:TAG) or a manifest (IMAGE@DIGEST, or IMAGE:TAG --manifest)",
		Example: `  cric rm registry.example.com/team/app:old        # the tag only
  cric rm registry.example.com/team/app@sha256:…   # the manifest and all its tags
  cric rm --manifest registry.example.com/team/app:old`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			ref, err := c.Delete(cmd.Context(), a[0], manifest)
			if err != nil {
				return err
			}
			c.Out().Linef("deleted %s", ref)
			return nil
		},
	}
	cmd.Flags().BoolVar(&manifest, "manifest", false, "delete the manifest the tag points at (and so every tag on it)")
	return cmd
}

func tagCmd(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:     "tag IMAGE NEWTAG",
		Short:   "Add a tag to an image in its repository",
		Example: `  cric tag registry.example.com/team/app:v1.2 stable`,
		Args:    args(2, 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			ref, err := c.Tag(cmd.Context(), a[0], a[1])
			if err != nil {
				return err
			}
			c.Out().Linef("%s", ref)
			return nil
		},
	}
}
