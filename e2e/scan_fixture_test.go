package e2e

// Fixtures of the vulnerability-scanning tests (issue 11): a small real Trivy database,
// built with trivy-db's own packages (the code that builds the published database), and
// images with an Alpine package database and a Go binary. Helpers are prefixed "sc".

import (
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/scan/trivydbtest"
)

// scAdvisory is one advisory of the fixture database (trivydbtest.Advisory).
type scAdvisory = trivydbtest.Advisory

// scBuildTrivyDB writes a Trivy database holding advs (trivydbtest.Build) and returns
// the path of its layer.
func scBuildTrivyDB(t *testing.T, dir string, updated time.Time, advs []scAdvisory) string {
	t.Helper()
	out, err := trivydbtest.Build(dir, updated, advs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// scTarGz writes a gzip tar of files (name in the archive → path on disk) and inline
// contents (name → content).
func scTarGz(t *testing.T, out string, files, inline map[string]string) {
	t.Helper()
	if err := trivydbtest.WriteTarGz(out, files, inline); err != nil {
		t.Fatal(err)
	}
}

// scGoBinary builds a small Go program that links golang.org/x/sync (at the version this
// module requires) and returns its path and that version ("v0.25.0").
func scGoBinary(t *testing.T) (path, syncVersion string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "app")
	cmd := exec.Command("go", "build", "-trimpath", "-o", path, "./testdata/scanapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the scanned Go program: %v\n%s", err, out)
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range info.Deps {
		if d.Path == "golang.org/x/sync" {
			return path, d.Version
		}
	}
	t.Fatal("the scanned Go program does not link golang.org/x/sync")
	return "", ""
}

// scApkInstalled is an Alpine package database listing packages at versions.
func scApkInstalled(pkgs map[string]string) string { return trivydbtest.ApkInstalled(pkgs) }
