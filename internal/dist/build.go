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
	"sync"
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
// tree's state out of the binary; version and commit are stamped with -X. The programs
// are built by one go build, which links them in parallel. The e2e harness builds its
// berth with this function too, so the compiled packages of a linux/amd64 build are
// shared through the build cache between the harness, the image and the release.
func Build(ctx context.Context, src Source, goos, goarch, dir string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	ldflags := fmt.Sprintf("-s -w -buildid= -X %s.version=%s -X %s.commit=%s", buildinfoPkg, src.Version, buildinfoPkg, src.Commit)
	// -o names a directory (the trailing separator) so that one go build writes every
	// program into it.
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", dir + string(filepath.Separator)}
	out := map[string]string{}
	for _, p := range Programs {
		args = append(args, "./cmd/"+p)
		out[p] = filepath.Join(dir, p)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = src.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=")
	if src.FIPS {
		cmd.Env = append(cmd.Env, "GOFIPS140="+FIPSModule)
	} else {
		cmd.Env = append(cmd.Env, "GOFIPS140=off")
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dist: go build %s for %s/%s: %w\n%s", strings.Join(Programs, " "), goos, goarch, err, msg)
	}
	return out, nil
}

// BuildPlatforms runs Build for every platform ("os/arch") at once, into dir(goos,
// goarch), and returns the binaries in the platforms' order. The builds are
// independent (each platform has its own compiled packages), and running them together
// overlaps one build's links and serial compiles with another's.
func BuildPlatforms(ctx context.Context, src Source, platforms []string, dir func(goos, goarch string) string) ([]map[string]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bins := make([]map[string]string, len(platforms))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error // the first failure, not the kills it caused in the others
	)
	for _, pl := range platforms {
		if _, _, ok := strings.Cut(pl, "/"); !ok {
			return nil, fmt.Errorf("dist: platform %q: want os/arch", pl)
		}
	}
	for i, pl := range platforms {
		goos, goarch, _ := strings.Cut(pl, "/")
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := Build(ctx, src, goos, goarch, dir(goos, goarch))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
				cancel()
			}
			bins[i] = b
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return bins, nil
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
