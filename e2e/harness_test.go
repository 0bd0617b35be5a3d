// Package e2e runs a real berth process and drives it with real clients (crane, regctl,
// oras, skopeo, helm, the OCI conformance suite) and raw HTTP. Tools come from
// .ci/install-tools.sh; outside CI a missing tool skips its test with the reason, in CI
// (CI=true) it fails.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/dist"
)

// berthBin is the berth binary built once for the whole package.
var berthBin string

// TestMain builds berth and cric once, as the release and the image build them
// (dist.Build: static, -trimpath, version and commit stamped), so the e2e tests run
// the binaries Berth ships, and TestImage and TestRelease find the linux/amd64
// packages (and, under make e2e-fips, the FIPS ones) already compiled in the build
// cache instead of compiling them a second time with other flags.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := buildHarness(dir); err != nil {
		fmt.Fprintln(os.Stderr, "building berth:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildHarness(dir string) error {
	ctx := context.Background()
	src, err := dist.GitSource(ctx, "..", "")
	if err != nil { // not a git checkout: the build needs no commit
		src = dist.Source{Dir: "..", Version: "devel", Commit: "unknown"}
	}
	if v := os.Getenv("E2E_GOFIPS140"); v != "" { // make e2e-fips: the FIPS build
		if v != dist.FIPSModule {
			return fmt.Errorf("E2E_GOFIPS140=%s: the FIPS build uses module %s", v, dist.FIPSModule)
		}
		src.FIPS = true
	}
	bins, err := dist.Build(ctx, src, runtime.GOOS, runtime.GOARCH, dir)
	if err != nil {
		return err
	}
	berthBin, cricPath = bins["berth"], bins["cric"]
	return nil
}

// requireTool returns the path of a test tool, skipping (locally) or failing (CI) when
// it is not installed.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; CI must run .ci/install-tools.sh first", name)
	}
	t.Skipf("%s is not installed (run .ci/install-tools.sh and source .ci/env.sh)", name)
	return ""
}

// Berth is a running berth process.
type Berth struct {
	t       testing.TB
	Addr    string // host:port
	Data    string
	Config  string
	Env     []string
	cmd     *exec.Cmd
	logPath string
}

// BerthOptions tune startBerth.
type BerthOptions struct {
	Config string   // YAML appended to the generated config
	Env    []string // extra environment
	Data   string   // reuse a data dir (restart); empty makes one
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBerth starts berth on a free loopback port with its own data dir and waits until
// it answers. It is stopped when the test ends.
func startBerth(t testing.TB, o BerthOptions) *Berth {
	t.Helper()
	b := &Berth{t: t, Data: o.Data, Env: o.Env}
	if b.Data == "" {
		b.Data = t.TempDir()
	}
	b.Config = filepath.Join(b.Data, "berth.yaml")
	cfg := "log:\n  format: text\n  level: info\n" + o.Config
	if err := os.WriteFile(b.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	b.start()
	t.Cleanup(b.Stop)
	return b
}

func (b *Berth) start() {
	t := b.t
	t.Helper()
	b.Addr = freeAddr(t)
	b.logPath = filepath.Join(b.Data, fmt.Sprintf("berth-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	b.cmd = newBerthCmd(b)
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + b.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if exited(b.cmd.Process.Pid) {
			b.dumpLog()
			t.Fatalf("berth exited at start (see its log above)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.dumpLog()
	t.Fatalf("berth did not start on %s", b.Addr)
}

// exited reports whether the child pid has ended (a zombie not yet waited for), so a
// berth that fails at start is reported at once instead of after the start timeout.
func exited(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and may hold spaces.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] == 'Z'
	}
	return false
}

// berthEnv is added to every berth's environment: E2E_BERTH_ENV, space-separated
// NAME=VALUE pairs (make e2e-fips runs suites again with GODEBUG=fips140=only).
var berthEnv = strings.Fields(os.Getenv("E2E_BERTH_ENV"))

func newBerthCmd(b *Berth) *exec.Cmd {
	cmd := exec.Command(berthBin, "serve", "--config", b.Config, "--addr", b.Addr, "--data", b.Data)
	cmd.Env = append(append(os.Environ(), berthEnv...), b.Env...)
	return cmd
}

// URL returns an http URL on the server.
func (b *Berth) URL(path string) string { return "http://" + b.Addr + path }

// Stop terminates the process gracefully (SIGTERM) and waits.
func (b *Berth) Stop() {
	if b.cmd == nil || b.cmd.Process == nil || b.cmd.ProcessState != nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
	if b.t.Failed() {
		b.dumpLog()
	}
}

// Kill terminates the process with SIGKILL, as a crash would.
func (b *Berth) Kill() {
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
}

// Restart starts a fresh process on the same data directory (new port).
func (b *Berth) Restart() {
	b.Stop()
	b.start()
}

func (b *Berth) dumpLog() {
	out, _ := os.ReadFile(b.logPath)
	if len(out) > 8000 {
		out = out[len(out)-8000:]
	}
	b.t.Logf("berth log tail:\n%s", out)
}

// toolEnv is an isolated environment for client tools: their config and credentials go
// under a temp dir, never the real HOME.
func toolEnv(t testing.TB) []string {
	t.Helper()
	home := t.TempDir()
	env := []string{
		"HOME=" + home,
		"DOCKER_CONFIG=" + filepath.Join(home, ".docker"),
		"REGCTL_CONFIG=" + filepath.Join(home, "regctl.json"),
		"REGISTRY_AUTH_FILE=" + filepath.Join(home, "containers-auth.json"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
	}
	_ = os.MkdirAll(filepath.Join(home, ".docker"), 0o700)
	return env
}

// run runs a command with env added, failing the test on error; it returns stdout.
func run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// runErr runs a command and returns combined output and the error.
func runErr(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// runErrIn is runErr in a working directory.
func runErrIn(dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
