package meta

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"
)

func TestReadCache(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, Options{Dialect: SQLite, DSN: filepath.Join(t.TempDir(), "berth.db"), CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(body, tag string) string {
		p := []byte(`{"schemaVersion":2,"x":"` + body + `"}`)
		sum := sha256.Sum256(p)
		d := "sha256:" + hex.EncodeToString(sum[:])
		if err := s.PutManifest(ctx, Manifest{Repository: "r", Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Payload: p}, []string{tag}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d1 := put("one", "v1")
	for range 3 {
		if _, err := s.GetManifest(ctx, "r", "v1", false, true); err != nil {
			t.Fatal(err)
		}
	}
	st := s.CacheStats()
	if st.Hits < 2 || st.Entries != 1 {
		t.Fatalf("three lookups of one tag: %+v, want at least 2 hits and 1 entry", st)
	}

	// Writes that change nothing the cache holds leave it alone: new tags and
	// manifests (nothing absent is cached), leases, audit entries.
	put("two", "v2")
	if _, err := s.TryLease(ctx, "x", "me", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetManifest(ctx, "r", "v1", false, true); err != nil {
		t.Fatal(err)
	}
	if after := s.CacheStats(); after.Flushes != st.Flushes || after.Hits != st.Hits+1 {
		t.Fatalf("after unrelated writes: %+v, before %+v", after, st)
	}

	// Moving the tag flushes, and the lookup sees the move.
	d3 := put("three", "v1")
	m, err := s.GetManifest(ctx, "r", "v1", false, false)
	if err != nil || m.Digest != d3 || m.Digest == d1 || m.Payload != nil {
		t.Fatalf("after the move: %s %v payload %d bytes", m.Digest, err, len(m.Payload))
	}
	if s.CacheStats().Flushes != st.Flushes+1 {
		t.Fatalf("a moved tag did not flush: %+v", s.CacheStats())
	}
}
