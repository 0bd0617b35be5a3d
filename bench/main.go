// Command bench runs Berth and CNCF Distribution v3.1.2 side by side on loopback and
// prints, for each figure, both values and the ratio Berth/Distribution. See README.md.
//
//	go run ./bench                                  # full run (about 3 minutes)
//	go run ./bench -size 256MiB -phases manifest,tags -duration 2s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// allPhases in the order they run.
var allPhases = []string{"push", "pull", "layers", "manifest", "blobhead", "tags", "concurrent", "mirror", "cric", "gc", "scan", "hf", "replication", "ui"}

type options struct {
	phases     []string
	size       int64
	chunk      int64
	layers     int
	layerSize  int64
	tags       int
	page       int
	tagWorkers int
	pushes     int
	conns      int
	duration   time.Duration
	warmup     time.Duration
	reps       int
	targets    []string
	tmpBase    string
	keep       bool
	registry   string
	crane      string
	skopeo     string
	zot        string // zot binary; empty: zot is not run
	clients    int
	// upstreamRate caps the mirror phase's upstream link, bytes/s (0: loopback speed).
	upstreamRate int64
	profileDir   string
	jsonOut      string
	timeout      time.Duration
	waitIdle     time.Duration
	gcBlobs      int // gc phase: layers pushed in all (half become garbage)
	gcLayers     int // gc phase: layers per image
	gcQuiet      bool
	trivy        string // scan phase: the trivy program
	scanSize     int64  // scan phase: the big image's random layer
	scanImages   int    // scan phase: images sharing base layers
	hfSize       int64  // hf phase: the model's weights
	rplImages    int    // replication phase: images replicated
	hookEvents   int    // replication phase: pushes delivered as webhooks
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fileserver" {
		// Internal mode: the plain Go file server used as the pull reference.
		if err := fileServerMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench fileserver:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.waitIdle > 0 {
		waitIdle(ctx, o.waitIdle)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	var phases, size, chunk, layerSize, targets, upstreamRate, scanSize, hfSize string
	fs.StringVar(&phases, "phases", strings.Join(allPhases, ","), "comma-separated phases to run: "+strings.Join(allPhases, ","))
	fs.StringVar(&size, "size", "1GiB", "size of the big layer (push, pull, and the big image of the mirror and cric phases)")
	fs.StringVar(&chunk, "chunk", "64MiB", "chunk size of the chunked PATCH push")
	fs.IntVar(&o.layers, "layers", 200, "number of small layers in the layers phase")
	fs.StringVar(&layerSize, "layer-size", "64KiB", "size of each small layer")
	fs.IntVar(&o.tags, "tags", 10000, "number of tags to create and list")
	fs.IntVar(&o.page, "page", 100, "tag list page size (n)")
	fs.IntVar(&o.tagWorkers, "tag-workers", 16, "concurrent clients creating the tags")
	fs.IntVar(&o.pushes, "pushes", 50, "number of concurrent small-image pushes")
	fs.IntVar(&o.conns, "conns", 32, "keep-alive connections for the request-rate phases")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured duration of each request-rate figure")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured warm-up before each request-rate figure")
	fs.IntVar(&o.reps, "reps", 3, "repetitions of the push, pull, layers, concurrent-push and tag-walk figures (the median is reported)")
	fs.StringVar(&targets, "targets", "", "registries to run, comma list of berth, distribution, zot (default: berth,distribution, and zot when its binary is found)")
	fs.StringVar(&o.tmpBase, "tmp", os.TempDir(), "parent of the scratch directory")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch directory (data, logs) after the run")
	fs.StringVar(&o.registry, "registry", "", "CNCF Distribution binary (default: registry on PATH or /opt/berth-tools/bin/registry)")
	fs.StringVar(&o.crane, "crane", "", "crane binary (default: crane on PATH or /opt/berth-tools/bin/crane)")
	fs.StringVar(&o.trivy, "trivy", "", "trivy binary for the scan phase (default: trivy on PATH or /opt/berth-tools/bin/trivy)")
	fs.StringVar(&scanSize, "scan-size", "100MB", "scan phase: size of the big image's layer")
	fs.IntVar(&o.scanImages, "scan-images", 200, "scan phase: images sharing base layers")
	fs.StringVar(&hfSize, "hf-size", "2GiB", "hf phase: size of the model's weights (four files)")
	fs.IntVar(&o.hookEvents, "hook-events", 500, "replication phase: pushes whose webhook deliveries are timed")
	fs.IntVar(&o.rplImages, "rpl-images", 200, "replication phase: images (four shared 10 MB base layers, 256 KiB each of their own)")
	fs.StringVar(&o.zot, "zot", "", "zot binary, the third registry (default: zot on PATH or /opt/berth-tools/bin/zot, when present; .ci/install-tools.sh zot builds it)")
	fs.StringVar(&o.skopeo, "skopeo", "", "skopeo binary for the cric phase (default: skopeo on PATH or /opt/berth-tools/bin/skopeo)")
	fs.IntVar(&o.clients, "mirror-clients", 20, "concurrent cold pulls of the big image in the mirror phase")
	fs.StringVar(&upstreamRate, "upstream-rate", "0", "mirror phase: cap the link to the upstream at this many bytes per second, e.g. 500MB (0: loopback speed)")
	fs.StringVar(&o.profileDir, "profile", "", "profile Berth: run the pprof-enabled wrapper (bench/berthpprof) and write one CPU profile per figure plus heap profiles into this directory (figures are then slightly pessimistic)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.IntVar(&o.gcBlobs, "gc-blobs", 4000, "gc phase: small (1-4KiB) layers pushed in all, in images of -gc-layers; half the images are then deleted")
	fs.IntVar(&o.gcLayers, "gc-layers", 100, "gc phase: layers per image")
	fs.BoolVar(&o.gcQuiet, "gc-quiet", false, "gc phase: no client load on Berth during GC (reclaim time alone)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "abort the whole run after this long (not counting -wait-idle)")
	fs.DurationVar(&o.waitIdle, "wait-idle", 0, "before starting, wait up to this long for the machine to be less than 15% busy (shared machines)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.size, err = parseSize(size); err != nil {
		return o, fmt.Errorf("-size: %w", err)
	}
	if o.chunk, err = parseSize(chunk); err != nil {
		return o, fmt.Errorf("-chunk: %w", err)
	}
	if o.hfSize, err = parseSize(hfSize); err != nil {
		return o, fmt.Errorf("-hf-size: %w", err)
	}
	if o.scanSize, err = parseSize(scanSize); err != nil {
		return o, fmt.Errorf("-scan-size: %w", err)
	}
	if o.layerSize, err = parseSize(layerSize); err != nil {
		return o, fmt.Errorf("-layer-size: %w", err)
	}
	if o.upstreamRate, err = parseSize(upstreamRate); err != nil {
		return o, fmt.Errorf("-upstream-rate: %w", err)
	}
	if o.size < 1<<20 || o.chunk < 1<<10 || o.layerSize < 1 {
		return o, errors.New("-size must be at least 1MiB, -chunk at least 1KiB, -layer-size at least 1 byte")
	}
	for p := range strings.SplitSeq(phases, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if p == "all" {
			o.phases = append(o.phases, allPhases...)
			continue
		}
		if !slices.Contains(allPhases, p) {
			return o, fmt.Errorf("unknown phase %q (want %s)", p, strings.Join(allPhases, ","))
		}
		o.phases = append(o.phases, p)
	}
	if len(o.phases) == 0 {
		return o, errors.New("no phases selected")
	}
	if targets == "" {
		targets = "berth,distribution"
		if zot, err := findTool(o.zot, "zot"); err == nil {
			o.zot, targets = zot, targets+",zot"
		}
	}
	for t := range strings.SplitSeq(targets, ",") {
		switch t = strings.TrimSpace(t); t {
		case "berth", "distribution", "zot":
			o.targets = append(o.targets, t)
		case "both":
			o.targets = append(o.targets, "berth", "distribution")
		case "":
		default:
			return o, fmt.Errorf("unknown target %q (want berth, distribution, zot or both)", t)
		}
	}
	if len(o.targets) == 0 {
		return o, errors.New("no targets selected")
	}
	if slices.Contains(o.targets, "zot") {
		if o.zot, err = findTool(o.zot, "zot"); err != nil {
			return o, err
		}
	}
	if o.layers < 1 || o.tags < 1 || o.page < 1 || o.pushes < 1 || o.conns < 1 || o.reps < 1 || o.tagWorkers < 1 || o.clients < 1 || o.gcBlobs < 1 || o.gcLayers < 1 {
		return o, errors.New("-layers, -tags, -page, -pushes, -conns, -reps, -tag-workers, -mirror-clients, -gc-blobs and -gc-layers must be positive")
	}
	if o.duration <= 0 || o.warmup < 0 {
		return o, errors.New("-duration must be positive and -warmup non-negative")
	}
	if o.profileDir != "" {
		if o.profileDir, err = filepath.Abs(o.profileDir); err != nil {
			return o, err
		}
	}
	return o, nil
}

func (o options) has(phase string) bool { return slices.Contains(o.phases, phase) }

// bench is one run: the scratch directory, the registries under test and the results.
type bench struct {
	o       options
	dir     string // scratch directory
	modRoot string
	crane   string
	targets []*target
	fs      *target // plain Go file server (pull reference), started on demand
	res     *results
	big     *bigBlob          // the big random layer, created on demand
	built   map[string]string // package -> binary built into dir
	procs   []*target         // every process started, for cleanup
	origin  *origin           // plain Berth holding the mirror's upstream images and the copy sources

	busyAtStart float64 // machine CPU busy fraction in the second before the run

	limitPush, limitPull float64 // the pipeline limits, MB/s, once measured (limit.go)
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	modRoot, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(o.tmpBase, "berth-bench-")
	if err != nil {
		return err
	}
	b := &bench{o: o, dir: dir, modRoot: modRoot, res: newResults()}
	defer func() {
		b.stopAll()
		if o.keep {
			fmt.Fprintf(os.Stderr, "kept scratch directory %s\n", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cleanup:", err)
		}
	}()
	if err := b.checkDisk(); err != nil {
		return err
	}
	b.busyAtStart = idleCheck()
	if b.busyAtStart > 0.1 {
		logf("WARNING: the machine is %.0f%% busy before the run; figures will be noisy", 100*b.busyAtStart)
	}
	if err := b.setup(ctx); err != nil {
		return err
	}
	for _, p := range allPhases {
		if !o.has(p) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		logf("phase %s", p)
		var err error
		switch p {
		case "push":
			err = b.phasePush(ctx)
		case "pull":
			err = b.phasePull(ctx)
		case "layers":
			err = b.phaseLayers(ctx)
		case "manifest":
			err = b.phaseManifest(ctx)
		case "blobhead":
			err = b.phaseBlobHead(ctx)
		case "tags":
			err = b.phaseTags(ctx)
		case "concurrent":
			err = b.phaseConcurrent(ctx)
		case "mirror":
			err = b.phaseMirror(ctx)
		case "cric":
			err = b.phaseCric(ctx)
		case "gc":
			err = b.phaseGC(ctx)
		case "scan":
			err = b.phaseScan(ctx)
		case "hf":
			err = b.phaseHF(ctx)
		case "replication":
			err = b.phaseReplication(ctx)
		case "ui":
			err = b.phaseUI(ctx)
		}
		if err != nil {
			return fmt.Errorf("phase %s: %w", p, err)
		}
	}
	b.memoryFigures()
	b.res.note("%s", background.summary())
	if o.profileDir != "" {
		b.finishProfiles(ctx)
	}
	b.res.print(os.Stdout, b.header(time.Since(start)))
	if o.jsonOut != "" {
		if err := b.res.writeJSON(o.jsonOut); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) header(elapsed time.Duration) string {
	var s strings.Builder
	peers := "CNCF Distribution v3.1.2"
	if slices.Contains(b.o.targets, "zot") {
		peers += " and zot " + zotVersion(b.o.zot)
	}
	fmt.Fprintf(&s, "Berth vs %s on 127.0.0.1 (%d CPUs, %s)\n", peers, numCPU(), time.Now().Format(time.RFC3339))
	fmt.Fprintf(&s, "berth tree %s; big layer %s, %d x %s layers, %d tags (n=%d), %d concurrent pushes, %d conns x %s per rate figure, %d mirror clients, %d reps; phases %s; total run %s\n",
		treeVersion(b.modRoot), fmtSize(b.o.size), b.o.layers, fmtSize(b.o.layerSize), b.o.tags, b.o.page, b.o.pushes, b.o.conns, b.o.duration, b.o.clients, b.o.reps,
		strings.Join(b.o.phases, ","), elapsed.Round(time.Second))
	if b.o.has("gc") {
		fmt.Fprintf(&s, "gc phase: %d blobs in %d images of %d layers, half the images deleted\n", b.o.gcBlobs/b.o.gcLayers*b.o.gcLayers, b.o.gcBlobs/b.o.gcLayers, b.o.gcLayers)
	}
	fmt.Fprintf(&s, "machine CPU busy in the second before the run: %.0f%%\n", 100*b.busyAtStart)
	if b.o.profileDir != "" {
		fmt.Fprintf(&s, "PROFILING RUN (Berth = bench/berthpprof wrapper, CPU profiler on): profiles in %s\n", b.o.profileDir)
	}
	return s.String()
}

// logf reports progress on stderr, so stdout carries only the table.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// treeVersion names the Berth source that was measured: the commit, and whether the
// working tree differs from it (read-only git plumbing; no index refresh or lock).
func treeVersion(dir string) string {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0")
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	head, err := git("rev-parse", "--short", "HEAD")
	if err != nil {
		return "(not a git checkout)"
	}
	if _, err := git("diff-index", "--quiet", "HEAD", "--"); err != nil {
		return head + " + uncommitted changes"
	}
	return head
}

// waitIdle waits up to max for a second in which the machine is less than 15% busy.
func waitIdle(ctx context.Context, max time.Duration) {
	deadline := time.Now().Add(max)
	for ctx.Err() == nil {
		busy := idleCheck()
		if busy < 0.15 {
			return
		}
		if time.Now().After(deadline) {
			logf("machine still %.0f%% busy after waiting %s; starting anyway", 100*busy, max)
			return
		}
		logf("machine %.0f%% busy; waiting for it to quieten", 100*busy)
		time.Sleep(4 * time.Second)
	}
}
