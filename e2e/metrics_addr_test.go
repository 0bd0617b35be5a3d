package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetricsAddr: metrics.addr serves /metrics without credentials on its own listener
// while the main listener's /metrics stays behind auth; a taken metrics port stops the
// start before anything is created.
func TestMetricsAddr(t *testing.T) {
	maddr := freeAddr(t)
	b := startBerth(t, BerthOptions{Config: "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: " + auAdminPass + "\nmetrics:\n  addr: " + maddr + "\n"})
	resp, err := http.Get(b.URL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("main listener /metrics anonymous: %s, want 401", resp.Status)
	}
	resp, err = http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "berth_jobs_queue_depth") {
		t.Fatalf("metrics.addr /metrics: %s\n%.300s", resp.Status, body)
	}
	resp, err = http.Get("http://" + maddr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("metrics.addr serves /v2/: %s", resp.Status)
	}

	// A taken metrics port: berth serve fails and leaves the data directory empty.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "berth.yaml")
	os.WriteFile(cfg, []byte("metrics:\n  addr: "+ln.Addr().String()+"\n"), 0o600)
	out, err := runErr(nil, berthBin, "serve", "--config", cfg, "--data", data, "--addr", freeAddr(t))
	if err == nil || !strings.Contains(out, "metrics.addr") {
		t.Fatalf("berth serve with a taken metrics port: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Errorf("data directory holds %d entries after a failed start", len(entries))
	}
}
