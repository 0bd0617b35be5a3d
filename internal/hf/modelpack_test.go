package hf

import (
	"bytes"
	"encoding/json"
	"io"
	"sort"
	"testing"

	"github.com/berth-registry/berth/internal/meta/metatest"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

func TestLayerMediaType(t *testing.T) {
	for _, tc := range []struct {
		t    RepoType
		path string
		want string
	}{
		{Model, "model.safetensors", mediaTypeWeight},
		{Model, "onnx/model.onnx", mediaTypeWeight},
		{Model, "pytorch_model-00001-of-00002.bin", mediaTypeWeight},
		{Model, "q4/model-Q4_K_M.gguf", mediaTypeWeight},
		{Model, "config.json", mediaTypeWeightCfg},
		{Model, "tokenizer.model", mediaTypeWeightCfg},
		{Model, "merges.txt", mediaTypeWeightCfg},
		{Model, "README.md", mediaTypeDoc},
		{Model, "LICENSE", mediaTypeDoc},
		{Model, "modeling_tiny.py", mediaTypeCode},
		{Dataset, "train.csv", mediaTypeDataset},
		{Dataset, "data/train-00000.parquet", mediaTypeDataset},
		{Dataset, "README.md", mediaTypeDoc},
	} {
		if got := layerMediaType(tc.t, tc.path); got != tc.want {
			t.Errorf("layerMediaType(%s, %s) = %s, want %s", tc.t, tc.path, got, tc.want)
		}
	}
}

// TestModelPack: a warmed revision is a ModelPack artifact whose layers are the cached
// files (the same blobs, no copy), tagged by commit and branch, with a digest that does
// not depend on the installation or the order of downloads; a revision cached by
// clients becomes one by itself; a partial warm-up makes none.
func TestModelPack(t *testing.T) {
	fx := newFixture(t, 1<<20)
	repo := Repo{Model, "Org/Tiny-Model"}
	var digests []oci.Digest
	for i := range 2 {
		mi := newMirror(t, metatest.Backends(t)[0].Open(t), fx.hub, nil)
		var events []WarmEvent
		commit, dgst, err := mi.svc.Warm(t.Context(), repo, "main", nil, nil, func(e WarmEvent) { events = append(events, e) })
		if err != nil || commit != commit1 || dgst == "" || len(events) != 4 {
			t.Fatalf("Warm = %s %s %v (%d events)", commit, dgst, err, len(events))
		}
		digests = append(digests, dgst)
		for _, ref := range []registry.Reference{{Tag: "main"}, {Tag: commit1}, {Digest: dgst}} {
			m, err := mi.reg.GetManifest(t.Context(), "hf/org/tiny-model", ref, true)
			if err != nil || m.Digest != string(dgst) {
				t.Fatalf("GetManifest(%v) = %s %v", ref, m.Digest, err)
			}
		}
		if i > 0 {
			continue
		}
		m, _ := mi.reg.GetManifest(t.Context(), "hf/org/tiny-model", registry.Reference{Digest: dgst}, true)
		var man modelManifest
		if err := json.Unmarshal(m.Payload, &man); err != nil {
			t.Fatal(err)
		}
		if man.ArtifactType != ArtifactTypeModel || man.Config.MediaType != MediaTypeModelConfig || man.MediaType != oci.MediaTypeOCIManifest {
			t.Errorf("manifest types: %+v", man)
		}
		want := map[string][]byte{"README.md": []byte("# tiny model\n"), "config.json": fx.config, "model.safetensors": fx.weights, "onnx/model.onnx": fx.weights2}
		var paths []string
		for _, l := range man.Layers {
			p := l.Annotations[AnnotationFilepath]
			paths = append(paths, p)
			b, err := mi.reg.OpenBlob(t.Context(), "hf/org/tiny-model", oci.Digest(l.Digest))
			if err != nil {
				t.Fatalf("layer %s: %v", p, err)
			}
			got, _ := io.ReadAll(b)
			b.Close()
			if !bytes.Equal(got, want[p]) || l.Size != int64(len(want[p])) || l.MediaType != layerMediaType(Model, p) {
				t.Errorf("layer %s: %d bytes, %s", p, len(got), l.MediaType)
			}
			f, _ := mi.svc.store.File(t.Context(), repo, commit1, p)
			if f.Digest != l.Digest {
				t.Errorf("layer %s is %s, the cached file %s", p, l.Digest, f.Digest)
			}
		}
		if !sort.StringsAreSorted(paths) || len(paths) != 4 {
			t.Errorf("layers %v, want the 4 files sorted by path", paths)
		}
		cb, _ := mi.reg.OpenBlob(t.Context(), "hf/org/tiny-model", oci.Digest(man.Config.Digest))
		var cfg modelConfig
		_ = json.NewDecoder(cb).Decode(&cfg)
		cb.Close()
		if cfg.ModelFS.Type != "layers" || len(cfg.ModelFS.DiffIDs) != 4 || cfg.Descriptor.Revision != commit1 || cfg.Descriptor.Family != "tiny" ||
			cfg.Config.Format != "safetensors" || cfg.Descriptor.Name != "Org/Tiny-Model" {
			t.Errorf("config = %+v", cfg)
		}
		// Again: the same digest.
		if again, err := mi.svc.ModelPack(t.Context(), repo, commit1, []string{"main"}); err != nil || again != dgst {
			t.Errorf("ModelPack again = %s %v, want %s", again, err, dgst)
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("two installations made %s and %s", digests[0], digests[1])
	}

	// Clients' downloads (listing, then every file, in another order) make it too.
	mi := newMirror(t, metatest.Backends(t)[0].Open(t), fx.hub, nil)
	mi.do(t, "GET", "/hf/api/models/Org/Tiny-Model/tree/main?recursive=true")
	for _, p := range []string{"onnx/model.onnx", "model.safetensors", "config.json", "README.md"} {
		if resp, _ := mi.do(t, "GET", "/hf/Org/Tiny-Model/resolve/main/"+p); resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", p, resp.StatusCode)
		}
	}
	var m struct{ Digest string }
	for range 100 { // built after the last file's flight ended
		got, err := mi.reg.GetManifest(t.Context(), "hf/org/tiny-model", registry.Reference{Tag: commit1}, false)
		if err == nil {
			m.Digest = got.Digest
			break
		}
		waitABit()
	}
	if m.Digest != string(digests[0]) {
		t.Errorf("the artifact of client downloads = %q, want %s", m.Digest, digests[0])
	}

	// A partial warm-up caches what it matched and makes no artifact.
	mi = newMirror(t, metatest.Backends(t)[0].Open(t), fx.hub, nil)
	var n int
	_, dgst, err := mi.svc.Warm(t.Context(), repo, "main", []string{"*.json", "*.md"}, []string{"README.md"}, func(WarmEvent) { n++ })
	if err != nil || dgst != "" || n != 1 {
		t.Errorf("partial warm = %q %v, %d files (want config.json only)", dgst, err, n)
	}
}
