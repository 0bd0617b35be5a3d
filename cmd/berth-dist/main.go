// Command berth-dist builds what Berth ships, without a Docker engine: release archives
// (berth-dist release) and Berth's multi-arch OCI image with its FIPS variant and SBOM
// referrers (berth-dist image), reproducibly from the checkout's HEAD. It is a Go
// program rather than a Dockerfile or shell script because the image must come out
// byte-identical from one commit (tar headers, timestamps and layer order under our
// control), because CI has no Docker engine, and because the e2e tests run the same
// code that `make image` and `make release` run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/berth-registry/berth/internal/dist"
)

const usage = `usage:
  berth-dist release [-version V] [-platforms os/arch,...] [-out DIR]
  berth-dist image   [-version V] [-platforms linux/arch,...] [-variants std,fips] [-layout DIR] [-push REPO]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "release":
		err = release(ctx, os.Args[2:])
	case "image":
		err = image(ctx, os.Args[2:])
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-dist:", err)
		os.Exit(1)
	}
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func release(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("release", flag.ExitOnError)
	version := fs.String("version", "", "version to stamp (default: git describe --tags --always)")
	platforms := fs.String("platforms", strings.Join(dist.ReleasePlatforms, ","), "platforms")
	out := fs.String("out", "dist/release", "output directory")
	_ = fs.Parse(args)
	src, err := dist.GitSource(ctx, ".", *version)
	if err != nil {
		return err
	}
	names, err := dist.Release(ctx, src, list(*platforms), *out)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Printf("%s/%s\n", *out, n)
	}
	fmt.Printf("%s/SHA256SUMS\n", *out)
	return nil
}

func image(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("image", flag.ExitOnError)
	version := fs.String("version", "", "version to stamp and tag (default: git describe --tags --always)")
	platforms := fs.String("platforms", strings.Join(dist.ImagePlatforms, ","), "platforms of the index")
	variants := fs.String("variants", "std,fips", "std (tag VERSION) and/or fips (tag VERSION-fips, GOFIPS140="+dist.FIPSModule+")")
	layoutDir := fs.String("layout", "dist/image", "OCI image layout to write (replaced)")
	push := fs.String("push", "", "also push to this repository, e.g. registry.example.com/berth/berth")
	caCerts := fs.String("ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to ship in the image")
	_ = fs.Parse(args)
	src, err := dist.GitSource(ctx, ".", *version)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "berth-dist")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var built []dist.Built
	for _, v := range list(*variants) {
		if v != "std" && v != "fips" {
			return fmt.Errorf("-variants: %q is neither std nor fips", v)
		}
		s := src
		s.FIPS = v == "fips"
		b, err := dist.BuildVariant(ctx, s, dist.ImageOptions{Platforms: list(*platforms), CACerts: *caCerts, Work: work})
		if err != nil {
			return err
		}
		built = append(built, b)
	}
	if err := dist.WriteLayout(*layoutDir, built); err != nil {
		return err
	}
	for _, b := range built {
		d, _ := b.Index.Digest()
		line := fmt.Sprintf("%s %s sbom %s", b.Tag, d, b.SBOM.Descriptor().Digest)
		if *push != "" {
			ref, err := dist.Push(ctx, *push, b)
			if err != nil {
				return err
			}
			line += " pushed " + ref.String()
		}
		fmt.Println(line)
	}
	return nil
}
