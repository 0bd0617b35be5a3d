package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	javadb "github.com/aquasecurity/trivy-java-db/pkg/db"
	_ "modernc.org/sqlite" // the driver trivy-java-db opens its database with
)

// DownloadJavaDB fetches Trivy's Java database (trivy-java-db:1, which names the Maven
// artifact of a JAR by its SHA-1) from ref into cacheDir/java-db, where scans using
// cacheDir read it.
func (tr *Trivy) DownloadJavaDB(ctx context.Context, ref, token, cacheDir string) error {
	_, err := tr.run(ctx, token, "image", "--quiet", "--download-java-db-only", "--java-db-repository", ref, "--cache-dir", cacheDir)
	return err
}

// EmptyJavaDB writes an empty Java database into cacheDir/java-db, with trivy-java-db's
// own package. Trivy refuses to scan an image holding a JAR without one (it would
// download it, and Berth runs it offline); with the empty one, JARs carrying Maven
// metadata (pom.properties) are still identified, the others are not.
func EmptyJavaDB(cacheDir string) error {
	dir := filepath.Join(cacheDir, "java-db")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	db, err := javadb.New(dir)
	if err != nil {
		return fmt.Errorf("java db: %w", err)
	}
	err = db.Init()
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("java db: %w", err)
	}
	// A NextUpdate far ahead: nothing ever tries to replace it (Berth loads a real one
	// into a fresh directory instead).
	meta, _ := json.Marshal(javadb.Metadata{Version: javadb.SchemaVersion, NextUpdate: time.Now().AddDate(100, 0, 0).UTC()})
	return os.WriteFile(filepath.Join(dir, "metadata.json"), meta, 0o600)
}
