package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const modulePath = "github.com/berth-registry/berth"

// target is a registry (or the reference file server) under test: a child process on
// 127.0.0.1 whose CPU time and memory are read from /proc.
type target struct {
	name  string // berth, distribution, fileserver
	label string // for the table
	host  string // 127.0.0.1:port
	base  *url.URL
	cmd   *exec.Cmd
	logf  *os.File
	done  chan struct{}
	http  *client

	idleRSS int64  // VmRSS shortly after start, bytes
	ctl     string // profiling control base URL (Berth wrapper only)
	raw     string // file server only: its raw sendfile listener (limit.go)
	profDir string

	logName  string // log file name without .log; default name
	noSettle bool   // skip the idle-memory pause after start (restarted helpers)
	helper   bool   // a supporting process (upstream, copy source or destination): its CPU is not background load
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the benchmark from inside the Berth module (go run ./bench)")
	}
	raw, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(raw, []byte("module "+modulePath+"\n")) {
		return "", fmt.Errorf("%s is not the %s module", gomod, modulePath)
	}
	return filepath.Dir(gomod), nil
}

// findTool locates a test tool: the flag, then PATH, then /opt/berth-tools/bin.
func findTool(flagValue, name string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	tools := os.Getenv("BERTH_TOOLS")
	if tools == "" {
		tools = "/opt/berth-tools"
	}
	p := filepath.Join(tools, "bin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found on PATH or in %s/bin (run .ci/install-tools.sh or pass -%s)", name, tools, name)
	}
	return p, nil
}

// checkDisk refuses to start without room for the big layer: the source file, one stored
// copy per registry and one upload in flight, plus slack.
func (b *bench) checkDisk() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", b.dir, err)
	}
	free := int64(st.Bavail) * st.Bsize
	need := int64(256 << 20)
	if b.o.has("push") || b.o.has("pull") {
		need += b.o.size * int64(2+len(b.o.targets))
	}
	if b.o.has("mirror") || b.o.has("cric") {
		need += b.o.size * 2 // the source file (shared with push) and the origin's copy
	}
	if b.o.has("mirror") {
		need += b.o.size * int64(2+len(b.o.targets)) // cache and spool of one mirror at a time, a local copy per registry
	}
	if b.o.has("cric") {
		need += b.o.size * 2 // the destination's copy and one upload in flight
	}
	if b.o.has("gc") {
		need += int64(b.o.gcBlobs) * (16 << 10) * int64(len(b.o.targets)) // 1-4KiB files, their directories, the database
	}
	if need < 3<<30 && b.o.size >= 1<<30 {
		need = 3 << 30
	}
	logf("scratch %s: %s free, %s needed", b.dir, fmtSize(free), fmtSize(need))
	if free < need {
		return fmt.Errorf("not enough disk under %s: %s free, %s needed (use -tmp or a smaller -size)", b.dir, fmtSize(free), fmtSize(need))
	}
	return nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// cleanEnv drops variables that would change a child's configuration: Distribution
// reads every REGISTRY_* variable (ecosystem.md pitfall 17) and Berth every BERTH_*.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "REGISTRY_") || strings.HasPrefix(kv, "BERTH_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// setup builds Berth and starts every selected registry.
func (b *bench) setup(ctx context.Context) error {
	// The cric phase compares clients, not registries, and the gc, scan, hf and
	// replication phases start their own instances: none needs the plain ones.
	need := false
	for _, p := range b.o.phases {
		need = need || !slices.Contains([]string{"cric", "gc", "scan", "hf", "replication"}, p)
	}
	for _, name := range b.o.targets {
		if !need {
			break
		}
		var t *target
		var err error
		switch name {
		case "berth":
			t, err = b.startBerth(ctx)
		case "distribution":
			t, err = b.startDistribution(ctx)
		case "zot":
			t, err = b.startZot(ctx)
		}
		if err != nil {
			return err
		}
		b.targets = append(b.targets, t)
	}
	if b.o.has("push") || b.o.has("layers") {
		var err error
		if b.crane, err = findTool(b.o.crane, "crane"); err != nil {
			return err
		}
	}
	return nil
}

// buildBinary builds a package of this module into the scratch directory once.
func (b *bench) buildBinary(ctx context.Context, pkg, name string) (string, error) {
	if bin, ok := b.built[pkg]; ok {
		return bin, nil
	}
	bin := filepath.Join(b.dir, name)
	logf("go build -o %s %s", bin, pkg)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	build.Dir = b.modRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	if b.built == nil {
		b.built = map[string]string{}
	}
	b.built[pkg] = bin
	return bin, nil
}

// berthBinary is cmd/berth, or the profiling wrapper when profiled.
func (b *bench) berthBinary(ctx context.Context, profiled bool) (string, error) {
	if profiled {
		return b.buildBinary(ctx, "./bench/berthpprof", "berthpprof")
	}
	return b.buildBinary(ctx, "./cmd/berth", "berth")
}

func (b *bench) startBerth(ctx context.Context) (*target, error) {
	return b.startBerthWith(ctx, berthSpec{name: "berth", data: filepath.Join(b.dir, "berth-data"), profiled: b.o.profileDir != ""})
}

// berthSpec describes one Berth process.
type berthSpec struct {
	name, logName string
	data          string
	config        string // YAML written next to the data directory; empty for none
	profiled      bool   // run the pprof wrapper with its profile controls
	noSettle      bool
	helper        bool
}

func (b *bench) startBerthWith(ctx context.Context, spec berthSpec) (*target, error) {
	bin, err := b.berthBinary(ctx, spec.profiled)
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--addr", addr, "--data", spec.data}
	if spec.config != "" {
		name := spec.logName
		if name == "" {
			name = spec.name
		}
		conf := filepath.Join(b.dir, name+".yaml")
		if err := os.WriteFile(conf, []byte(spec.config), 0o644); err != nil {
			return nil, err
		}
		args = append(args, "--config", conf)
	}
	t := &target{name: spec.name, label: "Berth", host: addr, logName: spec.logName, noSettle: spec.noSettle, helper: spec.helper}
	if spec.profiled {
		ctl, err := freePort()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(b.o.profileDir, 0o755); err != nil {
			return nil, err
		}
		args = append([]string{"-pprof", ctl}, args...)
		t.ctl = "http://" + ctl
		t.profDir = b.o.profileDir
	}
	// The access log is off for both registries (fairness: Distribution's is too), and
	// so are Berth's per-client request rates: every benchmark client is one loopback
	// address, and Distribution has no such limit. The limits' own cost per request
	// (a bucket lookup) stays in the measurement.
	env := cleanEnv("BERTH_LOG_ACCESS_LOG=false", "BERTH_LOG_LEVEL=info", "BERTH_THROTTLE_READ_RATE=0", "BERTH_THROTTLE_WRITE_RATE=0")
	if err := b.start(ctx, t, bin, args, env); err != nil {
		return nil, err
	}
	return t, nil
}

func (b *bench) startDistribution(ctx context.Context) (*target, error) {
	return b.startDistributionWith(ctx, "distribution", filepath.Join(b.dir, "distribution-data"), "", false)
}

// startDistributionWith starts Distribution with its data under root; remote non-empty
// runs it as a pull-through cache of that upstream (proxy.remoteurl), which must already
// answer: proxy mode panics at start-up when the upstream is down (ecosystem.md pitfall 2).
func (b *bench) startDistributionWith(ctx context.Context, logName, root, remote string, noSettle bool) (*target, error) {
	bin, err := findTool(b.o.registry, "registry")
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	// Filesystem storage with delete enabled, the in-memory blob descriptor cache of the
	// stock config.yml, and no per-request logging: the access log is disabled and the
	// level is warn, which drops the "response completed" line logged at info.
	conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %s
`, root, addr)
	if remote != "" {
		conf += "proxy:\n  remoteurl: " + remote + "\n"
	}
	confPath := filepath.Join(b.dir, logName+".yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	t := &target{name: "distribution", label: "Distribution", host: addr, logName: logName, noSettle: noSettle}
	if err := b.start(ctx, t, bin, []string{"serve", confPath}, cleanEnv()); err != nil {
		return nil, err
	}
	return t, nil
}

// startZot starts zot (minimal build) with its data under the scratch directory. Same
// durability as the others: storage.commit makes zot fsync each blob before it answers
// (its default leaves that to the page cache). No per-request logging: zot logs every
// request at info, so the level is warn. Its online GC is off, as Distribution has none
// and Berth's reviews wait 24h. Dedupe is off: with it (zot's default) a blob HEAD in a
// new repository finds the blob in any other one and links it, so crane skips the upload
// of every repetition after the first, where Berth and Distribution answer 404 (a blob
// is visible only in repositories that uploaded or mounted it) and receive it again.
func (b *bench) startZot(ctx context.Context) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	root := filepath.Join(b.dir, "zot-data")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	conf, err := json.MarshalIndent(map[string]any{
		"distSpecVersion": "1.1.1",
		"storage":         map[string]any{"rootDirectory": root, "commit": true, "gc": false, "dedupe": false},
		"http":            map[string]any{"address": host, "port": port},
		"log":             map[string]any{"level": "warn"},
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(b.dir, "zot.json")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return nil, err
	}
	t := &target{name: "zot", label: "zot", host: addr}
	if err := b.start(ctx, t, b.o.zot, []string{"serve", confPath}, cleanEnv()); err != nil {
		return nil, err
	}
	return t, nil
}

// zotVersion is what `zot -v` reports of its build (commit and binary type).
func zotVersion(bin string) string {
	out, err := exec.Command(bin, "-v").CombinedOutput()
	var v struct {
		Commit     string `json:"commit"`
		BinaryType string `json:"binary-type"`
	}
	if err != nil || json.Unmarshal(bytes.TrimSpace(out), &v) != nil || v.Commit == "" {
		return "(" + filepath.Base(bin) + ", version unknown)"
	}
	if len(v.Commit) > 12 {
		v.Commit = v.Commit[:12]
	}
	return strings.TrimSpace(v.Commit + " " + v.BinaryType)
}

// start runs a server process and waits until GET /v2/ (or /) answers.
func (b *bench) start(ctx context.Context, t *target, bin string, args, env []string) error {
	logName := t.logName
	if logName == "" {
		logName = t.name
	}
	lf, err := os.Create(filepath.Join(b.dir, logName+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = b.dir
	cmd.Stdout, cmd.Stderr = lf, lf
	// Never outlive the benchmark, even if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start %s: %w", t.name, err)
	}
	t.cmd, t.logf, t.done = cmd, lf, make(chan struct{})
	go func() { _ = cmd.Wait(); close(t.done) }()
	b.procs = append(b.procs, t)
	t.base = &url.URL{Scheme: "http", Host: t.host}
	t.http = newClient(t.base)
	probe := "/v2/"
	if t.name == "fileserver" {
		probe = "/"
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-t.done:
			return fmt.Errorf("%s exited during start-up; see %s", t.name, lf.Name())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := t.http.hc.Get(t.base.String() + probe)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// 401: a registry with authentication on is up too.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 30s (last error %v); see %s", t.name, err, lf.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if t.helper {
		addHelper(t)
	}
	if t.noSettle {
		logf("%s pid %d on %s (%s.log)", t.name, cmd.Process.Pid, t.host, logName)
		return nil
	}
	// Let start-up work (migrations, purges) settle before reading idle memory.
	time.Sleep(time.Second)
	t.idleRSS, _ = t.memKB("VmRSS")
	t.idleRSS <<= 10
	logf("%s pid %d on %s, idle RSS %s", t.name, cmd.Process.Pid, t.host, fmtSize(t.idleRSS))
	return nil
}

// stopAll stops every process the run started (stop is a no-op on stopped ones).
func (b *bench) stopAll() {
	for _, t := range b.procs {
		t.stop()
	}
}

func (t *target) stop() {
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	removeHelper(t)
	select {
	case <-t.done:
	default:
		_ = t.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-t.done:
		case <-time.After(10 * time.Second):
			_ = t.cmd.Process.Kill()
			<-t.done
		}
	}
	if t.logf != nil {
		t.logf.Close()
	}
	t.cmd = nil
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat (100 on Linux).
const clockTicks = 100

// cpu returns the process's user+system CPU time so far.
func (t *target) cpu() time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(t.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may contain spaces) start at state (field 3);
	// utime and stime are fields 14 and 15.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// memKB reads a field such as VmRSS or VmHWM from /proc/<pid>/status, in KiB.
func (t *target) memKB(field string) (int64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(t.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", field, t.cmd.Process.Pid)
}

// profileStart and profileStop bracket a CPU profile of one figure (Berth wrapper only).
func (t *target) profileStart(name string) {
	if t.ctl == "" {
		return
	}
	file := filepath.Join(t.profDir, name+".cpu.pprof")
	resp, err := http.Post(t.ctl+"/bench/cpu/start?file="+url.QueryEscape(file), "text/plain", nil)
	if err != nil {
		logf("profile start: %v", err)
		return
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		logf("profile start: %s %s", resp.Status, msg)
	}
}

func (t *target) profileStop() {
	if t.ctl == "" {
		return
	}
	resp, err := http.Post(t.ctl+"/bench/cpu/stop", "text/plain", nil)
	if err != nil {
		logf("profile stop: %v", err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// finishProfiles saves heap profiles of the profiled Berth.
func (b *bench) finishProfiles(ctx context.Context) {
	for _, t := range b.targets {
		if t.ctl == "" {
			continue
		}
		for _, p := range []string{"heap", "allocs"} {
			resp, err := http.Get(t.ctl + "/debug/pprof/" + p)
			if err != nil {
				logf("save %s profile: %v", p, err)
				continue
			}
			f, err := os.Create(filepath.Join(t.profDir, p+".pprof"))
			if err == nil {
				_, _ = io.Copy(f, resp.Body)
				f.Close()
			}
			resp.Body.Close()
		}
		logf("profiles written to %s (go tool pprof -top %s/<figure>.cpu.pprof)", t.profDir, t.profDir)
	}
}

// startFileServer starts the reference: this program re-executed as a plain Go
// http.FileServer over dir, in its own process so its CPU is measured the same way.
func (b *bench) startFileServer(ctx context.Context, dir string) (*target, error) {
	if b.fs != nil {
		return b.fs, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	raw, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &target{name: "fileserver", label: "http.FileServer", host: addr, raw: raw}
	if err := b.start(ctx, t, self, []string{"fileserver", "-addr", addr, "-dir", dir, "-raw", raw}, cleanEnv()); err != nil {
		return nil, err
	}
	b.fs = t
	return t, nil
}

func fileServerMain(args []string) error {
	fs := flag.NewFlagSet("fileserver", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	dir := fs.String("dir", ".", "directory to serve")
	raw := fs.String("raw", "", "also listen here for the pipeline limit's raw sendfile (see limit.go)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *raw != "" {
		ln, err := net.Listen("tcp", *raw)
		if err != nil {
			return err
		}
		go serveRaw(ln, *dir)
	}
	srv := &http.Server{Addr: *addr, Handler: http.FileServer(http.Dir(*dir)), ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

func numCPU() int { return runtime.NumCPU() }
