package hf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

// A cached revision is also a CNCF ModelPack artifact (github.com/modelpack/model-spec,
// specs-go/v1): an OCI image manifest with artifactType
// application/vnd.cncf.model.manifest.v1+json in the repository's OCI repository
// (hf/org/name), tagged with the commit and with each branch or tag known to name it.
// Its layers are the cached files themselves, raw (no second copy, no tar), each
// annotated with its path; its config is a ModelPack model config. Nothing in either
// depends on time or order of download, so the digest of a commit's artifact is stable.
const (
	ArtifactTypeModel    = "application/vnd.cncf.model.manifest.v1+json"
	MediaTypeModelConfig = "application/vnd.cncf.model.config.v1+json"
	mediaTypeWeight      = "application/vnd.cncf.model.weight.v1.raw"
	mediaTypeWeightCfg   = "application/vnd.cncf.model.weight.config.v1.raw"
	mediaTypeDoc         = "application/vnd.cncf.model.doc.v1.raw"
	mediaTypeCode        = "application/vnd.cncf.model.code.v1.raw"
	mediaTypeDataset     = "application/vnd.cncf.model.dataset.v1.raw"
	// AnnotationFilepath is a layer's path in the model directory.
	AnnotationFilepath = "org.cncf.model.filepath"
)

var weightExts = map[string]bool{".safetensors": true, ".bin": true, ".pt": true, ".pth": true, ".ckpt": true, ".gguf": true, ".ggml": true,
	".onnx": true, ".onnx_data": true, ".h5": true, ".msgpack": true, ".tflite": true, ".pb": true, ".npz": true, ".npy": true, ".mlmodel": true}

var codeExts = map[string]bool{".py": true, ".sh": true, ".ipynb": true, ".js": true, ".ts": true}

// layerMediaType classifies a file as ModelPack does: weights, their configuration
// (config.json, tokenizer files), documentation, code, or for a dataset repository data.
func layerMediaType(t RepoType, p string) string {
	base := strings.ToLower(path.Base(p))
	ext := path.Ext(base)
	switch {
	case t == Dataset && !strings.HasSuffix(base, ".md"):
		return mediaTypeDataset
	case weightExts[ext]:
		return mediaTypeWeight
	case ext == ".md" || ext == ".rst" || ext == ".pdf" || strings.HasPrefix(base, "license") || strings.HasPrefix(base, "notice"):
		return mediaTypeDoc
	case codeExts[ext]:
		return mediaTypeCode
	}
	return mediaTypeWeightCfg
}

// modelFormat names the weights' format for the config.
func modelFormat(files []File) string {
	for _, want := range []struct{ ext, format string }{{".safetensors", "safetensors"}, {".gguf", "gguf"}, {".onnx", "onnx"}, {".bin", "pytorch"}, {".pt", "pytorch"}, {".h5", "tensorflow"}} {
		for _, f := range files {
			if strings.HasSuffix(strings.ToLower(f.Path), want.ext) {
				return want.format
			}
		}
	}
	return ""
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type modelConfig struct {
	Descriptor struct {
		Family    string `json:"family,omitempty"`
		Name      string `json:"name,omitempty"`
		SourceURL string `json:"sourceURL,omitempty"`
		Revision  string `json:"revision,omitempty"`
		Vendor    string `json:"vendor,omitempty"`
	} `json:"descriptor"`
	ModelFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diffIds"`
	} `json:"modelfs"`
	Config struct {
		Format string `json:"format,omitempty"`
	} `json:"config"`
}

type modelManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations"`
}

// errIncomplete reports a revision not every file of which is cached yet.
var errIncomplete = errors.New("hf: the revision is not completely cached")

// listedFiles returns the file paths of the commit's recursive listing; cachedOnly
// does not ask the Hub for a listing not cached (errIncomplete).
func (s *Service) listedFiles(ctx context.Context, repo Repo, commit string, cachedOnly bool) ([]string, error) {
	var listing []byte
	var err error
	if cachedOnly {
		listing, err = s.store.Tree(ctx, repo, commit, "", "recursive=true")
		if errors.Is(err, errMissing) {
			return nil, errIncomplete
		}
	} else {
		listing, err = s.tree(ctx, repo, commit, "", "recursive=true")
	}
	if err != nil {
		return nil, err
	}
	var items []struct {
		Type, Path string
	}
	if err := json.Unmarshal(listing, &items); err != nil {
		return nil, fmt.Errorf("hf: listing of %s@%s: %w", repo, commit, err)
	}
	var out []string
	for _, it := range items {
		if it.Type == "file" {
			out = append(out, it.Path)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ModelPack stores the ModelPack artifact of a completely cached commit in its OCI
// repository, tagged with the commit and tags (revision names), and returns its digest.
func (s *Service) ModelPack(ctx context.Context, repo Repo, commit string, tags []string) (oci.Digest, error) {
	return s.modelPack(ctx, repo, commit, tags, false)
}

func (s *Service) modelPack(ctx context.Context, repo Repo, commit string, tags []string, cachedOnly bool) (oci.Digest, error) {
	local, err := LocalRepo(s.cfg.Project, repo)
	if err != nil {
		return "", err
	}
	paths, err := s.listedFiles(ctx, repo, commit, cachedOnly)
	if err != nil {
		return "", err
	}
	cached, err := s.store.Files(ctx, repo, commit)
	if err != nil {
		return "", err
	}
	byPath := map[string]File{}
	for _, f := range cached {
		byPath[f.Path] = f
	}
	files := make([]File, 0, len(paths))
	for _, p := range paths {
		f, ok := byPath[p]
		if !ok {
			return "", fmt.Errorf("%w: %s", errIncomplete, p)
		}
		files = append(files, f)
	}
	var cfg modelConfig
	cfg.Descriptor.Name = repo.ID
	if org, _, ok := strings.Cut(repo.ID, "/"); ok {
		cfg.Descriptor.Vendor = org
	}
	cfg.Descriptor.SourceURL = strings.TrimRight(s.cfg.Upstream, "/") + "/" + repo.String()
	cfg.Descriptor.Revision = commit
	cfg.Descriptor.Family = s.modelType(ctx, byPath["config.json"])
	cfg.ModelFS.Type = "layers"
	cfg.ModelFS.DiffIDs = []string{}
	cfg.Config.Format = modelFormat(files)
	layers := make([]descriptor, 0, len(files))
	for _, f := range files {
		layers = append(layers, descriptor{MediaType: layerMediaType(repo.Type, f.Path), Digest: f.Digest, Size: f.Size,
			// The title is what oras pull names the file by.
			Annotations: map[string]string{AnnotationFilepath: f.Path, "org.opencontainers.image.title": f.Path}})
		cfg.ModelFS.DiffIDs = append(cfg.ModelFS.DiffIDs, f.Digest)
	}
	cfgBytes, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	cfgDigest := oci.SHA256.FromBytes(cfgBytes)
	if _, err := s.reg.PutBlob(ctx, local, cfgDigest, registry.Chunk{Body: strings.NewReader(string(cfgBytes)), Start: -1, Length: int64(len(cfgBytes))}); err != nil {
		return "", err
	}
	man := modelManifest{SchemaVersion: 2, MediaType: oci.MediaTypeOCIManifest, ArtifactType: ArtifactTypeModel,
		Config: descriptor{MediaType: MediaTypeModelConfig, Digest: string(cfgDigest), Size: int64(len(cfgBytes))}, Layers: layers,
		Annotations: map[string]string{"org.opencontainers.image.source": cfg.Descriptor.SourceURL, "org.opencontainers.image.revision": commit,
			"org.opencontainers.image.title": repo.ID}}
	payload, err := json.Marshal(man)
	if err != nil {
		return "", err
	}
	all := []string{commit}
	for _, t := range tags {
		if t = ociTag(t); t != "" && t != commit {
			all = append(all, t)
		}
	}
	dgst := oci.SHA256.FromBytes(payload)
	if _, err := s.reg.PutManifest(ctx, local, registry.Reference{Digest: dgst}, oci.MediaTypeOCIManifest, payload, all); err != nil {
		return "", err
	}
	return dgst, nil
}

// modelType reads model_type from a cached config.json (the model family: llama, qwen2).
func (s *Service) modelType(ctx context.Context, f File) string {
	if f.Digest == "" || f.Size > 1<<20 {
		return ""
	}
	b, err := s.reg.OpenBlob(ctx, f.LocalRepo, oci.Digest(f.Digest))
	if err != nil {
		return ""
	}
	defer b.Close()
	var c struct {
		ModelType string `json:"model_type"`
	}
	if json.NewDecoder(io.LimitReader(b, 1<<20)).Decode(&c) != nil || oci.ValidateTag(c.ModelType) != nil {
		return ""
	}
	return c.ModelType
}

// ociTag turns a revision name into an OCI tag (refs/pr/1 → refs-pr-1); "" when it
// cannot be one.
func ociTag(rev string) string {
	t := strings.NewReplacer("/", "-", "+", "-").Replace(rev)
	if rev == "HEAD" || oci.ValidateTag(t) != nil {
		return ""
	}
	return t
}

// afterFile builds the commit's ModelPack artifact once its last file is cached.
func (s *Service) afterFile(ctx context.Context, repo Repo, commit string) {
	tags, err := s.store.RevisionsOf(ctx, repo, commit)
	if err != nil {
		s.log.Warn("hf: revisions of a commit", "err", err)
		return
	}
	if _, err := s.modelPack(ctx, repo, commit, tags, true); err != nil && !errors.Is(err, errIncomplete) {
		s.log.Warn("hf: ModelPack artifact", "repo", repo.String(), "commit", commit, "err", err)
	}
}

// WarmEvent reports one file of a warm-up.
type WarmEvent struct {
	Path   string
	Size   int64
	Cached bool // already in the cache
	Err    error
}

// Warm caches the files of repo at rev whose paths match include (all when empty) and
// no exclude pattern (path.Match, on the whole path or its base name), then, when the
// revision is completely cached, its ModelPack artifact. It returns the commit and the
// artifact's digest ("" for a partial revision).
func (s *Service) Warm(ctx context.Context, repo Repo, rev string, include, exclude []string, progress func(WarmEvent)) (string, oci.Digest, error) {
	if err := ValidateRepoID(repo.ID); err != nil {
		return "", "", err
	}
	if err := ValidateRevision(rev); err != nil {
		return "", "", err
	}
	local, err := LocalRepo(s.cfg.Project, repo)
	if err != nil {
		return "", "", err
	}
	commit, _, err := s.commitOf(ctx, repo, rev)
	if err != nil {
		return "", "", err
	}
	paths, err := s.listedFiles(ctx, repo, commit, false)
	if err != nil {
		return "", "", err
	}
	var failed int
	for _, p := range paths {
		if !matchAny(include, p, true) || matchAny(exclude, p, false) {
			continue
		}
		ev := WarmEvent{Path: p}
		ev.Size, ev.Cached, ev.Err = s.warmFile(ctx, repo, commit, p, local)
		if ev.Err != nil {
			failed++
		}
		if progress != nil {
			progress(ev)
		}
	}
	if failed > 0 {
		return commit, "", fmt.Errorf("hf: %d files of %s@%s could not be cached", failed, repo, rev)
	}
	tags := []string{rev}
	if more, err := s.store.RevisionsOf(ctx, repo, commit); err == nil {
		tags = append(tags, more...)
	}
	dgst, err := s.ModelPack(ctx, repo, commit, tags)
	if errors.Is(err, errIncomplete) {
		return commit, "", nil
	}
	return commit, dgst, err
}

func matchAny(patterns []string, p string, emptyMatches bool) bool {
	if len(patterns) == 0 {
		return emptyMatches
	}
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
		if ok, _ := path.Match(pat, path.Base(p)); ok {
			return true
		}
	}
	return false
}

// warmFile caches one file (downloading it once, as a client's GET would).
func (s *Service) warmFile(ctx context.Context, repo Repo, commit, p, local string) (int64, bool, error) {
	if f, err := s.store.File(ctx, repo, commit, p); err == nil {
		if b, err := s.reg.OpenBlob(ctx, f.LocalRepo, oci.Digest(f.Digest)); err == nil {
			b.Close()
			return f.Size, true, nil
		}
	}
	m, err := s.fileMeta(ctx, repo, commit, p)
	if err != nil {
		return 0, false, err
	}
	blob, st, _, err := s.open(ctx, repo, commit, p, local, m)
	if err != nil {
		return 0, false, err
	}
	if blob != nil {
		blob.Close()
		return m.size, true, nil
	}
	defer st.Close()
	if _, err := io.Copy(io.Discard, st.Reader(ctx, 0, -1)); err != nil {
		return 0, false, err
	}
	return m.size, false, nil
}
