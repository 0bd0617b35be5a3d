package inventory

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

func TestFind(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			m := b.Open(t)
			// Pushed in this order; team/b pulled.
			for i, repo := range []string{"team/b", "team/a_x", "team/c", "other/ax", "team"} {
				d := "sha256:" + string(rune('1'+i))
				if err := m.PutManifest(ctx, meta.Manifest{Repository: repo, Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Payload: []byte("{}")}, []string{"v1"}); err != nil {
					t.Fatal(err)
				}
				// Push times a second apart: the order must not hang on the clock's resolution.
				if _, err := m.DB().Exec(ctx, `UPDATE manifests SET created_at = $1 WHERE digest = $2`, int64(1_000_000+i*1000), d); err != nil {
					t.Fatal(err)
				}
				if _, err := m.DB().Exec(ctx, `UPDATE tags SET updated_at = $1 WHERE manifest_digest = $2`, int64(1_000_000+i*1000), d); err != nil {
					t.Fatal(err)
				}
			}
			p := NewPulls(m.DB(), 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
			p.Pulled("team/b", "sha256:1")
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			p.Close()
			s := NewStore(m.DB())
			for _, tt := range []struct {
				name string
				q    Query
				want []string
			}{
				{"project by name", Query{Project: "team"}, []string{"team", "team/a_x", "team/b", "team/c"}},
				{"project by push", Query{Project: "team", Order: ByPushed}, []string{"team", "team/c", "team/a_x", "team/b"}},
				{"project by pull", Query{Project: "team", Order: ByPulled}, []string{"team/b", "team", "team/a_x", "team/c"}},
				{"page", Query{Project: "team", Offset: 1, N: 2}, []string{"team/a_x", "team/b"}},
				{"search everywhere", Query{Contains: "ax"}, []string{"other/ax"}},
				{"underscore is literal", Query{Contains: "a_"}, []string{"team/a_x"}},
				{"percent is literal", Query{Contains: "%"}, nil},
			} {
				got, err := s.Find(ctx, tt.q)
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				var names []string
				for _, r := range got {
					names = append(names, r.Name)
				}
				if !slices.Equal(names, tt.want) {
					t.Errorf("%s: %v, want %v", tt.name, names, tt.want)
				}
			}
		})
	}
}
