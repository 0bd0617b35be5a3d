package e2e

// Issue 13's TLS for nodes: Berth makes its own CA (tls.mode self-signed), `berth mirror
// config containerd --dir` writes a certs.d tree that installs it, and a real
// containerd pulls through Berth over HTTPS with verification on; certificates from
// files are replaced on SIGHUP without dropping open connections.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTLSSelfSignedContainerd(t *testing.T) {
	cd := miStartContainerd(t)
	p := pauseFixture(t)
	up := startBerth(t, BerthOptions{})
	seedPause(t, up, "pause", "3.10")
	fu := newMiUpstream(t, up)
	b := startBerthTLS(t, fmt.Sprintf(`tls:
  mode: self-signed
  names: [localhost, 127.0.0.1]
mirror:
  upstreams:
    - name: registry.k8s.io
      url: %s
`, fu.URL()), nil)

	caPEM := run(t, nil, berthBin, "tls", "ca", "--config", b.Config, "--data", b.Data)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatalf("berth tls ca printed no certificate:\n%s", caPEM)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + b.Addr + "/v2/")
	if err != nil {
		t.Fatalf("https with Berth's CA: %v", err)
	}
	resp.Body.Close()
	if log, _ := os.ReadFile(b.logPath); !strings.Contains(string(log), "tls=\"self-signed (CA sha256:") {
		t.Error("the start-up summary does not name the self-signed CA")
	}

	hostsDir := filepath.Join(t.TempDir(), "certs.d")
	out := run(t, nil, berthBin, "mirror", "config", "containerd", "--config", b.Config, "--data", b.Data,
		"--url", "https://"+b.Addr, "--dir", hostsDir)
	t.Logf("berth mirror config containerd --dir:\n%s", out)
	hosts, err := os.ReadFile(filepath.Join(hostsDir, "registry.k8s.io", "hosts.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(hosts, []byte("skip_verify")) || !bytes.Contains(hosts, []byte(`ca = "berth-ca.crt"`)) {
		t.Fatalf("hosts.toml:\n%s", hosts)
	}
	if ca, _ := os.ReadFile(filepath.Join(hostsDir, "registry.k8s.io", "berth-ca.crt")); string(ca) != caPEM {
		t.Fatal("the certs.d tree does not hold Berth's CA")
	}

	ref := "registry.k8s.io/pause:3.10"
	cd.mustCtr(t, "image", "pull", "--hosts-dir", hostsDir, "--platform", "linux/amd64", ref)
	if ls := cd.mustCtr(t, "image", "ls"); !strings.Contains(ls, p.IndexDigest) {
		t.Fatalf("ctr image ls lacks %s:\n%s", p.IndexDigest, ls)
	}
	// Without the CA, containerd must refuse: verification really is on.
	if err := os.Remove(filepath.Join(hostsDir, "registry.k8s.io", "berth-ca.crt")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(hostsDir, "registry.k8s.io", "hosts.toml"), bytes.ReplaceAll(hosts, []byte(`  ca = "berth-ca.crt"`+"\n"), nil), 0o644)
	cd.mustCtr(t, "image", "rm", ref)
	if out, err := cd.ctr("image", "pull", "--hosts-dir", hostsDir, "--platform", "linux/amd64", ref); err == nil {
		t.Fatalf("containerd pulled over https without Berth's CA installed:\n%s", out)
	}
}

func TestTLSReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certA, keyA, poolA := selfSigned(t)
	certB, keyB, poolB := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(c, k []byte) {
		if err := os.WriteFile(certFile, c, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, k, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certA, keyA)
	b := startBerthTLS(t, fmt.Sprintf("tls:\n  cert: %s\n  key: %s\n", certFile, keyFile), poolA)

	// One keep-alive connection, opened under certificate A.
	both := x509.NewCertPool()
	both.AppendCertsFromPEM(certA)
	both.AppendCertsFromPEM(certB)
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: both}, MaxIdleConnsPerHost: 1}}
	get := func(c *http.Client) (reused bool, leaf []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "https://"+b.Addr+"/v2/", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // a fully read body returns the connection for reuse
		resp.Body.Close()
		return reused, resp.TLS.PeerCertificates[0].Raw
	}
	_, first := get(old)

	write(certB, keyB)
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	fresh := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: poolB}, DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, "https://"+b.Addr+"/v2/", nil)
		resp, err := fresh.Do(req)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.dumpLog()
			t.Fatalf("new connections still do not get certificate B after SIGHUP: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	reused, leaf := get(old)
	if !reused || !bytes.Equal(leaf, first) {
		t.Fatalf("the connection opened before the reload was dropped (reused=%v, same certificate=%v)", reused, bytes.Equal(leaf, first))
	}
	if !strings.Contains(readFile(t, b.logPath), "SIGHUP: TLS certificate reloaded") {
		t.Error("no log line for the reload")
	}
	// A broken file on SIGHUP keeps the current certificate and says so.
	os.WriteFile(certFile, []byte("garbage"), 0o600)
	b.cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(readFile(t, b.logPath), "still serving the previous one") {
		if time.Now().After(deadline) {
			t.Fatal("no error logged for a broken certificate on SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://"+b.Addr+"/v2/", nil)
	resp, err := fresh.Do(req)
	if err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	resp.Body.Close()
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
