package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-registry/berth/internal/adminapi"
	"github.com/berth-registry/berth/internal/hf"
	"github.com/berth-registry/berth/internal/proxy"
)

// warmFunc adapts the mirrors' warm-ups to the admin API's POST /mirror/warm: images
// go to the image mirror, hf:// references to the Hugging Face mirror (whole
// revisions, then their ModelPack artifact); nil when neither mirror is on.
func warmFunc(m *proxy.Mirror, h *hf.Service) adminapi.WarmFunc {
	if m == nil && h == nil {
		return nil
	}
	return func(ctx context.Context, images, platforms []string, progress func(adminapi.WarmProgress)) error {
		var models, refs []string
		for _, r := range images {
			if strings.HasPrefix(r, hf.RefScheme) {
				models = append(models, r)
			} else {
				refs = append(refs, r)
			}
		}
		var errs []error
		if len(models) > 0 {
			errs = append(errs, warmModels(ctx, h, models, progress))
		}
		if len(refs) > 0 {
			if m == nil {
				return errors.Join(append(errs, errors.New("this server mirrors no upstream registry (mirror.upstreams is empty)"))...)
			}
			errs = append(errs, m.Warm(ctx, refs, platforms, func(ev proxy.WarmEvent) {
				p := adminapi.WarmProgress{Image: ev.Image, Kind: ev.Kind, Digest: ev.Digest, Size: ev.Size, Cached: ev.Cached}
				if ev.Err != nil {
					p.Error = ev.Err.Error()
				}
				progress(p)
			}))
		}
		return errors.Join(errs...)
	}
}

// warmModels warms Hugging Face revisions, reporting each file (its path in Digest)
// and the ModelPack artifact (kind manifest).
func warmModels(ctx context.Context, h *hf.Service, models []string, progress func(adminapi.WarmProgress)) error {
	if h == nil {
		return errors.New("hf:// references need the Hugging Face mirror (hf.enabled)")
	}
	failed := 0
	for _, ref := range models {
		repo, rev, err := hf.ParseRef(ref)
		if err == nil {
			var dgst string
			_, d, werr := h.Warm(ctx, repo, rev, nil, nil, func(ev hf.WarmEvent) {
				p := adminapi.WarmProgress{Image: ref, Kind: "file", Digest: ev.Path, Size: ev.Size, Cached: ev.Cached}
				if ev.Err != nil {
					p.Error = ev.Path + ": " + ev.Err.Error()
				}
				progress(p)
			})
			err, dgst = werr, string(d)
			if err == nil && dgst != "" {
				progress(adminapi.WarmProgress{Image: ref, Kind: "manifest", Digest: dgst})
			}
		}
		if err != nil {
			failed++
			progress(adminapi.WarmProgress{Image: ref, Error: err.Error()})
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d models could not be warmed", failed, len(models))
	}
	return nil
}
