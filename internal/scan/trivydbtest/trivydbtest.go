// Package trivydbtest builds small real Trivy vulnerability databases and image layers
// for the scanning tests and the benchmark, where no internet reaches the published
// database. The database is written by trivy-db's own packages (the code that builds
// the published ghcr.io/aquasecurity/trivy-db:2), not by an imitation of its format.
package trivydbtest

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/bucket"
	javadb "github.com/aquasecurity/trivy-java-db/pkg/db"
	javatypes "github.com/aquasecurity/trivy-java-db/pkg/types"
	bolt "go.etcd.io/bbolt"
	_ "modernc.org/sqlite" // trivy-java-db's driver
)

// Media types of the database artifact, as Trivy downloads it.
const (
	ArtifactType = "application/vnd.aquasec.trivy.config.v1+json"
	LayerType    = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
)

// Advisory is one advisory: a vulnerability of an Alpine 3.19 package (Fixed is the
// first fixed version), of a Go module or of a Maven artifact ("group:artifact")
// (Patched versions; below them vulnerable).
type Advisory struct {
	ID, Severity, Title string
	AlpinePkg, Fixed    string
	GoModule            string
	Maven               string
	Patched             []string
}

// buildMu serialises builds: trivy-db keeps its open database in a global.
var buildMu sync.Mutex

// Build writes a schema-2 database holding advs, built at updated, as dir/db.tar.gz
// (the layer Trivy downloads: trivy.db and metadata.json) and returns its path.
func Build(dir string, updated time.Time, advs []Advisory) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	dbDir := filepath.Join(dir, "trivy-db")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return "", err
	}
	if err := trivydb.Init(dbDir); err != nil {
		return "", fmt.Errorf("trivy-db init: %w", err)
	}
	alpine := bucket.NewAlpine("3.19").Name()
	goBucket, err := bucket.NewGo(types.DataSource{ID: "ghsa", Name: "GitHub Security Advisory Go", URL: "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Ago"})
	if err != nil {
		trivydb.Close()
		return "", err
	}
	mavenBucket, err := bucket.NewMaven(types.DataSource{ID: "ghsa", Name: "GitHub Security Advisory Maven", URL: "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Amaven"})
	if err != nil {
		trivydb.Close()
		return "", err
	}
	dbc := trivydb.Config{}
	err = dbc.BatchUpdate(func(tx *bolt.Tx) error {
		if err := dbc.PutDataSource(tx, mavenBucket.Name(), mavenBucket.DataSource()); err != nil {
			return err
		}
		if err := dbc.PutDataSource(tx, alpine, types.DataSource{ID: "alpine", Name: "Alpine Secdb", URL: "https://secdb.alpinelinux.org/"}); err != nil {
			return err
		}
		if err := dbc.PutDataSource(tx, goBucket.Name(), goBucket.DataSource()); err != nil {
			return err
		}
		for _, a := range advs {
			var src types.SourceID = "alpine"
			if a.Maven != "" {
				src = "ghsa"
				if err := dbc.PutAdvisory(tx, []string{mavenBucket.Name(), a.Maven}, a.ID, types.Advisory{PatchedVersions: a.Patched,
					VulnerableVersions: []string{"< " + a.Patched[0]}}); err != nil {
					return err
				}
			} else if a.GoModule != "" {
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
	if cerr := trivydb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("trivy-db write: %w", err)
	}
	if err := metadata.NewClient(dbDir).Update(metadata.Metadata{Version: trivydb.SchemaVersion, UpdatedAt: updated.UTC(),
		NextUpdate: updated.Add(24 * time.Hour).UTC()}); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "db.tar.gz")
	err = WriteTarGz(out, map[string]string{"trivy.db": filepath.Join(dbDir, "trivy.db"), "metadata.json": filepath.Join(dbDir, "metadata.json")}, nil)
	return out, err
}

// Media types of the Java database artifact (trivy-java-db:1).
const JavaLayerType = "application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip"

// JavaJar is a JAR the Java database knows by its SHA-1.
type JavaJar struct {
	GroupID, ArtifactID, Version string
	SHA1                         []byte
}

// BuildJavaDB writes a Java database (trivy-java-db's schema 1, with its own package)
// holding jars as dir/javadb.tar.gz (trivy-java.db and metadata.json) and returns its
// path.
func BuildJavaDB(dir string, updated time.Time, jars []JavaJar) (string, error) {
	dbDir := filepath.Join(dir, "java-db")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return "", err
	}
	db, err := javadb.New(dbDir)
	if err != nil {
		return "", err
	}
	err = db.Init()
	if err == nil {
		idx := make([]javatypes.Index, len(jars))
		for i, j := range jars {
			idx[i] = javatypes.Index{GroupID: j.GroupID, ArtifactID: j.ArtifactID, Version: j.Version, SHA1: j.SHA1, ArchiveType: javatypes.JarType}
		}
		err = db.InsertIndexes(idx)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("trivy-java-db: %w", err)
	}
	meta := javadb.NewMetadata(dbDir)
	if err := meta.Update(javadb.Metadata{Version: javadb.SchemaVersion, UpdatedAt: updated.UTC(), NextUpdate: updated.Add(72 * time.Hour).UTC()}); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "javadb.tar.gz")
	err = WriteTarGz(out, map[string]string{"trivy-java.db": filepath.Join(dbDir, "trivy-java.db"), "metadata.json": filepath.Join(dbDir, "metadata.json")}, nil)
	return out, err
}

// WriteTarGz writes a gzip tar of files (name in the archive → path on disk) and inline
// contents (name → content), in name order with fixed times: the same input gives the
// same bytes.
func WriteTarGz(out string, files, inline map[string]string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := TarGz(f, files, inline); err != nil {
		return err
	}
	return f.Close()
}

// TarGz writes the gzip tar of WriteTarGz to w.
func TarGz(w io.Writer, files, inline map[string]string) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	add := func(name string, mode int64, r io.Reader, size int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	for _, name := range sortedKeys(files) {
		src, err := os.Open(files[name])
		if err != nil {
			return err
		}
		st, err := src.Stat()
		if err == nil {
			err = add(name, 0o755, src, st.Size())
		}
		src.Close()
		if err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(inline) {
		if err := add(name, 0o644, strings.NewReader(inline[name]), int64(len(inline[name]))); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// AlpineFiles are the files that make a layer an Alpine 3.19 system with pkgs (name →
// version) installed, as Trivy's apk analyzer reads them.
func AlpineFiles(pkgs map[string]string) map[string]string {
	return map[string]string{"etc/alpine-release": "3.19.1\n", "lib/apk/db/installed": ApkInstalled(pkgs)}
}

// ApkInstalled is an Alpine package database listing packages at versions.
func ApkInstalled(pkgs map[string]string) string {
	var b strings.Builder
	for _, name := range sortedKeys(pkgs) {
		version := pkgs[name]
		b.WriteString("C:Q1" + strings.Repeat("A", 27) + "=\nP:" + name + "\nV:" + version + "\nA:x86_64\nS:1000\nI:2000\nT:" + name +
			"\nU:https://alpinelinux.org\nL:MIT\no:" + name + "\nm:Berth tests\nt:1700000000\nc:0000000000000000000000000000000000000000\n\n")
	}
	return b.String()
}
