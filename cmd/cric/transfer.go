package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/cric"
)

func pullCmd(f *flags) *cobra.Command {
	var o cric.PullOptions
	var plat string
	cmd := &cobra.Command{
		Use:   "pull IMAGE",
		Short: "Download an image into an OCI layout directory or an OCI/docker archive",
		Long: `Download an image into an OCI image layout directory (default: a directory named after
the repository), an OCI layout tar (-o FILE.tar) or a docker archive (--format
docker-archive, as docker save writes). Every blob is verified against its digest.

A multi-platform image is narrowed to linux on this machine's architecture unless
--platform or --all-platforms says otherwise; --all-platforms keeps the index and so
its digest. Pulling into an existing layout directory adds to it.`,
		Example: `  cric pull registry.example.com/team/app:v1.2
  cric pull registry.example.com/team/app:v1.2 --all-platforms -o app-layout
  cric pull nginx:1.27 --platform linux/arm64 -o nginx.tar
  cric pull nginx:1.27 --format docker-archive -o nginx-docker.tar`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if o.Platform, err = cric.ParsePlatform(plat); err != nil {
				return err
			}
			res, err := c.Pull(cmd.Context(), a[0], o)
			if err != nil {
				return err
			}
			return c.Out().PrintResults([]*cric.Result{res})
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "layout directory or .tar file (default: the repository's name)")
	cmd.Flags().StringVar(&o.Format, "format", "", "oci (directory), oci-archive or docker-archive (default: from -o)")
	platformFlag(cmd, &plat, "the platform to pull from a multi-platform image")
	cmd.Flags().BoolVar(&o.AllPlatforms, "all-platforms", false, "pull every platform (keeps the index digest)")
	return cmd
}

func pushCmd(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "push SRC IMAGE",
		Short: "Upload an image from an OCI layout directory or archive, or a docker archive",
		Long: `Upload an image from an OCI image layout directory or tar (PATH, or PATH:NAME when it
holds several images; NAME is a tag, full name or digest of its index.json) or from a
docker archive. Digests are kept. Without a tag in IMAGE the layout entry's tag is used.`,
		Example: `  cric push ./app-layout registry.example.com/team/app:v1.2
  cric push bundle.tar:v1.2 registry.example.com/team/app
  cric push nginx-docker.tar 127.0.0.1:5000/library/nginx:1.27`,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			res, err := c.Push(cmd.Context(), a[0], a[1])
			if err != nil {
				return err
			}
			return c.Out().PrintResults([]*cric.Result{res})
		},
	}
}

func cpCmd(f *flags) *cobra.Command {
	var o cric.CopyOptions
	var plat string
	cmd := &cobra.Command{
		Use:     "cp SRC DST",
		Aliases: []string{"copy"},
		Short:   "Copy an image between registries, every platform and digest intact",
		Long: `Copy an image from one registry (or repository) to another: every platform by default,
digests unchanged, blobs streamed without touching the disk, --jobs at a time. Within
one registry blobs are mounted rather than copied. What the destination already has is
skipped, so copying again is cheap. Without a tag in DST the source tag is kept.

--referrers also copies everything that refers to the image or its platform manifests
(signatures, SBOMs, attestations), read through the referrers API or its tag-schema
fallback and written the same way the destination supports.`,
		Example: `  cric cp docker.io/library/nginx:1.27 registry.example.com/mirror/nginx
  cric cp --referrers ghcr.io/org/app:v1 registry.example.com/org/app:v1
  cric cp --platform linux/amd64 nginx:1.27 127.0.0.1:5000/nginx:1.27-amd64`,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if o.Platform, err = cric.ParsePlatform(plat); err != nil {
				return err
			}
			res, err := c.Copy(cmd.Context(), a[0], a[1], o)
			if err != nil {
				return err
			}
			return c.Out().PrintResults([]*cric.Result{res})
		},
	}
	platformFlag(cmd, &plat, "copy only this platform (its manifest becomes the target; default: all)")
	cmd.Flags().BoolVar(&o.Referrers, "referrers", false, "also copy signatures, SBOMs and other referrers, recursively")
	return cmd
}

func saveCmd(f *flags) *cobra.Command {
	var o cric.SaveOptions
	var plat string
	cmd := &cobra.Command{
		Use:   "save IMAGE... -o BUNDLE.tar",
		Short: "Save many images into one bundle for an air-gapped site",
		Long: `Save images into one OCI image layout, as a tar (-o bundle.tar) or a directory. Blobs
shared between images are stored once. Each image keeps its name in index.json
(org.opencontainers.image.ref.name = the tag, io.containerd.image.name and
com.github.berth-registry.cric.source = the full reference), so "cric load" can push it
back under the same path, and its digest. Every platform is saved unless --platform
narrows each image to one.`,
		Example: `  kubeadm config images list > images.txt
  echo registry.k8s.io/pause:3.10 >> images.txt
  cric save --from-file images.txt -o k8s-bundle.tar
  cric save nginx:1.27 redis:7 -o bundle.tar`,
		Args: args(0, -1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if o.Platform, err = cric.ParsePlatform(plat); err != nil {
				return err
			}
			res, err := c.Save(cmd.Context(), a, o)
			if err != nil {
				return err
			}
			return c.Out().PrintResults(res)
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "bundle file (.tar) or directory (required)")
	cmd.Flags().StringVar(&o.FromFile, "from-file", "", "read images from a file, one per line (# comments allowed)")
	platformFlag(cmd, &plat, "save only this platform of each image")
	return cmd
}

func loadCmd(f *flags) *cobra.Command {
	var o cric.LoadOptions
	cmd := &cobra.Command{
		Use:   "load BUNDLE --to REGISTRY[/PREFIX]",
		Short: "Push every image of a bundle into a registry, keeping paths, tags and digests",
		Long: `Push every image of a bundle made by "cric save" (an OCI layout tar or directory) into
REGISTRY, under PREFIX if given: registry.k8s.io/pause:3.10 loaded --to
registry.internal/mirror becomes registry.internal/mirror/pause:3.10, with the same
digest. Blobs shared between repositories are uploaded once and mounted elsewhere.
BUNDLE:NAME loads one image only.`,
		Example: `  cric load k8s-bundle.tar --to registry.internal/k8s
  cric load bundle.tar --to 127.0.0.1:5000 --json`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			res, err := c.Load(cmd.Context(), a[0], o)
			if err != nil {
				return err
			}
			return c.Out().PrintResults(res)
		},
	}
	cmd.Flags().StringVar(&o.To, "to", "", "destination REGISTRY[/PREFIX] (required)")
	return cmd
}
