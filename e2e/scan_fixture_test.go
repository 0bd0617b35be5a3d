package e2e

// Fixtures of the vulnerability-scanning tests (issue 11): a small real Trivy database,
// built with trivy-db's own packages (the code that builds the published database), and
// images with an Alpine package database and a Go binary. Helpers are prefixed "sc".

import (
	"archive/tar"
	"compress/gzip"
	"debug/buildinfo"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/bucket"
	bolt "go.etcd.io/bbolt"
)

// scAdvisory is one advisory of the fixture database: a vulnerability of an Alpine
// package (Fixed is the first fixed version) or of a Go module (Patched versions).
type scAdvisory struct {
	ID, Severity, Title string
	AlpinePkg, Fixed    string // Alpine 3.19 package
	GoModule            string
	Patched             []string // Go module: patched versions ("1.2.3"); below them vulnerable
}

// scTrivyDBMu serialises database builds: trivy-db keeps its open database in a global.
var scTrivyDBMu sync.Mutex

// scBuildTrivyDB writes a schema-2 Trivy database holding advs as dir/db.tar.gz (the
// layer Trivy downloads: trivy.db and metadata.json) and returns its path.
func scBuildTrivyDB(t *testing.T, dir string, updated time.Time, advs []scAdvisory) string {
	t.Helper()
	scTrivyDBMu.Lock()
	defer scTrivyDBMu.Unlock()
	dbDir := filepath.Join(dir, "trivy-db")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := trivydb.Init(dbDir); err != nil {
		t.Fatalf("trivy-db init: %v", err)
	}
	alpine := bucket.NewAlpine("3.19").Name()
	goBucket, err := bucket.NewGo(types.DataSource{ID: "ghsa", Name: "GitHub Security Advisory Go", URL: "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Ago"})
	if err != nil {
		t.Fatal(err)
	}
	dbc := trivydb.Config{}
	err = dbc.BatchUpdate(func(tx *bolt.Tx) error {
		if err := dbc.PutDataSource(tx, alpine, types.DataSource{ID: "alpine", Name: "Alpine Secdb", URL: "https://secdb.alpinelinux.org/"}); err != nil {
			return err
		}
		if err := dbc.PutDataSource(tx, goBucket.Name(), goBucket.DataSource()); err != nil {
			return err
		}
		for _, a := range advs {
			var src types.SourceID = "alpine"
			if a.GoModule != "" {
				src = "ghsa"
				if err := dbc.PutAdvisory(tx, []string{goBucket.Name(), a.GoModule}, a.ID, types.Advisory{PatchedVersions: a.Patched,
					VulnerableVersions: []string{"< " + a.Patched[0]}}); err != nil {
					return err
				}
			} else if err := dbc.PutAdvisory(tx, []string{alpine, a.AlpinePkg}, a.ID, types.Advisory{FixedVersion: a.Fixed}); err != nil {
				return err
			}
			sev, _ := types.NewSeverity(a.Severity)
			if err := dbc.PutVulnerability(tx, a.ID, types.Vulnerability{Title: a.Title, Severity: a.Severity,
				VendorSeverity: types.VendorSeverity{src: sev}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("trivy-db write: %v", err)
	}
	if err := trivydb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := metadata.NewClient(dbDir).Update(metadata.Metadata{Version: trivydb.SchemaVersion, UpdatedAt: updated.UTC(),
		NextUpdate: updated.Add(24 * time.Hour).UTC()}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "db.tar.gz")
	scTarGz(t, out, map[string]string{"trivy.db": filepath.Join(dbDir, "trivy.db"), "metadata.json": filepath.Join(dbDir, "metadata.json")}, nil)
	return out
}

// scTarGz writes a gzip tar of files (name in the archive → path on disk) and inline
// contents (name → content).
func scTarGz(t *testing.T, out string, files, inline map[string]string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	add := func(name string, mode int64, r io.Reader, size int64) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, r); err != nil {
			t.Fatal(err)
		}
	}
	for name, path := range files {
		src, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := src.Stat()
		add(name, 0o755, src, st.Size())
		src.Close()
	}
	for name, content := range inline {
		add(name, 0o644, strings.NewReader(content), int64(len(content)))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
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
func scApkInstalled(pkgs map[string]string) string {
	var b strings.Builder
	for name, version := range pkgs {
		b.WriteString("C:Q1" + strings.Repeat("A", 27) + "=\nP:" + name + "\nV:" + version + "\nA:x86_64\nS:1000\nI:2000\nT:" + name +
			"\nU:https://alpinelinux.org\nL:MIT\no:" + name + "\nm:Berth tests\nt:1700000000\nc:0000000000000000000000000000000000000000\n\n")
	}
	return b.String()
}
