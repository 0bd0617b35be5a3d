package dist

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
	"time"
)

// TestTarReproducible: entries come out sorted with the source's time and fixed owners,
// whatever order they were given in, so equal inputs give equal bytes.
func TestTarReproducible(t *testing.T) {
	src := Source{Time: time.Unix(1700000000, 0).UTC()}
	a := []tarFile{{name: "b", mode: 0o644, data: []byte("2")}, {name: "a/", mode: 0o755, dir: true}, {name: "a/x", mode: 0o755, data: []byte("1"), uid: 7, gid: 7}}
	b := []tarFile{a[2], a[0], a[1]}
	ta, err := targz(a, src)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := targz(b, src)
	if !bytes.Equal(ta, tb) {
		t.Fatal("the same files in another order give other bytes")
	}
	raw, _ := tarBytes(a, src)
	tr := tar.NewReader(bytes.NewReader(raw))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(src.Time) || h.Uname != "" || (h.Name == "a/x" && h.Uid != 7) {
			t.Fatalf("header %+v", h)
		}
		names = append(names, h.Name)
	}
	if len(names) != 3 || names[0] != "a/" || names[1] != "a/x" || names[2] != "b" {
		t.Fatalf("order %v", names)
	}
}

func TestTagAndLabels(t *testing.T) {
	src := Source{Version: "v1.2.3", Commit: "abc", Time: time.Unix(0, 0).UTC()}
	if Tag(src) != "v1.2.3" || Labels(src)["org.opencontainers.image.revision"] != "abc" || Labels(src)["org.opencontainers.image.created"] != "1970-01-01T00:00:00Z" {
		t.Fatalf("std: %s %v", Tag(src), Labels(src))
	}
	src.FIPS = true
	if Tag(src) != "v1.2.3-fips" || Labels(src)["org.opencontainers.image.title"] != "Berth (FIPS 140-3: Go Cryptographic Module v1.0.0)" {
		t.Fatalf("fips: %s %v", Tag(src), Labels(src))
	}
}
