package dist

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ReleasePlatforms are the release archives' platforms.
var ReleasePlatforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}

// Release builds berth and cric for each platform into out as
// berth_<version>_<os>_<arch>.tar.gz (the binaries and README.md under a directory of
// the same name) and writes SHA256SUMS in sha256sum's format. It returns the archives'
// names.
func Release(ctx context.Context, src Source, platforms []string, out string) ([]string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	readme, err := os.ReadFile(filepath.Join(src.Dir, "README.md"))
	if err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	var names []string
	sums := map[string]string{}
	built, err := BuildPlatforms(ctx, src, platforms, func(goos, goarch string) string {
		return filepath.Join(out, ".build", goos+"-"+goarch)
	})
	if err != nil {
		return nil, err
	}
	for i, pl := range platforms {
		goos, goarch, _ := strings.Cut(pl, "/")
		bins := built[i]
		base := fmt.Sprintf("berth_%s_%s_%s", src.Version, goos, goarch)
		files := []tarFile{{name: base + "/", mode: 0o755, dir: true}, {name: base + "/README.md", mode: 0o644, data: readme}}
		for _, p := range Programs {
			b, err := os.ReadFile(bins[p])
			if err != nil {
				return nil, fmt.Errorf("dist: %w", err)
			}
			files = append(files, tarFile{name: base + "/" + p, mode: 0o755, data: b})
		}
		tgz, err := targz(files, src)
		if err != nil {
			return nil, err
		}
		name := base + ".tar.gz"
		if err := os.WriteFile(filepath.Join(out, name), tgz, 0o644); err != nil {
			return nil, fmt.Errorf("dist: %w", err)
		}
		sum := sha256.Sum256(tgz)
		sums[name] = hex.EncodeToString(sum[:])
		names = append(names, name)
	}
	if err := os.RemoveAll(filepath.Join(out, ".build")); err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	if err := os.WriteFile(filepath.Join(out, "SHA256SUMS"), []byte(b.String()), 0o644); err != nil {
		return nil, fmt.Errorf("dist: %w", err)
	}
	return names, nil
}

// tarFile is one entry of a reproducible tar.
type tarFile struct {
	name     string
	mode     int64
	uid, gid int
	dir      bool
	data     []byte
}

// tarBytes writes the entries sorted by name, every one with the source's time and
// fixed owners (numeric only), so equal inputs give equal bytes.
func tarBytes(files []tarFile, src Source) ([]byte, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: src.Time, Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("dist: tar: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("dist: tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("dist: tar: %w", err)
	}
	return buf.Bytes(), nil
}

// targz is tarBytes gzipped with a header that carries no name and no time.
func targz(files []tarFile, src Source) ([]byte, error) {
	t, err := tarBytes(files, src)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(t); err != nil {
		return nil, fmt.Errorf("dist: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("dist: gzip: %w", err)
	}
	return buf.Bytes(), nil
}
