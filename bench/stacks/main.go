// The scaleout suite is issue 6's benchmark: Berth on S3 (versitygw) and PostgreSQL against
// CNCF Distribution v3.1.2's s3 driver on the same versitygw, side by side on loopback,
// and two Berth replicas behind nginx against one. See README.md (scaleout) and AUTH.md (auth).
//
//	go run ./bench/stacks scaleout                       # full run, about 4-5 minutes on 2 cores
//	go run ./bench/stacks scaleout -size 256MiB -reps 1  # quick run

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

var allPhases = []string{"push", "pull", "layers", "manifest", "blobhead", "catalog", "replicas"}

type options struct {
	phases                    []string
	size, layerSize           int64
	layers, repos, page       int
	repoWorkers, clients      int
	conns                     int
	duration, warmup          time.Duration
	reps                      int
	distNoCache               bool
	nginxBuffer               string
	registry, versitygw, ngx  string
	tmpBase, profileDir, json string
	keep                      bool
	timeout                   time.Duration
	waitIdle                  time.Duration
}

func scaleoutMain() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "scaleout:", err)
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
		fmt.Fprintln(os.Stderr, "scaleout:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("scaleout", flag.ContinueOnError)
	var o options
	var phases, size, layerSize string
	fs.StringVar(&phases, "phases", strings.Join(allPhases, ","), "comma-separated phases: "+strings.Join(allPhases, ","))
	fs.StringVar(&size, "size", "1GiB", "size of the big layer (push, pull, replicas)")
	fs.IntVar(&o.layers, "layers", 200, "small layers of the many-layer image")
	fs.StringVar(&layerSize, "layer-size", "64KiB", "size of each small layer")
	fs.IntVar(&o.repos, "repos", 1000, "repositories created for the catalog figure")
	fs.IntVar(&o.page, "page", 100, "catalog page size (n)")
	fs.IntVar(&o.repoWorkers, "repo-workers", 16, "concurrent clients creating the repositories")
	fs.IntVar(&o.clients, "clients", 8, "parallel clients pulling the big blob in the replicas phase")
	fs.IntVar(&o.conns, "conns", 32, "keep-alive connections for the request-rate figures")
	fs.DurationVar(&o.duration, "duration", 4*time.Second, "measured time per registry and rate figure (cut into ~1s slices that alternate)")
	fs.DurationVar(&o.warmup, "warmup", 300*time.Millisecond, "unmeasured warm-up before each slice")
	fs.IntVar(&o.reps, "reps", 3, "repetitions of push, layers, catalog walk and replica pulls (pull: 2x as many); the median is reported")
	fs.BoolVar(&o.distNoCache, "dist-nocache", true, "also measure blob HEAD and manifest GET on a Distribution without the in-memory blob descriptor cache")
	fs.StringVar(&o.nginxBuffer, "nginx-buffer", "256k", "nginx proxy_buffer_size (with proxy_buffering off, the most nginx reads from a replica at a time); default: nginx's own (one page)")
	fs.StringVar(&o.registry, "registry", "", "CNCF Distribution binary (default: registry on PATH or /opt/berth-tools/bin)")
	fs.StringVar(&o.versitygw, "versitygw", "", "versitygw binary (default: on PATH or /opt/berth-tools/bin)")
	fs.StringVar(&o.ngx, "nginx", "", "nginx binary (default: on PATH or /usr/sbin/nginx)")
	fs.StringVar(&o.tmpBase, "tmp", os.TempDir(), "parent of the scratch directory")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch directory (data, logs)")
	fs.StringVar(&o.profileDir, "profile", "", "run Berth replica A as the pprof wrapper (bench/berthpprof) and write one CPU profile per figure into this directory")
	fs.StringVar(&o.json, "json", "", "also write the rows as JSON to this file")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "abort the run after this long")
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
	if o.layerSize, err = parseSize(layerSize); err != nil {
		return o, fmt.Errorf("-layer-size: %w", err)
	}
	if o.size < 1<<20 || o.layerSize < 1 {
		return o, errors.New("-size must be at least 1MiB and -layer-size at least 1 byte")
	}
	for p := range strings.SplitSeq(phases, ",") {
		if p = strings.TrimSpace(p); p == "" {
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
	if o.layers < 1 || o.repos < 1 || o.page < 1 || o.repoWorkers < 1 || o.clients < 1 || o.conns < 1 || o.reps < 1 {
		return o, errors.New("-layers, -repos, -page, -repo-workers, -clients, -conns and -reps must be positive")
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

func (o options) has(p string) bool { return slices.Contains(o.phases, p) }

// bench is one run.
type bench struct {
	o       options
	dir     string
	modRoot string
	res     *results
	stops   []func() // cleanup, run in reverse order

	berthBin, profBin, registryBin, nginxBin string

	s3     *proc     // versitygw
	s3Host string    // 127.0.0.1:port
	pg     *treeCPU  // PostgreSQL (postmaster and backends)
	dsn    string    // PostgreSQL DSN
	pgDir  string    // cluster directory
	pgPort string    // its port
	back   *sumMeter // versitygw + PostgreSQL, one meter

	berth, dist *server   // replica A of Berth, the stock Distribution
	extra       []*server // Distribution without the descriptor cache, started on demand
	big         *bigBlob
	src         srcImage // small image in bench/src of both registries, mounted from
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	modRoot, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(o.tmpBase, "berth-scaleout-")
	if err != nil {
		return err
	}
	b := &bench{o: o, dir: dir, modRoot: modRoot,
		res: &results{sections: []string{"throughput", "time", "request rate", "scale-out", "registry CPU", "S3 server + PostgreSQL CPU"}}}
	defer func() {
		for i := len(b.stops) - 1; i >= 0; i-- {
			b.stops[i]()
		}
		if o.keep {
			logf("kept scratch directory %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	if err := b.checkDisk(); err != nil {
		return err
	}
	busy := idleCheck()
	if busy > 0.1 {
		logf("WARNING: the machine is %.0f%% busy before the run; figures will be noisy", 100*busy)
	}
	if err := b.setup(ctx); err != nil {
		return err
	}
	phases := map[string]func(context.Context) error{
		"push": b.phasePush, "pull": b.phasePull, "layers": b.phaseLayers, "manifest": b.phaseManifest,
		"blobhead": b.phaseBlobHead, "catalog": b.phaseCatalog, "replicas": b.phaseReplicas,
	}
	for _, p := range allPhases {
		if !o.has(p) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		logf("phase %s", p)
		if err := phases[p](ctx); err != nil {
			return fmt.Errorf("phase %s: %w", p, err)
		}
	}
	b.finalNotes()
	header := fmt.Sprintf("Berth (S3 on versitygw + PostgreSQL 15) vs CNCF Distribution v3.1.2 (s3 driver, same versitygw) on 127.0.0.1 (%d CPUs, %s)\n",
		numCPU(), time.Now().UTC().Format(time.RFC3339))
	header += fmt.Sprintf("berth tree %s; big layer %s, %d x %s layers, %d repositories (n=%d), %d conns x %s per rate figure, %d parallel pulls, %d reps; phases %s; total run %s\n",
		treeVersion(modRoot), fmtSize(o.size), o.layers, fmtSize(o.layerSize), o.repos, o.page, o.conns, o.duration, o.clients, o.reps,
		strings.Join(o.phases, ","), time.Since(start).Round(time.Second))
	header += fmt.Sprintf("machine CPU busy in the second before the run: %.0f%%\n", 100*busy)
	if o.profileDir != "" {
		header += "PROFILING RUN (Berth replica A = bench/berthpprof, CPU profiler on): profiles in " + o.profileDir + "\n"
	}
	b.res.print(os.Stdout, header)
	if o.json != "" {
		return b.res.writeJSON(o.json)
	}
	return nil
}

// checkDisk refuses to start without room: the source file, a stored copy per registry,
// one upload in flight each (multipart parts), plus slack.
func (b *bench) checkDisk() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.dir, &st); err != nil {
		return err
	}
	free := int64(st.Bavail) * st.Bsize
	need := 6*b.o.size + 1<<30
	logf("scratch %s: %s free, %s needed", b.dir, fmtSize(free), fmtSize(need))
	if free < need {
		return fmt.Errorf("not enough disk under %s: %s free, %s needed (use -tmp or a smaller -size)", b.dir, fmtSize(free), fmtSize(need))
	}
	return nil
}

func (b *bench) onStop(f func()) { b.stops = append(b.stops, f) }

func (b *bench) setup(ctx context.Context) error {
	var err error
	if b.registryBin, err = findTool(b.o.registry, "registry"); err != nil {
		return err
	}
	vgw, err := findTool(b.o.versitygw, "versitygw")
	if err != nil {
		return err
	}
	if b.o.has("replicas") {
		if b.nginxBin, err = findTool(b.o.ngx, "nginx"); err != nil {
			if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
				return errors.New("nginx not found (apt-get install nginx)")
			}
			b.nginxBin = "/usr/sbin/nginx"
		}
	}
	if b.berthBin, err = buildBinary(ctx, b.modRoot, b.dir, "./cmd/berth", "berth"); err != nil {
		return err
	}
	if b.o.profileDir != "" {
		if b.profBin, err = buildBinary(ctx, b.modRoot, b.dir, "./bench/berthpprof", "berthprof"); err != nil {
			return err
		}
	}
	if err := b.startPostgres(ctx); err != nil {
		return err
	}
	if err := b.startS3(ctx, vgw); err != nil {
		return err
	}
	b.back = &sumMeter{ms: []cpuMeter{b.s3, b.pg}}
	if b.berth, err = b.startBerthReplica(ctx, "berth-a", b.o.profileDir); err != nil {
		return err
	}
	if err := b.createBucket(ctx, "distribution"); err != nil {
		return err
	}
	if b.dist, err = b.startDist(ctx, "distribution", true); err != nil {
		return err
	}
	b.src, err = b.pushSource(ctx)
	return err
}

// startPostgres starts a private PostgreSQL cluster with the repository's script, on a
// free port and in the scratch directory (never the shared default port and directory).
func (b *bench) startPostgres(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	_, b.pgPort, _ = strings.Cut(port, ":")
	// The cluster runs as the postgres user, who must reach its directory.
	if err := os.Chmod(b.dir, 0o755); err != nil {
		return err
	}
	b.pgDir = filepath.Join(b.dir, "pg")
	env := append(os.Environ(), "BERTH_PG_PORT="+b.pgPort, "BERTH_PG_DIR="+b.pgDir)
	logf("starting PostgreSQL on 127.0.0.1:%s in %s", b.pgPort, b.pgDir)
	cmd := exec.CommandContext(ctx, filepath.Join(b.modRoot, ".ci/start-postgres.sh"), b.pgDir)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b.onStop(func() {
		stop := exec.Command(filepath.Join(b.modRoot, ".ci/stop-postgres.sh"), "--rm", b.pgDir)
		stop.Env = env
		if out, err := stop.CombinedOutput(); err != nil {
			logf("stop PostgreSQL: %v: %s", err, out)
		}
	})
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("start-postgres.sh: %w: %s", err, stderr.String())
	}
	b.dsn = strings.TrimSpace(string(out))
	if !strings.Contains(b.dsn, ":"+b.pgPort+"/") {
		return fmt.Errorf("start-postgres.sh printed %q, not a DSN on port %s", b.dsn, b.pgPort)
	}
	pidFile := filepath.Join(b.pgDir, "data", "postmaster.pid")
	b.pg = &treeCPU{root: func() int {
		raw, err := os.ReadFile(pidFile)
		if err != nil {
			return 0
		}
		line, _, _ := strings.Cut(string(raw), "\n")
		var pid int
		_, _ = fmt.Sscan(line, &pid)
		return pid
	}}
	addHelper(b.pg)
	return nil
}

const s3Access, s3Secret = "benchaccess", "benchsecret123"

func (b *bench) startS3(ctx context.Context, bin string) error {
	addr, err := freePort()
	if err != nil {
		return err
	}
	data := filepath.Join(b.dir, "s3data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	b.s3, err = startProc(b.dir, "versitygw", bin, []string{"--port", addr, "--access", s3Access, "--secret", s3Secret,
		"--region", "us-east-1", "--quiet", "posix", data}, cleanEnv())
	if err != nil {
		return err
	}
	b.onStop(b.s3.stop)
	b.s3Host = addr
	if err := waitHTTP(ctx, b.s3, "http://"+addr+"/", func(int) bool { return true }, 30*time.Second); err != nil {
		return err
	}
	addHelper(b.s3)
	logf("versitygw pid %d on %s", b.s3.pid(), addr)
	return nil
}

// createBucket creates a bucket with curl's SigV4 signing (versitygw wants the
// x-amz-content-sha256 header).
func (b *bench) createBucket(ctx context.Context, bucket string) error {
	const emptySHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	cmd := exec.CommandContext(ctx, "curl", "-sS", "--fail-with-body", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", s3Access+":"+s3Secret,
		"-H", "x-amz-content-sha256: "+emptySHA, "-X", "PUT", "http://"+b.s3Host+"/"+bucket)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("create bucket %s: %w: %s", bucket, err, out)
	}
	return nil
}

// berthConfig is the replicas' shared configuration: PostgreSQL and the S3 bucket.
func (b *bench) berthConfig() string {
	return fmt.Sprintf(`log:
  accessLog: false
database:
  driver: postgres
  dsn: %s
storage:
  driver: s3
  s3:
    endpoint: http://%s
    region: us-east-1
    bucket: berth
    prefix: berth
    forcePathStyle: true
    accessKey: %s
    secretKey: %s
    createBucket: true
`, b.dsn, b.s3Host, s3Access, s3Secret)
}

// startBerthReplica starts one Berth replica (own data directory, shared database and
// bucket); with profileDir, as the profiling wrapper.
func (b *bench) startBerthReplica(ctx context.Context, name, profileDir string) (*server, error) {
	bin := b.berthBin
	if profileDir != "" {
		bin = b.profBin
	}
	s, err := startBerth(ctx, b.dir, berthSpec{name: name, label: "Berth", bin: bin, data: filepath.Join(b.dir, name+"-data"),
		config: b.berthConfig(), profileDir: profileDir})
	if err != nil {
		return nil, err
	}
	b.onStop(s.stop)
	addHelper(s)
	return s, nil
}

// startDist starts Distribution on the s3 driver (the bucket "distribution", created
// first), with redirects off so blobs stream through it as through Berth; cache adds the
// stock config's in-memory blob descriptor cache.
func (b *bench) startDist(ctx context.Context, name string, cache bool) (*server, error) {
	conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: %s
    secretkey: %s
    region: us-east-1
    regionendpoint: http://%s
    forcepathstyle: true
    secure: false
    bucket: distribution
    rootdirectory: /dist
  redirect:
    disable: true
  delete:
    enabled: true
`, s3Access, s3Secret, b.s3Host)
	if cache {
		conf += "  cache:\n    blobdescriptor: inmemory\n"
	}
	s, err := startDistribution(ctx, b.dir, b.registryBin, name, conf, func(st int) bool { return st == 200 })
	if err != nil {
		return nil, err
	}
	b.onStop(s.stop)
	addHelper(s)
	return s, nil
}

// finalNotes: background load, errors in the logs, memory.
func (b *bench) finalNotes() {
	b.res.note("%s", background.summary())
	b.res.note("registry CPU is the registry process alone; the S3 server + PostgreSQL rows add versitygw's and PostgreSQL's CPU (all of it, both registries share them) over the same windows")
	for _, s := range []*server{b.berth, b.dist} {
		if s == nil || s.exited() {
			continue
		}
		if hwm, err := memKB(s.pid(), "VmHWM"); err == nil {
			b.res.note("%s peak RSS %.1f MiB", s.name, float64(hwm)/1024)
		}
		if strings.HasPrefix(s.name, "berth") {
			if n := countLines(s.logPath, `"level":"ERROR"`); n > 0 {
				b.res.note("%s logged %d errors (%s)", s.name, n, s.logPath)
			}
		}
	}
}
