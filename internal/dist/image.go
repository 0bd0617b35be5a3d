package dist

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ImagePlatforms are the image index's platforms.
var ImagePlatforms = []string{"linux/amd64", "linux/arm64"}

// The image's non-root user: 65532, the uid distroless images call nonroot.
const (
	UID     = 65532
	DataDir = "/data"
)

// ImageOptions configure Image.
type ImageOptions struct {
	Platforms []string // default ImagePlatforms
	CACerts   string   // the CA bundle to ship (default /etc/ssl/certs/ca-certificates.crt)
	Work      string   // scratch directory for the binaries
}

// Image builds Berth's image index: per platform, a base layer (CA certificates,
// /etc/passwd and /etc/group with the berth user, /data owned by it, /tmp) and a layer
// with the static binaries; config with the non-root user, the /data volume, port
// 5000, BERTH_DATA and the org.opencontainers.image labels. The FIPS variant differs
// only in the binaries (GOFIPS140) and its labels.
func Image(ctx context.Context, src Source, o ImageOptions) (v1.ImageIndex, error) {
	if len(o.Platforms) == 0 {
		o.Platforms = ImagePlatforms
	}
	if o.CACerts == "" {
		o.CACerts = "/etc/ssl/certs/ca-certificates.crt"
	}
	ca, err := os.ReadFile(o.CACerts)
	if err != nil {
		return nil, fmt.Errorf("dist: CA certificates: %w", err)
	}
	base, err := layer(baseFiles(ca), src)
	if err != nil {
		return nil, err
	}
	labels := Labels(src)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, pl := range o.Platforms {
		if goos, _, ok := strings.Cut(pl, "/"); !ok || goos != "linux" {
			return nil, fmt.Errorf("dist: image platform %q: want linux/<arch>", pl)
		}
	}
	built, err := BuildPlatforms(ctx, src, o.Platforms, func(goos, goarch string) string {
		return filepath.Join(o.Work, variant(src), goos+"-"+goarch)
	})
	if err != nil {
		return nil, err
	}
	for i, pl := range o.Platforms {
		goos, goarch, _ := strings.Cut(pl, "/")
		bins := built[i]
		files := []tarFile{{name: "usr/", mode: 0o755, dir: true}, {name: "usr/local/", mode: 0o755, dir: true}, {name: "usr/local/bin/", mode: 0o755, dir: true}}
		for _, p := range Programs {
			b, err := os.ReadFile(bins[p])
			if err != nil {
				return nil, fmt.Errorf("dist: %w", err)
			}
			files = append(files, tarFile{name: "usr/local/bin/" + p, mode: 0o755, data: b})
		}
		binLayer, err := layer(files, src)
		if err != nil {
			return nil, err
		}
		created := v1.Time{Time: src.Time}
		img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1),
			mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "berth-dist: CA certificates, berth user, /data", Comment: "base"}},
			mutate.Addendum{Layer: binLayer, History: v1.History{Created: created, CreatedBy: "berth-dist: berth and cric " + src.Version + " (CGO_ENABLED=0 -trimpath)"}})
		if err != nil {
			return nil, fmt.Errorf("dist: %w", err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("dist: %w", err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Created = goos, goarch, created
		env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "BERTH_DATA=" + DataDir, "BERTH_ADDR=:5000"}
		cf.Config = v1.Config{
			User: fmt.Sprintf("%d:%d", UID, UID), Entrypoint: []string{"/usr/local/bin/berth"}, Cmd: []string{"serve"},
			Env: env, WorkingDir: DataDir, Volumes: map[string]struct{}{DataDir: {}},
			ExposedPorts: map[string]struct{}{"5000/tcp": {}}, Labels: labels, StopSignal: "SIGTERM",
		}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return nil, fmt.Errorf("dist: %w", err)
		}
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: goos, Architecture: goarch}}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	return mutate.Annotations(idx, labels).(v1.ImageIndex), nil
}

// Labels are the org.opencontainers.image labels (and the index's annotations).
func Labels(src Source) map[string]string {
	title := "Berth"
	if src.FIPS {
		title = "Berth (FIPS 140-3: Go Cryptographic Module " + FIPSModule + ")"
	}
	return map[string]string{
		"org.opencontainers.image.title":       title,
		"org.opencontainers.image.description": "Berth, an OCI container registry and pull-through mirror in one binary (with cric, its client)",
		"org.opencontainers.image.version":     src.Version,
		"org.opencontainers.image.revision":    src.Commit,
		"org.opencontainers.image.created":     src.Time.UTC().Format("2006-01-02T15:04:05Z"),
		"org.opencontainers.image.source":      "https://github.com/berth-registry/berth",
		"org.opencontainers.image.url":         "https://github.com/berth-registry/berth",
		"org.opencontainers.image.vendor":      "Berth",
	}
}

// Tag is the image's tag for the source: the version, with -fips for the FIPS variant.
func Tag(src Source) string { return src.Version + map[bool]string{true: "-fips"}[src.FIPS] }

func variant(src Source) string { return map[bool]string{true: "fips", false: "std"}[src.FIPS] }

func baseFiles(ca []byte) []tarFile {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nberth:x:%d:%d:berth:%s:/sbin/nologin\n", UID, UID, DataDir)
	group := fmt.Sprintf("root:x:0:\nberth:x:%d:\n", UID)
	return []tarFile{
		{name: "data/", mode: 0o750, dir: true, uid: UID, gid: UID},
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
}

// layer is a gzipped OCI layer over a reproducible tar (ggcr's gzip is deterministic).
func layer(files []tarFile, src Source) (v1.Layer, error) {
	t, err := tarBytes(files, src)
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(t)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("dist: layer: %w", err)
	}
	return l, nil
}

// BuildVariant builds the image of src (standard or FIPS) and its SBOM, made from the
// first platform's berth binary (every platform compiles the same modules).
func BuildVariant(ctx context.Context, src Source, o ImageOptions) (Built, error) {
	if len(o.Platforms) == 0 {
		o.Platforms = ImagePlatforms
	}
	idx, err := Image(ctx, src, o)
	if err != nil {
		return Built{}, err
	}
	d, err := idx.Digest()
	if err != nil {
		return Built{}, fmt.Errorf("dist: %w", err)
	}
	sz, _ := idx.Size()
	subject := v1.Descriptor{MediaType: types.OCIImageIndex, Digest: d, Size: sz}
	goos, goarch, _ := strings.Cut(o.Platforms[0], "/")
	doc, err := SBOM(src, filepath.Join(o.Work, variant(src), goos+"-"+goarch, "berth"), subject)
	if err != nil {
		return Built{}, err
	}
	art, err := NewArtifact(SBOMType, doc, subject, map[string]string{"org.opencontainers.image.created": Labels(src)["org.opencontainers.image.created"]})
	if err != nil {
		return Built{}, err
	}
	return Built{Tag: Tag(src), Index: idx, SBOM: art}, nil
}
