package e2e

// Releases (issue 17): berth-dist release, as `make release` runs it, cross-compiles
// archives with SHA-256 checksums, reproducibly; the binaries print their stamped
// version, commit, Go version and FIPS state.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// untar extracts a .tar.gz into dir and returns the names it held.
func untar(t *testing.T, archive, dir string) []string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		b, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, b, os.FileMode(h.Mode)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRelease(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("runs the linux/amd64 archive's binaries; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	work := t.TempDir()
	// Two of the four platforms keep CI short; make release builds all four.
	release := func(out string) {
		t.Helper()
		if o, err := runErrIn("..", nil, "go", "run", "./cmd/berth-dist", "release", "-version", "v0.0.0-e2e", "-platforms", "linux/amd64,darwin/arm64", "-out", out); err != nil {
			t.Fatalf("berth-dist release: %v\n%s", err, o)
		}
	}
	a, b := filepath.Join(work, "a"), filepath.Join(work, "b")
	release(a)
	release(b)
	sums, _ := os.ReadFile(filepath.Join(a, "SHA256SUMS"))
	sumsB, _ := os.ReadFile(filepath.Join(b, "SHA256SUMS"))
	if len(sums) == 0 || !bytes.Equal(sums, sumsB) {
		t.Fatalf("two releases of one commit differ:\n%s\n%s", sums, sumsB)
	}
	for _, want := range []string{"berth_v0.0.0-e2e_darwin_arm64.tar.gz", "berth_v0.0.0-e2e_linux_amd64.tar.gz"} {
		if !strings.Contains(string(sums), "  "+want+"\n") {
			t.Fatalf("SHA256SUMS lacks %s:\n%s", want, sums)
		}
	}
	if out, err := runErrIn(a, nil, "sha256sum", "-c", "SHA256SUMS"); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	commit, err := exec.Command("git", "-C", "..", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	x := filepath.Join(work, "x")
	os.MkdirAll(x, 0o755)
	names := untar(t, filepath.Join(a, "berth_v0.0.0-e2e_linux_amd64.tar.gz"), x)
	if strings.Join(names, " ") != "berth_v0.0.0-e2e_linux_amd64/ berth_v0.0.0-e2e_linux_amd64/README.md berth_v0.0.0-e2e_linux_amd64/berth berth_v0.0.0-e2e_linux_amd64/cric" {
		t.Fatalf("archive entries: %v", names)
	}
	dir := filepath.Join(x, "berth_v0.0.0-e2e_linux_amd64")
	for _, prog := range []string{"berth", "cric"} {
		for _, tc := range []struct{ godebug, fips string }{{"fips140=off", "off"}, {"fips140=on", "on"}} {
			out := run(t, []string{"GODEBUG=" + tc.godebug}, filepath.Join(dir, prog), "version")
			for _, want := range []string{prog + " v0.0.0-e2e\n", "commit:   " + strings.TrimSpace(string(commit)) + "\n",
				"go:       " + runtime.Version() + " linux/amd64\n", "fips140:  " + tc.fips + " (module latest)\n"} {
				if !strings.Contains(out, want) {
					t.Fatalf("%s version (GODEBUG=%s) lacks %q:\n%s", prog, tc.godebug, want, out)
				}
			}
		}
		// Static: no dynamic loader.
		if b, _ := os.ReadFile(filepath.Join(dir, prog)); bytes.Contains(b[:min(len(b), 4096)], []byte("/lib64/ld-linux")) {
			t.Fatalf("%s is dynamically linked", prog)
		}
	}
	y := filepath.Join(work, "y")
	os.MkdirAll(y, 0o755)
	untar(t, filepath.Join(a, "berth_v0.0.0-e2e_darwin_arm64.tar.gz"), y)
	mach, _ := os.ReadFile(filepath.Join(y, "berth_v0.0.0-e2e_darwin_arm64", "berth"))
	if len(mach) < 8 || !bytes.Equal(mach[:4], []byte{0xcf, 0xfa, 0xed, 0xfe}) || mach[4] != 0x0c { // MH_MAGIC_64, CPU_TYPE_ARM64
		t.Fatal("the darwin/arm64 berth is not a 64-bit arm64 Mach-O binary")
	}
}

// TestVersion: the harness's berth (a plain go build) still answers version with the
// Go version and the FIPS state, and reports FIPS mode on under GODEBUG=fips140=on;
// berth healthcheck probes /readyz (what a container engine's health check runs).
func TestVersion(t *testing.T) {
	out := run(t, []string{"GODEBUG=fips140=on"}, berthBin, "version")
	if !strings.HasPrefix(out, "berth ") || !strings.Contains(out, "go:       "+runtime.Version()) || !strings.Contains(out, "fips140:  on (module ") {
		t.Fatalf("berth version:\n%s", out)
	}
	b := startBerth(t, BerthOptions{})
	if out := run(t, []string{"BERTH_ADDR=" + b.Addr}, berthBin, "healthcheck"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("berth healthcheck: %q", out)
	}
	if out, err := runErr([]string{"BERTH_ADDR=" + freeAddr(t)}, berthBin, "healthcheck"); err == nil {
		t.Fatalf("berth healthcheck with nothing listening succeeded: %s", out)
	}
	js := run(t, []string{"GODEBUG=fips140=off"}, berthBin, "version", "--json")
	if !strings.Contains(js, `"fipsMode":false`) || !strings.Contains(js, `"goVersion":"`+runtime.Version()+`"`) {
		t.Fatalf("berth version --json: %s", js)
	}
}
