package inventory

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

// TestRepositoriesAndPulls: a repository's size counts a shared blob once, pulls are
// counted after a flush, artifacts carry tags and referrers.
func TestRepositoriesAndPulls(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testRepositoriesAndPulls(t, b.Open(t)) })
	}
}

func testRepositoriesAndPulls(t *testing.T, m *meta.Store) {
	ctx := context.Background()
	blob := "sha256:" + "b"
	for i := 0; i < 63; i++ {
		blob += "b"
	}
	if _, err := m.CommitBlob(ctx, "team/app", meta.Blob{Digest: blob, Size: 1000, Location: "x"}, ""); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"sha256:1", "sha256:2"} {
		if err := m.PutManifest(ctx, meta.Manifest{Repository: "team/app", Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Payload: []byte("{}"), Blobs: []string{blob}}, []string{"t" + d[7:]}); err != nil {
			t.Fatal(err)
		}
	}
	p := NewPulls(m.DB(), 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer p.Close()
	p.Pulled("team/app", "sha256:1")
	p.Pulled("team/app", "sha256:1")
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s := NewStore(m.DB())
	repos, err := s.Repositories(ctx, "team", "", 10)
	if err != nil || len(repos) != 1 {
		t.Fatalf("repositories %+v %v", repos, err)
	}
	r := repos[0]
	if r.Size != 1004 || r.Tags != 2 || r.Manifests != 2 || r.Pulls != 2 || r.LastPullAt.IsZero() {
		t.Errorf("repository %+v: want size 1004 (blob once + 2 manifests), 2 tags, 2 pulls", r)
	}
	arts, err := s.Artifacts(ctx, "team/app", "", 10)
	if err != nil || len(arts) != 2 || arts[0].Pulls != 2 || arts[0].Size != 1002 || len(arts[0].Tags) != 1 {
		t.Fatalf("artifacts %+v %v", arts, err)
	}
}
