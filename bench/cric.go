package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// copyTool is one registry-to-registry copy client.
type copyTool struct {
	name   string
	bin    string
	wrap   []string // command prefix (skopeo: a user namespace, see phaseCric)
	args   func(src, dst string) []string
	jobs   string // its default parallelism, for the notes
	runDir string
}

// phaseCric: cric cp against crane copy and skopeo copy, between two local Berths.
func (b *bench) phaseCric(ctx context.Context) error {
	cric, err := b.buildBinary(ctx, "./cmd/cric", "cric")
	if err != nil {
		return err
	}
	crane, err := findTool(b.o.crane, "crane")
	if err != nil {
		return err
	}
	skopeo, err := findTool(b.o.skopeo, "skopeo")
	if err != nil {
		return err
	}
	var imgs []*testImage
	for _, name := range []string{"big", "layers"} {
		img, err := b.originImage(ctx, name)
		if err != nil {
			return err
		}
		imgs = append(imgs, img)
	}
	src := b.origin.t
	dst, err := b.startBerthWith(ctx, berthSpec{name: "copy-destination", data: filepath.Join(b.dir, "copy-destination-data"), noSettle: true})
	if err != nil {
		return err
	}
	defer func() {
		dst.stop()
		_ = os.RemoveAll(filepath.Join(b.dir, "copy-destination-data"))
	}()

	// skopeo run as root keeps a blob-info cache in /var/lib/containers/cache (no flag
	// moves it in 1.9). It would remember where earlier copies put each blob and mount
	// from there instead of copying, and it would write outside the scratch directory.
	// In a user namespace without mappings skopeo is not root, so the cache lives under
	// $XDG_DATA_HOME, which every copy gets fresh.
	var skopeoWrap []string
	if err := exec.CommandContext(ctx, "unshare", "--user", "true").Run(); err == nil {
		skopeoWrap = []string{"unshare", "--user"}
	} else {
		logf("WARNING: unshare --user fails (%v): skopeo runs as root and may reuse its blob-info cache", err)
		b.res.note("skopeo ran without a private blob-info cache (unshare --user failed): its figures may be optimistic")
	}
	tools := []copyTool{
		{name: "cric", bin: cric, jobs: "--jobs 8", args: func(s, d string) []string {
			return []string{"cp", "-q", "--progress", "none", s, d}
		}},
		{name: "crane", bin: crane, jobs: "--jobs GOMAXPROCS=" + fmt.Sprint(numCPU()), args: func(s, d string) []string {
			return []string{"copy", s, d}
		}},
		{name: "skopeo", bin: skopeo, wrap: skopeoWrap, jobs: "6 layers at once", args: func(s, d string) []string {
			return []string{"copy", "-q", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false", "docker://" + s, "docker://" + d}
		}},
	}
	run := 0
	for _, img := range imgs {
		key := strings.TrimPrefix(img.repo, "bench/")
		times := map[string][]time.Duration{}
		clientCPU := map[string]time.Duration{}
		for rep := range b.o.reps {
			// Rotate the order: every tool goes first, second and last once in 3 reps.
			for i := range tools {
				tool := tools[(i+rep)%len(tools)]
				run++
				dstRepo := fmt.Sprintf("bench/%s-%s-%d", tool.name, key, rep)
				srcRef := src.host + "/" + img.repo + ":" + img.tag
				dstRef := dst.host + "/" + dstRepo + ":" + img.tag
				syscall.Sync()
				var cpu time.Duration
				el, _, err := measure(dst, "copy-"+key+"-"+tool.name, false, func() error {
					var err error
					cpu, err = b.runCopy(ctx, tool, run, tool.args(srcRef, dstRef))
					return err
				})
				if err != nil {
					return err
				}
				got, err := dst.http.manifestDigest(ctx, dstRepo, img.tag)
				if err != nil {
					return fmt.Errorf("%s copy of %s: %w", tool.name, img.repo, err)
				}
				if got != img.digest {
					return fmt.Errorf("%s copy of %s: manifest digest %s, want %s", tool.name, img.repo, got, img.digest)
				}
				times[tool.name] = append(times[tool.name], el)
				clientCPU[tool.name] += cpu
				logf("  copy %s #%d %s: %.3fs, %.0f MB/s, client CPU %.2fs", key, rep+1, tool.name, el.Seconds(), mbps(img.size, el), cpu.Seconds())
			}
		}
		secs, speed, cpu := map[string]float64{}, map[string]float64{}, map[string]float64{}
		for _, t := range tools {
			med := median(times[t.name])
			secs[t.name], speed[t.name] = med.Seconds(), mbps(img.size, med)
			cpu[t.name] = cpuPerGB(clientCPU[t.name], img.size*int64(b.o.reps))
		}
		fig := "copy " + img.label
		b.res.addTo("copy", "copy", fig, "s", secs).relativeAtMost("<=1x crane", 1)
		b.res.addTo("copy", "copy", fig, "MB/s", speed).relative(">=1x crane", 1)
		b.res.addTo("copy", "copy", fig+": client CPU", "CPU s/GB", cpu)
	}
	var par []string
	for _, t := range tools {
		par = append(par, t.name+" "+t.jobs)
	}
	b.res.note("copies: origin Berth -> a second Berth on loopback, each into a new repository, order rotated, median of %d; MB/s counts manifest + config + layers; each tool at its default parallelism (%s)",
		b.o.reps, strings.Join(par, ", "))
	return nil
}

// runCopy runs one copy with its own HOME, Docker config and (skopeo) blob-info cache,
// and returns the client's CPU time (user+system).
func (b *bench) runCopy(ctx context.Context, tool copyTool, run int, args []string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	home := filepath.Join(b.dir, "copy-home", fmt.Sprintf("%s-%d", tool.name, run))
	for _, d := range []string{"docker", "data", "run", "config"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			return 0, err
		}
	}
	defer os.RemoveAll(home)
	argv := append(append(append([]string{}, tool.wrap...), tool.bin), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = cleanEnv("HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, "docker"),
		"XDG_DATA_HOME="+filepath.Join(home, "data"), "XDG_RUNTIME_DIR="+filepath.Join(home, "run"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}
