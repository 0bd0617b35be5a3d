package inventory

import (
	"context"
	"fmt"
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

// One manifest with more tags than an artifact lists: the names are capped, the count
// is whole, and a page of its tags describes it once.
func TestManyTagsOneManifest(t *testing.T) {
	ctx := context.Background()
	m := metatest.Backends(t)[0].Open(t)
	var tags []string
	for i := range maxArtifactTags + 50 {
		tags = append(tags, fmt.Sprintf("t%04d", i))
	}
	if err := m.PutManifest(ctx, meta.Manifest{Repository: "team/app", Digest: "sha256:1", MediaType: "application/vnd.oci.image.manifest.v1+json", Payload: []byte("{}")}, tags); err != nil {
		t.Fatal(err)
	}
	s := NewStore(m.DB())
	page, err := s.Tags(ctx, "team/app", "", 20)
	if err != nil || len(page) != 20 {
		t.Fatalf("tags page: %d, %v", len(page), err)
	}
	for _, tg := range page {
		if len(tg.Artifact.Tags) != maxArtifactTags || tg.Artifact.TagCount != maxArtifactTags+50 {
			t.Fatalf("tag %s: artifact lists %d tags, counts %d; want %d and %d", tg.Name, len(tg.Artifact.Tags), tg.Artifact.TagCount, maxArtifactTags, maxArtifactTags+50)
		}
	}
}
