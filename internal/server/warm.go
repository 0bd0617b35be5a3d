package server

import (
	"context"

	"github.com/berth-registry/berth/internal/adminapi"
	"github.com/berth-registry/berth/internal/proxy"
)

// warmFunc adapts the mirror's warm-up to the admin API's POST /mirror/warm; nil when
// nothing is mirrored.
func warmFunc(m *proxy.Mirror) adminapi.WarmFunc {
	if m == nil {
		return nil
	}
	return func(ctx context.Context, images, platforms []string, progress func(adminapi.WarmProgress)) error {
		return m.Warm(ctx, images, platforms, func(ev proxy.WarmEvent) {
			p := adminapi.WarmProgress{Image: ev.Image, Kind: ev.Kind, Digest: ev.Digest, Size: ev.Size, Cached: ev.Cached}
			if ev.Err != nil {
				p.Error = ev.Err.Error()
			}
			progress(p)
		})
	}
}
