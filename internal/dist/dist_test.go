package dist

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
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

// TestBuildPlatforms: one go build per platform writes every program into the
// platform's directory, the platforms build at once and come back in order, and one
// platform's failure is the error (not the kills it causes in the others).
func TestBuildPlatforms(t *testing.T) {
	mod := t.TempDir()
	files := map[string]string{"go.mod": "module example.com/tiny\n\ngo 1.24\n"}
	for _, p := range Programs {
		files["cmd/"+p+"/main.go"] = "package main\n\nfunc main() { println(\"" + p + "\") }\n"
	}
	for name, body := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(mod, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mod, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := Source{Dir: mod, Version: "v0", Commit: "c"}
	out := t.TempDir()
	dir := func(goos, goarch string) string { return filepath.Join(out, goos+"-"+goarch) }
	host := runtime.GOOS + "/" + runtime.GOARCH
	bins, err := BuildPlatforms(context.Background(), src, []string{host, "linux/386"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range []string{dir(runtime.GOOS, runtime.GOARCH), dir("linux", "386")} {
		for _, p := range Programs {
			if bins[i][p] != filepath.Join(d, p) {
				t.Fatalf("platform %d %s: %q, want it in %s", i, p, bins[i][p], d)
			}
			if fi, err := os.Stat(bins[i][p]); err != nil || fi.Size() == 0 {
				t.Fatalf("%s: %v", bins[i][p], err)
			}
		}
	}
	if out, err := exec.Command(bins[0]["cric"]).CombinedOutput(); err != nil || string(out) != "cric\n" {
		t.Fatalf("the host cric: %v %q", err, out)
	}
	_, err = BuildPlatforms(context.Background(), src, []string{host, "linux/nosucharch"}, dir)
	if err == nil || !strings.Contains(err.Error(), "linux/nosucharch") {
		t.Fatalf("a platform go cannot build: %v", err)
	}
	if _, err := BuildPlatforms(context.Background(), src, []string{"linux"}, dir); err == nil || !strings.Contains(err.Error(), "want os/arch") {
		t.Fatalf("platform without an arch: %v", err)
	}
}
