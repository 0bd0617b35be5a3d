package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPostgresOutage: with PostgreSQL metadata, a database restart makes requests fail
// with 503 and an OCI error body (the server keeps running), and everything works again
// once the database is back, without restarting Berth.
func TestPostgresOutage(t *testing.T) {
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/initdb"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("PostgreSQL is not installed; CI must run .ci/install-tools.sh")
		}
		t.Skip("PostgreSQL is not installed (.ci/install-tools.sh)")
	}
	// The postgres OS user must be able to reach the cluster directory.
	dir, err := os.MkdirTemp("/tmp", "berth-pg-outage-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	env := []string{"BERTH_PG_PORT=" + port}
	script := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join("..", ".ci", name), args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	dsn := script("start-postgres.sh", dir)
	t.Cleanup(func() {
		cmd := exec.Command(filepath.Join("..", ".ci", "stop-postgres.sh"), "--rm", dir)
		cmd.Env = append(os.Environ(), env...)
		_ = cmd.Run()
	})

	b := startBerth(t, BerthOptions{Config: fmt.Sprintf("database:\n  driver: postgres\n  dsn: %s\n", dsn)})
	pushImage(t, b, "outage/app", "v1", []byte("before the outage"))

	script("stop-postgres.sh", dir)
	for _, p := range []string{"/v2/outage/app/manifests/v1", "/v2/outage/app/tags/list"} {
		resp, err := http.Get(b.URL(p))
		if err != nil {
			t.Fatalf("GET %s while the database is down: %v (the server must keep serving)", p, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Errors []struct{ Code string } `json:"errors"`
		}
		if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || len(e.Errors) != 1 || e.Errors[0].Code != "UNAVAILABLE" {
			t.Fatalf("GET %s while the database is down: %d %s, want 503 UNAVAILABLE", p, resp.StatusCode, body)
		}
	}
	if s := httpStatus(t, http.MethodGet, b.URL("/readyz")); s != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the database is down: %d, want 503", s)
	}
	if s := httpStatus(t, http.MethodGet, b.URL("/healthz")); s != http.StatusOK {
		t.Errorf("/healthz while the database is down: %d, want 200 (the process is alive)", s)
	}

	script("start-postgres.sh", dir)
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := httpStatus(t, http.MethodGet, b.URL("/v2/outage/app/manifests/v1"))
		if s == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("manifest GET still %d 20s after the database came back", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
	pushImage(t, b, "outage/app", "v2", []byte("after the outage"))
	if s := httpStatus(t, http.MethodGet, b.URL("/readyz")); s != http.StatusOK {
		t.Errorf("/readyz after recovery: %d", s)
	}
}
