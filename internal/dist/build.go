// Package dist builds what Berth ships: static binaries cross-compiled for each
// platform, release archives with SHA-256 checksums, and Berth's own multi-arch OCI
// image with an SBOM referrer, all without a Docker engine and byte-for-byte
// reproducible from one commit (fixed timestamps, -trimpath, no VCS stamp, sorted tar
// entries with fixed owners). cmd/berth-dist is its command line; `make release`,
// `make image` and the e2e tests call it.
package dist

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Source is what a build is made from.
type Source struct {
	Dir     string    // the module root
	Version string    // stamped into buildinfo.version
	Commit  string    // stamped into buildinfo.commit
	Time    time.Time // every timestamp in archives and images (the commit's time)
	FIPS    bool      // build with the FIPS 140-3 module (GOFIPS140=v1.0.0)
}

// FIPSModule is the frozen, CMVP-validated Go Cryptographic Module the FIPS variant uses.
const FIPSModule = "v1.0.0"

// Programs are the binaries Berth ships.
var Programs = []string{"berth", "cric"}

const buildinfoPkg = "github.com/berth-registry/berth/internal/buildinfo"

// Build compiles every program for goos/goarch into dir and returns their paths by name.
// CGO is off (static binaries); -trimpath and -buildvcs=false keep paths and the work
// tree's state out of the binary; version and commit are stamped with -X.
func Build(ctx context.Context, src Source, goos, goarch, dir string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	ldflags := fmt.Sprintf("-s -w -buildid= -X %s.version=%s -X %s.commit=%s", buildinfoPkg, src.Version, buildinfoPkg, src.Commit)
	out := map[string]string{}
	for _, p := range Programs {
		bin := filepath.Join(dir, p)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", bin, "./cmd/"+p)
		cmd.Dir = src.Dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=")
		if src.FIPS {
			cmd.Env = append(cmd.Env, "GOFIPS140="+FIPSModule)
		} else {
			cmd.Env = append(cmd.Env, "GOFIPS140=off")
		}
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("dist: go build %s for %s/%s: %w\n%s", p, goos, goarch, err, msg)
		}
		out[p] = bin
	}
	return out, nil
}

// GitSource fills a Source from the git checkout at dir: HEAD's commit and commit time,
// and version (when empty) from `git describe --tags --always`.
func GitSource(ctx context.Context, dir, version string) (Source, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("dist: git %s: %w", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	commit, err := git("rev-parse", "HEAD")
	if err != nil {
		return Source{}, err
	}
	ct, err := git("log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return Source{}, err
	}
	var sec int64
	if _, err := fmt.Sscan(ct, &sec); err != nil {
		return Source{}, fmt.Errorf("dist: commit time %q: %w", ct, err)
	}
	if version == "" {
		if version, err = git("describe", "--tags", "--always"); err != nil {
			return Source{}, err
		}
	}
	return Source{Dir: dir, Version: version, Commit: commit, Time: time.Unix(sec, 0).UTC()}, nil
}
