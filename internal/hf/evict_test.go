package hf

import (
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/hf/hubtest"
	"github.com/berth-registry/berth/internal/meta/metatest"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

// TestEviction: over hf.cacheSize, the repository pulled least recently goes whole
// (files and ModelPack artifact, bytes deleted); one pulled within cacheMinAge stays;
// an evicted file downloads again from the Hub.
func TestEviction(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			fx := newFixture(t, 2<<20)
			mi := newMirror(t, b.Open(t), fx.hub, func(c *config.HF) { c.CacheSize, c.CacheMinAge = 1<<20, 0 })
			ctx := t.Context()
			model := Repo{Model, "Org/Tiny-Model"}
			if _, dgst, err := mi.svc.Warm(ctx, model, "main", nil, nil, nil); err != nil || dgst == "" {
				t.Fatalf("warm model: %s %v", dgst, err)
			}
			time.Sleep(5 * time.Millisecond)
			if resp, _ := mi.do(t, "GET", "/hf/datasets/org/data/resolve/main/train.csv"); resp.StatusCode != 200 {
				t.Fatalf("dataset = %d", resp.StatusCode)
			}
			before, _ := mi.svc.CacheSize(ctx)
			mi.svc.Evict(ctx)
			after, _ := mi.svc.CacheSize(ctx)
			if before < 2<<20 || after > 1<<20 {
				t.Errorf("cache %d bytes → %d, want within 1 MiB", before, after)
			}
			if fs, _ := mi.svc.store.Files(ctx, model, commit1); len(fs) != 0 {
				t.Errorf("the model's files are still listed: %v", fs)
			}
			if _, err := mi.reg.GetManifest(ctx, "hf/org/tiny-model", registry.Reference{Tag: "main"}, false); err == nil {
				t.Errorf("the model's ModelPack artifact survived")
			}
			if _, err := mi.reg.OpenBlob(ctx, "hf/org/tiny-model", oci.Digest("sha256:"+sha256hex(fx.weights))); err == nil {
				t.Errorf("the weights are still readable")
			}
			if _, err := mi.svc.store.File(ctx, Repo{Dataset, "org/data"}, commit1, "train.csv"); err != nil {
				t.Errorf("the dataset (pulled later) was evicted too: %v", err)
			}
			fx.hub.ResetLog()
			resp, body := mi.do(t, "GET", "/hf/Org/Tiny-Model/resolve/main/model.safetensors")
			if resp.StatusCode != 200 || len(body) != len(fx.weights) || fx.hub.Count("GET", "/repos/") != 1 {
				t.Errorf("after eviction: %d, %d bytes, %d CDN GETs", resp.StatusCode, len(body), fx.hub.Count("GET", "/repos/"))
			}

			// Within cacheMinAge nothing goes, even over the limit.
			mi.svc.cfg.CacheMinAge = config.Duration(time.Hour)
			mi.svc.Evict(ctx)
			if _, err := mi.svc.store.File(ctx, model, commit1, "model.safetensors"); err != nil {
				t.Errorf("a file pulled just now was evicted: %v", err)
			}
		})
	}
}

func sha256hex(b []byte) string { return hubtestFile(b).SHA256() }

func hubtestFile(b []byte) hubtest.File { return hubtest.File{Data: b} }
