package main

// Helpers shared by copy between bench/stacks (auth) and bench/stacks (the file is the
// same in both; bench/ itself is package main and cannot be imported): processes, CPU
// and memory from /proc, the keep-alive load generator, measurement windows with the
// background-load accounting, and the results table.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
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
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
)

const modulePath = "github.com/berth-registry/berth"

// logf reports progress on stderr, so stdout carries only the table.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the benchmark from inside the Berth module")
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

// findTool locates a tool: the flag, then PATH, then /opt/berth-tools/bin.
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
		return "", fmt.Errorf("%s not found on PATH or in %s/bin (. .ci/env.sh)", name, tools)
	}
	return p, nil
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
// reads every REGISTRY_* variable and Berth every BERTH_*.
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

// buildBinary builds a package of the module into dir.
func buildBinary(ctx context.Context, modRoot, dir, pkg, name string) (string, error) {
	bin := filepath.Join(dir, name)
	logf("go build -o %s %s", bin, pkg)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	build.Dir = modRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	return bin, nil
}

// treeVersion names the Berth source measured (read-only git plumbing, no index lock).
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

// ---------------------------------------------------------------- processes

// proc is a child process; it dies with the benchmark (Pdeathsig).
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func startProc(dir, name, bin string, args, env []string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after 10s; a no-op on a stopped process.
func (p *proc) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) cpu() time.Duration { return pidCPU(p.pid(), false) }

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
const clockTicks = 100

// statFields returns the fields of /proc/<pid>/stat after the command name: f[0] is
// field 3 (state), f[1] ppid, f[6] flags, f[11..14] utime, stime, cutime, cstime.
func statFields(pid int) []string {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return nil
	}
	return f
}

// pidCPU is a process's user+system CPU time; with children, plus that of its reaped
// children.
func pidCPU(pid int, children bool) time.Duration {
	f := statFields(pid)
	if f == nil {
		return 0
	}
	var ticks int64
	n := 2
	if children {
		n = 4
	}
	for _, s := range f[11 : 11+n] {
		v, _ := strconv.ParseInt(s, 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// treeCPU is the CPU time of a process tree (PostgreSQL's postmaster and backends,
// nginx's master and workers): every live member's own and reaped children's time, so
// each CPU second is counted once.
type treeCPU struct {
	root func() int // the root pid (0: not running)
}

func (t *treeCPU) cpu() time.Duration {
	root := t.root()
	if root <= 0 {
		return 0
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	parent := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); f != nil {
			pp, _ := strconv.Atoi(f[1])
			parent[pid] = pp
		}
	}
	inTree := func(pid int) bool {
		for range 64 {
			if pid == root {
				return true
			}
			pp, ok := parent[pid]
			if !ok || pp <= 1 {
				return false
			}
			pid = pp
		}
		return false
	}
	var sum time.Duration
	for pid := range parent {
		if inTree(pid) {
			sum += pidCPU(pid, true)
		}
	}
	return sum
}

// memKB reads a field such as VmRSS or VmHWM from /proc/<pid>/status, in KiB.
func memKB(pid int, field string) (int64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", field, pid)
}

// cpuMeter is anything whose CPU time can be read: a process or a process tree. Meters
// are pointers, so they compare by identity.
type cpuMeter interface{ cpu() time.Duration }

// sumMeter adds up several meters (two replicas).
type sumMeter struct{ ms []cpuMeter }

func (s *sumMeter) cpu() time.Duration {
	var c time.Duration
	for _, m := range s.ms {
		c += m.cpu()
	}
	return c
}

// flatten lists the meters, with sumMeters replaced by their parts.
func flatten(ms []cpuMeter) []cpuMeter {
	var out []cpuMeter
	for _, m := range ms {
		if s, ok := m.(*sumMeter); ok {
			out = append(out, flatten(s.ms)...)
		} else {
			out = append(out, m)
		}
	}
	return out
}

// waitHTTP polls url until it answers with a status ok accepts.
func waitHTTP(ctx context.Context, p *proc, url string, ok func(int) bool, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited during start-up; see %s", p.name, p.logPath)
		}
		resp, err := hc.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if ok(resp.StatusCode) {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		last = err
		if time.Now().After(deadline) {
			name := url
			if p != nil {
				name = p.name + " (" + p.logPath + ")"
			}
			return fmt.Errorf("%s not ready after %s: %v", name, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ---------------------------------------------------------------- measurement windows

// machineCPU returns busy and total CPU time of the machine from /proc/stat: user, nice,
// system and steal, less kernel threads (writeback, loopback softirq work is left out).
func machineCPU() (busy, total time.Duration) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var v [8]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	all := v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]
	tick := time.Second / clockTicks
	return time.Duration(v[0]+v[1]+v[2]+v[7])*tick - kernelThreadsCPU(), time.Duration(all) * tick
}

const pfKthread = 0x00200000

func kernelThreadsCPU() time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(pid)
		if f == nil {
			continue
		}
		if flags, _ := strconv.ParseUint(f[6], 10, 64); flags&pfKthread != 0 {
			sum += pidCPU(pid, false)
		}
	}
	return sum
}

// ownCPU is the CPU time of this process and its reaped children.
func ownCPU() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano())
}

// helpers are processes of the benchmark that are not under test in a window but are
// not background load either (the S3 server, PostgreSQL, nginx, the idle registry).
var helpers struct {
	mu sync.Mutex
	ms []cpuMeter
}

func addHelper(m cpuMeter) {
	helpers.mu.Lock()
	defer helpers.mu.Unlock()
	helpers.ms = append(helpers.ms, m)
}

// helpersCPU sums the helpers' CPU time, leaving out the meters under test.
func helpersCPU(except []cpuMeter) time.Duration {
	helpers.mu.Lock()
	ms := slices.Clone(helpers.ms)
	helpers.mu.Unlock()
	except = flatten(except)
	var sum time.Duration
	for _, m := range ms {
		if !slices.Contains(except, m) {
			sum += m.cpu()
		}
	}
	return sum
}

// window measures one figure: each meter's CPU, ours and everyone else's.
type window struct {
	meters                   []cpuMeter
	start                    time.Time
	m0                       []time.Duration
	own0, busy0, total0, hl0 time.Duration
}

func openWindow(meters ...cpuMeter) *window {
	w := &window{meters: meters}
	w.busy0, w.total0 = machineCPU()
	w.hl0 = helpersCPU(meters)
	for _, m := range meters {
		w.m0 = append(w.m0, m.cpu())
	}
	w.own0, w.start = ownCPU(), time.Now()
	return w
}

// close returns the elapsed time and each meter's CPU time, and books the rest of the
// machine's busy time, less helpers, as background load.
func (w *window) close(label string) (time.Duration, []time.Duration) {
	el := time.Since(w.start)
	own := ownCPU() - w.own0
	cpus := make([]time.Duration, len(w.meters))
	var mine time.Duration
	for i, m := range w.meters {
		cpus[i] = m.cpu() - w.m0[i]
		mine += cpus[i]
	}
	hl := helpersCPU(w.meters) - w.hl0
	busy, total := machineCPU()
	background.add(label, (busy-w.busy0)-own-mine-hl, total-w.total0)
	return el, cpus
}

type backgroundLoad struct {
	mu              sync.Mutex
	other, capacity time.Duration
	worst           float64
	worstName       string
}

var background backgroundLoad

func (b *backgroundLoad) add(label string, other, capacity time.Duration) {
	if capacity <= 0 {
		return
	}
	other = max(other, 0)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.other += other
	b.capacity += capacity
	if f := float64(other) / float64(capacity); f > b.worst {
		b.worst, b.worstName = f, label
	}
}

func (b *backgroundLoad) summary() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.capacity == 0 {
		return "no measured windows"
	}
	avg := float64(b.other) / float64(b.capacity)
	hint := ""
	if avg > 0.1 {
		hint = " -- the machine was shared; rerun on a quiet machine for clean figures"
	}
	worst := ""
	if b.worstName != "" {
		worst = " (" + b.worstName + ")"
	}
	return fmt.Sprintf("CPU used by other processes during the measured windows: %.0f%% of the machine on average, %.0f%% at worst%s%s",
		100*avg, 100*b.worst, worst, hint)
}

// waitIdle waits up to limit for a second in which the machine is less than 15% busy.
func waitIdle(ctx context.Context, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for ctx.Err() == nil {
		busy := idleCheck()
		if busy < 0.15 {
			return
		}
		if time.Now().After(deadline) {
			logf("machine still %.0f%% busy after waiting %s; starting anyway", 100*busy, limit)
			return
		}
		logf("machine %.0f%% busy; waiting for it to quieten", 100*busy)
		_ = sleepCtx(ctx, 4*time.Second)
	}
}

// idleCheck samples the machine for a second.
func idleCheck() float64 {
	b0, t0 := machineCPU()
	time.Sleep(time.Second)
	b1, t1 := machineCPU()
	if t1 <= t0 {
		return 0
	}
	return float64(b1-b0) / float64(t1-t0)
}

// ---------------------------------------------------------------- load generator

// rateResult is one request-rate measurement.
type rateResult struct {
	requests int64
	elapsed  time.Duration
	cpu      []time.Duration // per meter, over the measured window
	client   time.Duration   // this process's CPU (the load generator)
}

func (r *rateResult) addUp(o rateResult) {
	r.requests += o.requests
	r.elapsed += o.elapsed
	r.client += o.client
	if r.cpu == nil {
		r.cpu = make([]time.Duration, len(o.cpu))
	}
	for i, c := range o.cpu {
		r.cpu[i] += c
	}
}

func (r rateResult) perSecond() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// cpuMS is meter i's CPU milliseconds per request.
func (r rateResult) cpuMS(i int) float64 {
	if r.requests == 0 || i >= len(r.cpu) {
		return nan
	}
	return float64(r.cpu[i]) / float64(time.Millisecond) / float64(r.requests)
}

// loadSpec is one request fired over and over.
type loadSpec struct {
	host   string // 127.0.0.1:port
	method string
	path   string
	header map[string]string
	want   int // expected status (default 200)
}

// loadGen fires spec on conns keep-alive connections: a pre-serialised HTTP/1.1 request
// written to the socket and the reply parsed with http.ReadResponse, which costs the
// client far less CPU than net/http.Client. Every reply must have the wanted status.
func loadGen(ctx context.Context, spec loadSpec, conns int, warmup, dur time.Duration, label string, meters ...cpuMeter) (rateResult, error) {
	want := spec.want
	if want == 0 {
		want = http.StatusOK
	}
	var raw strings.Builder
	fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: berth-bench\r\n", spec.method, spec.path, spec.host)
	for k, v := range spec.header {
		fmt.Fprintf(&raw, "%s: %s\r\n", k, v)
	}
	raw.WriteString("\r\n")
	reqBytes := []byte(raw.String())

	var ok, bad atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	hardDeadline := time.Now().Add(warmup + dur + 30*time.Second)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(msg string) {
				bad.Add(1)
				firstErr.CompareAndSwap(nil, msg)
			}
			req := &http.Request{Method: spec.method}
			var conn net.Conn
			var br *bufio.Reader
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if conn == nil {
					c, err := net.DialTimeout("tcp", spec.host, 5*time.Second)
					if err != nil {
						fail(err.Error())
						time.Sleep(10 * time.Millisecond)
						continue
					}
					_ = c.SetDeadline(hardDeadline)
					conn, br = c, bufio.NewReaderSize(c, 16<<10)
				}
				if _, err := conn.Write(reqBytes); err != nil {
					fail(err.Error())
					conn.Close()
					conn = nil
					continue
				}
				resp, err := http.ReadResponse(br, req)
				if err != nil {
					fail(err.Error())
					conn.Close()
					conn = nil
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					fail(fmt.Sprintf("%s %s: HTTP %d", spec.method, spec.path, resp.StatusCode))
				} else {
					ok.Add(1)
				}
				if resp.Close {
					conn.Close()
					conn = nil
				}
			}
		}()
	}
	sleep := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var res rateResult
	var errs int64
	err := sleep(warmup)
	if err == nil {
		w := openWindow(meters...)
		n0, e0, c0 := ok.Load(), bad.Load(), ownCPU()
		err = sleep(dur)
		n1, e1, c1 := ok.Load(), bad.Load(), ownCPU()
		el, cpus := w.close(label)
		res = rateResult{requests: n1 - n0, elapsed: el, cpu: cpus, client: c1 - c0}
		errs = e1 - e0
	}
	close(stop)
	wg.Wait()
	if err != nil {
		return res, err
	}
	if errs > 0 || res.requests == 0 {
		first, _ := firstErr.Load().(string)
		return res, fmt.Errorf("%s %s on %s: %d ok, %d errors (first: %s)", spec.method, spec.path, label, res.requests, errs, first)
	}
	return res, nil
}

// ---------------------------------------------------------------- HTTP client

// httpClient is the plain net/http client for setup work and transfers.
func httpClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Minute, Transport: &http.Transport{
		Proxy:               nil, // loopback only
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      64 << 10,
	}}
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ---------------------------------------------------------------- results

var nan = math.NaN()

// row is one figure: Berth's value, Distribution's and a target.
type row struct {
	Section, Figure, Unit string
	Berth, Dist           float64
	Target, Verdict       string
	check                 func(b, d float64) bool
	needsDist             bool
}

type results struct {
	rows     []*row
	notes    []string
	sections []string // print order
}

func (r *results) add(section, figure, unit string, berth, dist float64) *row {
	x := &row{Section: section, Figure: figure, Unit: unit, Berth: berth, Dist: dist}
	if !slices.Contains(r.sections, section) {
		r.sections = append(r.sections, section)
	}
	r.rows = append(r.rows, x)
	return x
}

func (r *results) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// relative: Berth >= k x Distribution (rates).
func (x *row) relative(desc string, k float64) *row {
	x.Target, x.needsDist = desc, true
	x.check = func(b, d float64) bool { return b >= k*d }
	return x
}

// faster: Berth's time <= Distribution's / k (times).
func (x *row) faster(desc string, k float64) *row {
	x.Target, x.needsDist = desc, true
	x.check = func(b, d float64) bool { return b*k <= d }
	return x
}

func (x *row) atLeast(desc string, v float64) *row {
	x.Target = desc
	x.check = func(b, _ float64) bool { return b >= v }
	return x
}

func (x *row) atMost(desc string, v float64) *row {
	x.Target = desc
	x.check = func(b, _ float64) bool { return b <= v }
	return x
}

func (x *row) verdict() string {
	if x.check == nil || math.IsNaN(x.Berth) || (x.needsDist && math.IsNaN(x.Dist)) {
		return ""
	}
	if x.check(x.Berth, x.Dist) {
		return "PASS"
	}
	return "MISS"
}

func fmtVal(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case math.Abs(v) >= 0.01:
		return strconv.FormatFloat(v, 'f', 3, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func fmtRatio(b, d float64) string {
	if math.IsNaN(b) || math.IsNaN(d) || d == 0 {
		return "-"
	}
	r := b / d
	if r >= 100 {
		return strconv.FormatFloat(r, 'f', 0, 64) + "x"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "x"
}

// print writes the table as Markdown, then the notes and the missed targets.
func (r *results) print(w io.Writer, header string) {
	fmt.Fprintln(w)
	fmt.Fprint(w, header)
	cells := [][]string{{"figure", "unit", "Berth", "Distribution", "Berth/Dist", "target (Berth)", "verdict"}}
	var misses []string
	for _, sec := range r.sections {
		header := false
		for _, x := range r.rows {
			if x.Section != sec {
				continue
			}
			if !header {
				cells = append(cells, []string{"**" + sec + "**", "", "", "", "", "", ""})
				header = true
			}
			x.Verdict = x.verdict()
			if x.Verdict == "MISS" {
				misses = append(misses, x.Figure+" ("+x.Unit+")")
			}
			cells = append(cells, []string{x.Figure, x.Unit, fmtVal(x.Berth), fmtVal(x.Dist), fmtRatio(x.Berth, x.Dist), x.Target, x.Verdict})
		}
	}
	fmt.Fprintln(w)
	printCells(w, cells, 3)
	fmt.Fprintln(w)
	for _, n := range r.notes {
		fmt.Fprintln(w, "* "+n)
	}
	if len(misses) > 0 {
		fmt.Fprintf(w, "* targets missed (%d): %s\n", len(misses), strings.Join(misses, "; "))
	} else {
		fmt.Fprintln(w, "* all measured targets met")
	}
}

// printCells prints a Markdown table: two text columns, numeric columns right-aligned,
// then text columns.
func printCells(w io.Writer, cells [][]string, numeric int) {
	width := make([]int, len(cells[0]))
	for _, c := range cells {
		for i, v := range c {
			width[i] = max(width[i], utf8.RuneCountInString(v))
		}
	}
	isNum := func(i int) bool { return i >= 2 && i < 2+numeric }
	line := func(c []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, v := range c {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(v))
			if isNum(i) {
				b.WriteString(" " + pad + v + " |")
			} else {
				b.WriteString(" " + v + pad + " |")
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(cells[0])
	sep := make([]string, len(width))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
		if isNum(i) {
			sep[i] = sep[i][:width[i]-1] + ":"
		}
	}
	line(sep)
	for _, c := range cells[1:] {
		line(c)
	}
}

// writeJSON writes the rows and notes (NaN, "not measured", as -1).
func (r *results) writeJSON(path string) error {
	rows := make([]row, len(r.rows))
	for i, x := range r.rows {
		rows[i] = *x
		rows[i].check = nil
		if math.IsNaN(rows[i].Berth) {
			rows[i].Berth = -1
		}
		if math.IsNaN(rows[i].Dist) {
			rows[i].Dist = -1
		}
	}
	raw, err := json.MarshalIndent(map[string]any{"rows": rows, "notes": r.notes}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}

// parseSize reads 1GiB, 256MiB, 64KiB, 1G, 512M, 500MB, 4096.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func fmtSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }

func numCPU() int { return runtime.NumCPU() }

// sleepCtx sleeps d unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ---------------------------------------------------------------- registries

// server is a registry (or a load balancer) under test: its process and address.
type server struct {
	*proc
	label   string
	host    string // 127.0.0.1:port
	ctl     string // profiling control base URL (berthprof wrapper only)
	profDir string
}

func (s *server) cpu() time.Duration { return s.proc.cpu() }

// berthSpec describes one Berth process.
type berthSpec struct {
	name, label string
	bin         string // cmd/berth, or the berthprof wrapper
	data        string
	config      string // YAML; written to <dir>/<name>.yaml
	env         []string
	profileDir  string // run bin as the profiling wrapper, profiles into this directory
	ready       func(status int) bool
}

// startBerth runs `berth serve` on a free loopback port and waits until GET /v2/
// answers as spec.ready accepts (default 200).
func startBerth(ctx context.Context, dir string, spec berthSpec) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--addr", addr, "--data", spec.data}
	if spec.config != "" {
		conf := filepath.Join(dir, spec.name+".yaml")
		if err := os.WriteFile(conf, []byte(spec.config), 0o600); err != nil {
			return nil, err
		}
		args = append(args, "--config", conf)
	}
	s := &server{label: spec.label, host: addr}
	if spec.profileDir != "" {
		ctl, err := freePort()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(spec.profileDir, 0o755); err != nil {
			return nil, err
		}
		args = append([]string{"-pprof", ctl}, args...)
		s.ctl, s.profDir = "http://"+ctl, spec.profileDir
	}
	if s.proc, err = startProc(dir, spec.name, spec.bin, args, cleanEnv(spec.env...)); err != nil {
		return nil, err
	}
	ready := spec.ready
	if ready == nil {
		ready = func(st int) bool { return st == http.StatusOK }
	}
	if err := waitHTTP(ctx, s.proc, "http://"+addr+"/v2/", ready, 60*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	logf("%s pid %d on %s (%s)", spec.name, s.pid(), addr, s.logPath)
	return s, nil
}

// startDistribution runs Distribution with the given configuration (http.addr is
// appended) and waits until GET /v2/ answers as ready accepts.
func startDistribution(ctx context.Context, dir, bin, name, conf string, ready func(int) bool) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	conf += "http:\n  addr: " + addr + "\n"
	path := filepath.Join(dir, name+".yml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	s := &server{label: "Distribution", host: addr}
	if s.proc, err = startProc(dir, name, bin, []string{"serve", path}, cleanEnv()); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, s.proc, "http://"+addr+"/v2/", ready, 60*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	logf("%s pid %d on %s (%s)", name, s.pid(), addr, s.logPath)
	return s, nil
}

// profileStart and profileStop bracket a CPU profile (berthprof wrapper only).
func (s *server) profileStart(name string) {
	if s == nil || s.ctl == "" {
		return
	}
	file := filepath.Join(s.profDir, name+".cpu.pprof")
	resp, err := http.Post(s.ctl+"/bench/cpu/start?file="+url.QueryEscape(file), "text/plain", nil)
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

func (s *server) profileStop() {
	if s == nil || s.ctl == "" {
		return
	}
	resp, err := http.Post(s.ctl+"/bench/cpu/stop", "text/plain", nil)
	if err != nil {
		logf("profile stop: %v", err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// countLines counts the occurrences of substr in a file (one per log line).
func countLines(path, substr string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(raw), substr)
}
