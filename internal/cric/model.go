package cric

// model push and model pull: a model directory as a CNCF ModelPack artifact
// (github.com/modelpack/model-spec): an OCI manifest with artifactType
// application/vnd.cncf.model.manifest.v1+json, a model config, and one raw layer per
// file typed weight, weight config, doc or code and annotated with its path. Blobs move
// in parallel (--jobs); each is uploaded only when the registry lacks it and downloaded
// only when the file on disk differs, so an interrupted push or pull run again goes on
// where it stopped, file by file.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// ModelPack media types and annotations.
const (
	ModelArtifactType      = "application/vnd.cncf.model.manifest.v1+json"
	modelConfigType        = "application/vnd.cncf.model.config.v1+json"
	modelWeightType        = "application/vnd.cncf.model.weight.v1.raw"
	modelWeightConfigType  = "application/vnd.cncf.model.weight.config.v1.raw"
	modelDocType           = "application/vnd.cncf.model.doc.v1.raw"
	modelCodeType          = "application/vnd.cncf.model.code.v1.raw"
	modelFilepath          = "org.cncf.model.filepath"
	annotationTitle        = "org.opencontainers.image.title"
	ociManifestType        = "application/vnd.oci.image.manifest.v1+json"
	modelMaxManifestLayers = 100000
)

var modelWeightExts = map[string]bool{".safetensors": true, ".bin": true, ".pt": true, ".pth": true, ".ckpt": true, ".gguf": true,
	".ggml": true, ".onnx": true, ".onnx_data": true, ".h5": true, ".msgpack": true, ".tflite": true, ".pb": true, ".npz": true, ".npy": true}

// modelLayerType classifies a model file as ModelPack does.
func modelLayerType(p string) string {
	base := strings.ToLower(path.Base(p))
	ext := path.Ext(base)
	switch {
	case modelWeightExts[ext]:
		return modelWeightType
	case ext == ".md" || ext == ".rst" || ext == ".pdf" || strings.HasPrefix(base, "license") || strings.HasPrefix(base, "notice"):
		return modelDocType
	case ext == ".py" || ext == ".sh" || ext == ".ipynb" || ext == ".js":
		return modelCodeType
	}
	return modelWeightConfigType
}

type modelDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type modelManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        modelDescriptor   `json:"config"`
	Layers        []modelDescriptor `json:"layers"`
}

// fileLayer is a model file as a raw layer.
type fileLayer struct {
	file string
	d    v1.Descriptor
	bp   *blobProgress
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.d.Digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.d.Digest, nil }
func (l *fileLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.d.MediaType, nil }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	return l.Compressed()
}
func (l *fileLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.file)
	if err != nil {
		return nil, err
	}
	return l.bp.reader(f), nil
}

// bytesLayer is the model config as a layer.
type bytesLayer struct {
	b []byte
	d v1.Descriptor
}

func (l *bytesLayer) Digest() (v1.Hash, error)            { return l.d.Digest, nil }
func (l *bytesLayer) DiffID() (v1.Hash, error)            { return l.d.Digest, nil }
func (l *bytesLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l *bytesLayer) MediaType() (types.MediaType, error) { return l.d.MediaType, nil }
func (l *bytesLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(string(l.b))), nil
}
func (l *bytesLayer) Compressed() (io.ReadCloser, error) { return l.Uncompressed() }

// fileSHA256 hashes a file.
func fileSHA256(p string) (v1.Hash, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, n, nil
}

// ModelPush packages the model directory dir as a ModelPack artifact and pushes it.
// Hidden files and directories (.git, .cache) are left out.
func (c *Client) ModelPush(ctx context.Context, dir, image string) (*Result, error) {
	ref, err := c.ParseReference(image)
	if err != nil {
		return nil, err
	}
	var paths []string
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, usageErrorf("model directory %s: %v", dir, err)
	}
	if len(paths) == 0 {
		return nil, usageErrorf("model directory %s holds no files", dir)
	}
	sort.Strings(paths)
	descs := make([]v1.Descriptor, len(paths))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(c.opts.Jobs, 1))
	for i, p := range paths {
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			h, n, err := fileSHA256(filepath.Join(dir, filepath.FromSlash(p)))
			descs[i] = v1.Descriptor{MediaType: types.MediaType(modelLayerType(p)), Digest: h, Size: n,
				Annotations: map[string]string{modelFilepath: p, annotationTitle: p}}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var cfg struct {
		Descriptor struct {
			Name string `json:"name,omitempty"`
		} `json:"descriptor"`
		ModelFS struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diffIds"`
		} `json:"modelfs"`
		Config struct{} `json:"config"`
	}
	cfg.Descriptor.Name = filepath.Base(filepath.Clean(dir))
	cfg.ModelFS.Type = "layers"
	var total int64
	man := modelManifest{SchemaVersion: 2, MediaType: ociManifestType, ArtifactType: ModelArtifactType}
	for _, d := range descs {
		cfg.ModelFS.DiffIDs = append(cfg.ModelFS.DiffIDs, d.Digest.String())
		man.Layers = append(man.Layers, modelDescriptor{MediaType: string(d.MediaType), Digest: d.Digest.String(), Size: d.Size, Annotations: d.Annotations})
		total += d.Size
	}
	cfgBytes, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgDesc := v1.Descriptor{MediaType: modelConfigType, Digest: digestOf(cfgBytes), Size: int64(len(cfgBytes))}
	man.Config = modelDescriptor{MediaType: modelConfigType, Digest: cfgDesc.Digest.String(), Size: cfgDesc.Size}
	payload, err := json.Marshal(man)
	if err != nil {
		return nil, err
	}
	repo := ref.Context()
	p := c.newProgress("pushed", total)
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(max(c.opts.Jobs, 1))
	for i, d := range descs {
		g.Go(func() error {
			bp := p.blob(d)
			err := c.pusher.Upload(gctx, repo, &fileLayer{file: filepath.Join(dir, filepath.FromSlash(paths[i])), d: d, bp: bp})
			bp.finish(err)
			return err
		})
	}
	err = g.Wait()
	if err == nil {
		err = c.pusher.Upload(ctx, repo, &bytesLayer{b: cfgBytes, d: cfgDesc})
	}
	if err == nil {
		err = c.pusher.Put(ctx, ref, rawManifest{raw: payload, mt: ociManifestType})
	}
	p.finish(err)
	if err != nil {
		return nil, err
	}
	return &Result{Source: dir, Destination: ref.String(), Digest: digestOf(payload).String(), MediaType: ociManifestType,
		Size: total + int64(len(cfgBytes)) + int64(len(payload))}, nil
}

// ModelPull downloads a ModelPack artifact's files into dir by their paths. A file
// already there with the layer's digest is kept.
func (c *Client) ModelPull(ctx context.Context, image, dir string) (*Result, error) {
	ref, err := c.ParseReference(image)
	if err != nil {
		return nil, err
	}
	desc, err := c.puller.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	var man modelManifest
	if err := json.Unmarshal(desc.Manifest, &man); err != nil {
		return nil, fmt.Errorf("%s: not an OCI manifest: %w", ref, err)
	}
	if man.ArtifactType != ModelArtifactType && man.Config.MediaType != modelConfigType {
		return nil, usageErrorf("%s is not a ModelPack model (artifactType %q)", ref, man.ArtifactType)
	}
	if len(man.Layers) > modelMaxManifestLayers {
		return nil, fmt.Errorf("%s: %d layers", ref, len(man.Layers))
	}
	type job struct {
		dest string
		d    v1.Descriptor
	}
	var jobs []job
	var total int64
	seen := map[string]bool{}
	for _, l := range man.Layers {
		p := l.Annotations[modelFilepath]
		if p == "" {
			p = l.Annotations[annotationTitle]
		}
		if p == "" || !filepath.IsLocal(filepath.FromSlash(p)) || seen[p] {
			return nil, fmt.Errorf("%s: layer %s has no usable file path (%q)", ref, l.Digest, p)
		}
		seen[p] = true
		h, err := v1.NewHash(l.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: layer digest %q: %w", ref, l.Digest, err)
		}
		jobs = append(jobs, job{dest: filepath.Join(dir, filepath.FromSlash(p)), d: v1.Descriptor{MediaType: types.MediaType(l.MediaType), Digest: h, Size: l.Size}})
		total += l.Size
	}
	repo := ref.Context()
	p := c.newProgress("pulled", total)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(c.opts.Jobs, 1))
	for _, j := range jobs {
		g.Go(func() error {
			bp := p.blob(j.d)
			err := c.pullModelFile(gctx, repo, j.dest, j.d, bp)
			bp.finish(err)
			return err
		})
	}
	err = g.Wait()
	p.finish(err)
	if err != nil {
		return nil, err
	}
	return &Result{Source: ref.String(), Destination: dir, Digest: desc.Digest.String(), MediaType: string(desc.MediaType), Size: total}, nil
}

// pullModelFile writes one layer to dest unless dest already holds it; the bytes go to
// dest.part first and are verified as they stream (go-containerregistry).
func (c *Client) pullModelFile(ctx context.Context, repo name.Repository, dest string, d v1.Descriptor, bp *blobProgress) error {
	if h, n, err := fileSHA256(dest); err == nil && h == d.Digest && n == d.Size {
		return nil
	}
	l, err := c.puller.Layer(ctx, repo.Digest(d.Digest.String()))
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	rc = bp.reader(rc)
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	part := dest + ".part"
	f, err := os.Create(part)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != d.Size {
		err = fmt.Errorf("%s: %d bytes, want %d", dest, n, d.Size)
	}
	if err != nil {
		os.Remove(part)
		return err
	}
	return os.Rename(part, dest)
}
