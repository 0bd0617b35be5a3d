// The auth suite is issue 5's benchmark: Berth with authentication on (auth.enabled)
// against CNCF Distribution v3.1.2 with an htpasswd file (bcrypt), side by side on
// loopback. It measures manifest GET req/s with Basic credentials and with a Bearer
// token from Berth's /token, the registry CPU per request, and Berth's token issuance
// rate. See README.md (scaleout) and AUTH.md (auth).
//
//	go run ./bench/stacks auth
//	go run ./bench/stacks auth -duration 2s -reference=false

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type authOptions struct {
	conns, tokenConns int
	duration, warmup  time.Duration
	bcryptCost        int
	reference         bool
	registry          string
	tmpBase           string
	keep              bool
	profileDir        string
	jsonOut           string
	timeout           time.Duration
	waitIdle          time.Duration
}

func authMain() {
	o, err := authParseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "authbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.waitIdle > 0 {
		waitIdle(ctx, o.waitIdle)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := authRun(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "authbench:", err)
		os.Exit(1)
	}
}

func authParseFlags(args []string) (authOptions, error) {
	fs := flag.NewFlagSet("authbench", flag.ContinueOnError)
	var o authOptions
	fs.IntVar(&o.conns, "conns", 32, "keep-alive connections for the manifest GET figures")
	fs.IntVar(&o.tokenConns, "token-conns", 16, "keep-alive connections for the token issuance figures")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per registry and figure (cut into ~1s slices that alternate between the registries)")
	fs.DurationVar(&o.warmup, "warmup", 300*time.Millisecond, "unmeasured warm-up before each slice")
	fs.IntVar(&o.bcryptCost, "bcrypt-cost", 5, "bcrypt cost of Distribution's htpasswd entry (htpasswd -B -C; 5 is htpasswd's default)")
	fs.BoolVar(&o.reference, "reference", true, "also measure both registries without authentication (the cost of auth itself)")
	fs.StringVar(&o.registry, "registry", "", "CNCF Distribution binary (default: registry on PATH or /opt/berth-tools/bin/registry)")
	fs.StringVar(&o.tmpBase, "tmp", os.TempDir(), "parent of the scratch directory")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch directory (data, logs)")
	fs.StringVar(&o.profileDir, "profile", "", "run Berth as the pprof wrapper (bench/berthpprof) and write one CPU profile per figure into this directory")
	fs.StringVar(&o.jsonOut, "json", "", "also write the rows as JSON to this file")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "abort the run after this long")
	fs.DurationVar(&o.waitIdle, "wait-idle", 0, "before starting, wait up to this long for the machine to be less than 15% busy (shared machines)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.conns < 1 || o.tokenConns < 1 || o.duration <= 0 || o.warmup < 0 {
		return o, errors.New("-conns and -token-conns must be positive, -duration positive, -warmup non-negative")
	}
	if o.bcryptCost < 4 || o.bcryptCost > 17 {
		return o, errors.New("-bcrypt-cost must be between 4 and 17 (htpasswd's range)")
	}
	if o.profileDir != "" {
		var err error
		if o.profileDir, err = filepath.Abs(o.profileDir); err != nil {
			return o, err
		}
	}
	return o, nil
}

// bench is one run.
type authBench struct {
	o       authOptions
	dir     string
	modRoot string
	res     *results
	procs   []*server

	berth, dist         *server // with authentication
	berthOpen, distOpen *server // without (reference)

	adminPW, distPW string
	users           int // users created so far (fresh credentials per figure)
}

const (
	repo      = "bench/manifest"
	tag       = "v1"
	distUser  = "bench"
	adminUser = "admin"
)

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func randomPassword() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func authRun(ctx context.Context, o authOptions) error {
	start := time.Now()
	modRoot, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(o.tmpBase, "berth-authbench-")
	if err != nil {
		return err
	}
	b := &authBench{o: o, dir: dir, modRoot: modRoot, res: &results{sections: []string{"request rate", "token issuance", "registry CPU", "cold credential"}},
		adminPW: randomPassword(), distPW: randomPassword()}
	defer func() {
		for _, s := range b.procs {
			s.stop()
		}
		if o.keep {
			logf("kept scratch directory %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	busy := idleCheck()
	if busy > 0.1 {
		logf("WARNING: the machine is %.0f%% busy before the run; figures will be noisy", 100*busy)
	}
	if err := b.setup(ctx); err != nil {
		return err
	}
	if err := b.measure(ctx); err != nil {
		return err
	}
	b.notes()
	header := fmt.Sprintf("Berth (auth.enabled) vs CNCF Distribution v3.1.2 (htpasswd, bcrypt cost %d) on 127.0.0.1 (%d CPUs, %s)\n",
		o.bcryptCost, numCPU(), time.Now().UTC().Format(time.RFC3339))
	header += fmt.Sprintf("berth tree %s; manifest GET %d conns, token issuance %d conns, %s measured per registry and figure; total run %s\n",
		treeVersion(modRoot), o.conns, o.tokenConns, o.duration, time.Since(start).Round(time.Second))
	header += fmt.Sprintf("machine CPU busy in the second before the run: %.0f%%\n", 100*busy)
	if o.profileDir != "" {
		header += "PROFILING RUN (Berth = bench/berthpprof, CPU profiler on): profiles in " + o.profileDir + "\n"
	}
	b.res.print(os.Stdout, header)
	if o.jsonOut != "" {
		return b.res.writeJSON(o.jsonOut)
	}
	return nil
}

func (b *authBench) setup(ctx context.Context) error {
	pkg, name := "./cmd/berth", "berth"
	if b.o.profileDir != "" {
		pkg, name = "./bench/berthpprof", "berthprof"
	}
	bin, err := buildBinary(ctx, b.modRoot, b.dir, pkg, name)
	if err != nil {
		return err
	}
	registry, err := findTool(b.o.registry, "registry")
	if err != nil {
		return err
	}
	htpasswd, err := exec.LookPath("htpasswd")
	if err != nil {
		return errors.New("htpasswd not found (apt-get install apache2-utils)")
	}
	authReady := func(st int) bool { return st == http.StatusUnauthorized }
	okReady := func(st int) bool { return st == http.StatusOK }

	// Berth with auth on: the first admin from the config, no access log (the fairness
	// rule of bench/: Distribution's is off too).
	conf := fmt.Sprintf("log:\n  accessLog: false\nauth:\n  enabled: true\n  admin:\n    username: %s\n    password: %s\n", adminUser, b.adminPW)
	b.berth, err = startBerth(ctx, b.dir, berthSpec{name: "berth-auth", label: "Berth", bin: bin, data: filepath.Join(b.dir, "berth-auth-data"),
		config: conf, profileDir: b.o.profileDir, ready: authReady})
	if err != nil {
		return err
	}
	b.procs = append(b.procs, b.berth)

	// Distribution with htpasswd (bcrypt, -B; -C sets the cost).
	out, err := exec.CommandContext(ctx, htpasswd, "-Bbn", "-C", fmt.Sprint(b.o.bcryptCost), distUser, b.distPW).Output()
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	hpath := filepath.Join(b.dir, "htpasswd")
	if err := os.WriteFile(hpath, []byte(strings.TrimSpace(string(out))+"\n"), 0o600); err != nil {
		return err
	}
	b.dist, err = startDistribution(ctx, b.dir, registry, "distribution-htpasswd",
		distConfig(filepath.Join(b.dir, "dist-auth-data"))+"auth:\n  htpasswd:\n    realm: basic-realm\n    path: "+hpath+"\n", authReady)
	if err != nil {
		return err
	}
	b.procs = append(b.procs, b.dist)

	if b.o.reference {
		b.berthOpen, err = startBerth(ctx, b.dir, berthSpec{name: "berth-open", label: "Berth", bin: bin, data: filepath.Join(b.dir, "berth-open-data"),
			config: "log:\n  accessLog: false\n", ready: okReady})
		if err != nil {
			return err
		}
		b.procs = append(b.procs, b.berthOpen)
		b.distOpen, err = startDistribution(ctx, b.dir, registry, "distribution-open", distConfig(filepath.Join(b.dir, "dist-open-data")), okReady)
		if err != nil {
			return err
		}
		b.procs = append(b.procs, b.distOpen)
	}
	// Every registry counts as a helper while another is measured: its idle CPU is not
	// background load.
	for _, s := range b.procs {
		addHelper(s)
	}

	// Berth: a project "bench" (its developer members, typical CI accounts, are created
	// per figure); the image is pushed by the configured admin.
	admin := newRegClient(b.berth.host).withAuth(basic(adminUser, b.adminPW))
	if err := apiJSON(ctx, admin, http.MethodPost, "/api/v1/projects", map[string]any{"name": "bench"}, http.StatusCreated, http.StatusConflict); err != nil {
		return err
	}
	layer := randBytes(3_000_000, 4096)
	clients := []*regClient{admin, newRegClient(b.dist.host).withAuth(basic(distUser, b.distPW))}
	if b.o.reference {
		clients = append(clients, newRegClient(b.berthOpen.host), newRegClient(b.distOpen.host))
	}
	for _, c := range clients {
		if _, err := c.pushImage(ctx, repo, tag, [][]byte{layer}, "authbench"); err != nil {
			return fmt.Errorf("push the test image to %s: %w", c.host, err)
		}
	}
	return nil
}

// distConfig is Distribution's configuration as in bench/: filesystem storage, the stock
// in-memory blob descriptor cache, no per-request logging (no access log, level warn).
func distConfig(root string) string {
	return fmt.Sprintf(`version: 0.1
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
`, root)
}

// apiJSON sends a JSON body to Berth's admin API and checks the status.
func apiJSON(ctx context.Context, c *regClient, method, path string, body any, want ...int) error {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, method, c.url(path), strings.NewReader(string(raw)))
	req.Header.Set("Content-Type", "application/json")
	_, err := c.do(req, false, want...)
	return err
}

// token gets a token from Berth's /token with Basic credentials.
func (b *authBench) token(ctx context.Context, user, pw, scope string) (string, error) {
	c := newRegClient(b.berth.host).withAuth(basic(user, pw))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/token?service=berth&scope="+scope), nil)
	resp, err := c.do(req, true, http.StatusOK)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil || body.Token == "" {
		return "", fmt.Errorf("token response: %v", err)
	}
	return body.Token, nil
}

// leg is one side of a figure: a registry and the request fired at it.
type authLeg struct {
	s     *server
	spec  loadSpec
	conns int
}

// rate measures the legs in slices of about a second that alternate between them, so
// load from outside falls on all alike. It returns one summed result per leg.
func (b *authBench) rate(ctx context.Context, key string, legs []authLeg) ([]rateResult, error) {
	hc := httpClient()
	for _, l := range legs {
		// One checked request first, for a readable error.
		req, _ := http.NewRequestWithContext(ctx, l.spec.method, "http://"+l.spec.host+l.spec.path, nil)
		for k, v := range l.spec.header {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s %s on %s: HTTP %d: %s", key, l.spec.method, l.spec.path, l.s.name, resp.StatusCode, msg)
		}
	}
	nslices := max(1, int(b.o.duration/time.Second))
	slice := b.o.duration / time.Duration(nslices)
	sums := make([]rateResult, len(legs))
	for _, l := range legs {
		l.s.profileStart(key)
	}
	defer func() {
		for _, l := range legs {
			l.s.profileStop()
		}
	}()
	for i := range nslices {
		for j := range legs {
			k := j
			if i%2 == 1 {
				k = len(legs) - 1 - j
			}
			l := legs[k]
			r, err := loadGen(ctx, l.spec, l.conns, b.o.warmup, slice, l.s.name+" "+key, l.s)
			if err != nil {
				return nil, err
			}
			sums[k].addUp(r)
		}
	}
	for k, l := range legs {
		r := sums[k]
		logf("  %s %s: %d requests in %.2fs = %.0f req/s, server CPU %.3f ms/req, load generator CPU %.3f ms/req",
			key, l.s.name, r.requests, r.elapsed.Seconds(), r.perSecond(), r.cpuMS(0), r.client.Seconds()*1000/float64(r.requests))
	}
	return sums, nil
}

// newUser creates a Berth user through the admin API: a system admin, or a developer
// member of project bench. Each figure uses a fresh one, verified (and so cached) just
// before it is measured, so that no auth.basicCacheTTL expiry (1m) falls into a
// measured window; the cold-credential figure measures what an expiry costs.
func (b *authBench) newUser(ctx context.Context, admin bool) (string, string, error) {
	b.users++
	name, pw := fmt.Sprintf("%s%d", map[bool]string{true: "admin", false: "dev"}[admin], b.users), randomPassword()
	c := newRegClient(b.berth.host).withAuth(basic(adminUser, b.adminPW))
	if err := apiJSON(ctx, c, http.MethodPost, "/api/v1/users", map[string]any{"name": name, "password": pw, "admin": admin}, http.StatusCreated); err != nil {
		return "", "", err
	}
	if !admin {
		if err := apiJSON(ctx, c, http.MethodPut, "/api/v1/projects/bench/members", map[string]any{"principal": "user:" + name, "role": "developer"}, http.StatusOK); err != nil {
			return "", "", err
		}
	}
	return name, pw, nil
}

func (b *authBench) measure(ctx context.Context) error {
	manifest := "/v2/" + repo + "/manifests/" + tag
	get := func(s *server, auth string) loadSpec {
		h := map[string]string{"Accept": acceptAll}
		if auth != "" {
			h["Authorization"] = auth
		}
		return loadSpec{host: s.host, method: http.MethodGet, path: manifest, header: h}
	}
	distBasic := authLeg{b.dist, get(b.dist, basic(distUser, b.distPW)), b.o.conns}
	tokenPath := "/token?service=berth&scope=repository:" + repo + ":pull"

	type figure struct {
		key, label string
		berth      func() (authLeg, error) // called just before the figure
		dist       *authLeg
		target     bool // the >= 20x Distribution target applies
	}
	fixed := func(l authLeg) func() (authLeg, error) { return func() (authLeg, error) { return l, nil } }
	basicAs := func(admin bool) func() (authLeg, error) {
		return func() (authLeg, error) {
			user, pw, err := b.newUser(ctx, admin)
			return authLeg{b.berth, get(b.berth, basic(user, pw)), b.o.conns}, err
		}
	}
	figs := []figure{}
	if b.o.reference {
		figs = append(figs, figure{key: "manifest-get-noauth", label: "manifest GET, no auth on either (reference)",
			berth: fixed(authLeg{b.berthOpen, get(b.berthOpen, ""), b.o.conns}), dist: &authLeg{b.distOpen, get(b.distOpen, ""), b.o.conns}})
	}
	figs = append(figs,
		figure{key: "manifest-get-basic-admin", label: "manifest GET, Basic auth (Berth: system admin)",
			berth: basicAs(true), dist: &distBasic, target: true},
		figure{key: "manifest-get-basic-dev", label: "manifest GET, Basic auth (Berth: project developer)",
			berth: basicAs(false), dist: &distBasic, target: true},
		figure{key: "manifest-get-bearer", label: "manifest GET, Berth Bearer token (developer's, pull) vs Dist Basic",
			berth: func() (authLeg, error) {
				user, pw, err := b.newUser(ctx, false)
				if err != nil {
					return authLeg{}, err
				}
				tok, err := b.token(ctx, user, pw, "repository:"+repo+":pull")
				return authLeg{b.berth, get(b.berth, "Bearer "+tok), b.o.conns}, err
			}, dist: &distBasic, target: true},
	)
	tok := func(admin bool) func() (authLeg, error) {
		return func() (authLeg, error) {
			user, pw, err := b.newUser(ctx, admin)
			return authLeg{b.berth, loadSpec{host: b.berth.host, method: http.MethodGet, path: tokenPath,
				header: map[string]string{"Authorization": basic(user, pw)}}, b.o.tokenConns}, err
		}
	}
	figs = append(figs,
		figure{key: "token-admin", label: "GET /token with Basic (system admin)", berth: tok(true)},
		figure{key: "token-dev", label: "GET /token with Basic (project developer)", berth: tok(false)},
	)
	for _, f := range figs {
		logf("figure %s", f.key)
		bl, err := f.berth()
		if err != nil {
			return err
		}
		legs := []authLeg{bl}
		if f.dist != nil {
			legs = append(legs, *f.dist)
		}
		rs, err := b.rate(ctx, f.key, legs)
		if err != nil {
			return err
		}
		dRate, dCPU := nan, nan
		if f.dist != nil {
			dRate, dCPU = rs[1].perSecond(), rs[1].cpuMS(0)
		}
		label := fmt.Sprintf("%s, %d conns", f.label, bl.conns)
		if strings.HasPrefix(f.key, "token") {
			b.res.add("token issuance", label, "tokens/s", rs[0].perSecond(), nan).atLeast(">=2000/s", 2000)
			b.res.add("registry CPU", label, "CPU ms/token", rs[0].cpuMS(0), nan)
			continue
		}
		x := b.res.add("request rate", label, "req/s", rs[0].perSecond(), dRate)
		if f.target {
			x.relative(">=20x Dist", 20)
		}
		b.res.add("registry CPU", label, "CPU ms/req", rs[0].cpuMS(0), dCPU)
	}
	return b.coldBurst(ctx, get)
}

// coldBurst: -conns requests at once, each on its own connection, with a Basic
// credential Berth has not verified yet (as after every basicCacheTTL expiry of a
// credential in use), against the same burst on Distribution. Median of 3.
func (b *authBench) coldBurst(ctx context.Context, get func(*server, string) loadSpec) error {
	logf("figure cold-basic-burst")
	var bt, bc, dt, dc []time.Duration
	for range 3 {
		user, pw, err := b.newUser(ctx, false)
		if err != nil {
			return err
		}
		el, cpu, err := burst(ctx, get(b.berth, basic(user, pw)), b.o.conns, b.berth)
		if err != nil {
			return err
		}
		bt, bc = append(bt, el), append(bc, cpu)
		el, cpu, err = burst(ctx, get(b.dist, basic(distUser, b.distPW)), b.o.conns, b.dist)
		if err != nil {
			return err
		}
		dt, dc = append(dt, el), append(dc, cpu)
		logf("  cold burst: berth %.3fs (CPU %.2fs), distribution %.3fs (CPU %.2fs)", bt[len(bt)-1].Seconds(), bc[len(bc)-1].Seconds(), el.Seconds(), cpu.Seconds())
	}
	label := fmt.Sprintf("%d concurrent manifest GETs, Basic credential not cached (every 1m expiry)", b.o.conns)
	b.res.add("cold credential", label+": all answered", "s", median(bt).Seconds(), median(dt).Seconds())
	b.res.add("cold credential", label, "CPU s", median(bc).Seconds(), median(dc).Seconds())
	return nil
}

// burst sends spec once on each of n fresh connections at the same moment and waits for
// every reply (200 required); it returns the time until the last reply and s's CPU.
func burst(ctx context.Context, spec loadSpec, n int, s *server) (time.Duration, time.Duration, error) {
	var raw strings.Builder
	fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: berth-bench\r\n", spec.method, spec.path, spec.host)
	for k, v := range spec.header {
		fmt.Fprintf(&raw, "%s: %s\r\n", k, v)
	}
	raw.WriteString("\r\n")
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		c, err := net.DialTimeout("tcp", spec.host, 5*time.Second)
		if err != nil {
			return 0, 0, err
		}
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		conns[i] = c
	}
	errs := make(chan error, n)
	w := openWindow(s)
	for _, c := range conns {
		go func() {
			if _, err := io.WriteString(c, raw.String()); err != nil {
				errs <- err
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: spec.method})
			if err != nil {
				errs <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s %s on %s: HTTP %d", spec.method, spec.path, s.name, resp.StatusCode)
			}
			errs <- err
		}()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	el, cpus := w.close(s.name + " cold burst")
	return el, cpus[0], first
}

// notes adds what the table needs to be read right.
func (b *authBench) notes() {
	b.res.note("%s", background.summary())
	b.res.note("Distribution checks the htpasswd bcrypt hash (cost %d) on every request; Berth runs PBKDF2-HMAC-SHA-256 (600000 iterations) once per username/password pair per auth.basicCacheTTL (1m) and checks a token's signature once per token (then cached until it expires)",
		b.o.bcryptCost)
	b.res.note("the Bearer rows compare Berth with a token against Distribution with Basic (Distribution has no token server of its own)")
	for _, s := range b.procs {
		if strings.HasPrefix(s.name, "berth") {
			if n := countLines(s.logPath, "audit queue full"); n > 0 {
				b.res.note("%s: %d audit entries dropped (\"audit queue full\" in %s)", s.name, n, filepath.Base(s.logPath))
			}
			if n := countLines(s.logPath, `"level":"ERROR"`); n > 0 {
				b.res.note("%s logged %d errors", s.name, n)
			}
		}
		if hwm, err := memKB(s.pid(), "VmHWM"); err == nil {
			b.res.note("%s peak RSS %.1f MiB", s.name, float64(hwm)/1024)
		}
	}
}
