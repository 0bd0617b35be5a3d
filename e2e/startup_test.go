package e2e

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartupPortTaken: berth serve on a port that is already taken fails with a clear
// error and creates nothing on disk (no empty database or storage tree left behind).
func TestStartupPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := filepath.Join(t.TempDir(), "fresh")
	out, err := runErr(nil, berthBin, "serve", "--addr", ln.Addr().String(), "--data", data)
	if err == nil || !strings.Contains(out, "listen") || !strings.Contains(out, "address already in use") {
		t.Fatalf("berth serve on a taken port: err %v, output:\n%s", err, out)
	}
	if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the failed start created %s (%v)", data, err)
	}
}

// TestStartupSummary: the first line names what is served: address, auth, database,
// storage, data directory and upstreams.
func TestStartupSummary(t *testing.T) {
	b := startBerth(t, BerthOptions{Config: "mirror:\n  upstreams:\n    - name: registry.k8s.io\n"})
	log := miLog(t, b)
	for _, want := range []string{"berth listening", "auth=false", "database=\"sqlite ", "storage=\"filesystem ", "upstreams=registry.k8s.io", "data="} {
		if !strings.Contains(log, want) {
			t.Errorf("start-up log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "AUTHENTICATION IS OFF") {
		t.Errorf("warned about auth on a loopback address:\n%s", log)
	}
}
