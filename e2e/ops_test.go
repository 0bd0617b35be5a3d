package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pushBlob uploads content monolithically and returns its digest.
func pushBlob(t *testing.T, b *Berth, repo string, content []byte) string {
	t.Helper()
	sum := sha256.Sum256(content)
	dgst := "sha256:" + hex.EncodeToString(sum[:])
	resp, err := http.Post(b.URL("/v2/"+repo+"/blobs/uploads/?digest="+dgst), "application/octet-stream", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push blob: %s", resp.Status)
	}
	return dgst
}

// pushImage pushes a one-layer OCI image under tag and returns the manifest digest.
func pushImage(t *testing.T, b *Berth, repo, tag string, layer []byte) string {
	t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	cfgDigest := pushBlob(t, b, repo, cfg)
	layerDigest := pushBlob(t, b, repo, layer)
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		cfgDigest, len(cfg), layerDigest, len(layer))
	req, _ := http.NewRequest(http.MethodPut, b.URL("/v2/"+repo+"/manifests/"+tag), strings.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push manifest: %s", resp.Status)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

func httpStatus(t *testing.T, method, url string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestHealthAndMetrics(t *testing.T) {
	b := startBerth(t, BerthOptions{})
	pushImage(t, b, "ops/app", "v1", []byte("layer"))
	for _, p := range []string{"/healthz", "/readyz"} {
		if s := httpStatus(t, http.MethodGet, b.URL(p)); s != 200 {
			t.Errorf("%s: %d", p, s)
		}
	}
	resp, err := http.Get(b.URL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`berth_http_requests_total{code="201",method="PUT",route="manifest"} 1`,
		`berth_http_requests_total{code="201",method="POST",route="upload"} 2`,
		"berth_http_request_duration_seconds_bucket",
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The access log records each request as a structured line.
	b.Stop()
	logs, _ := filepath.Glob(filepath.Join(b.Data, "berth-*.log"))
	var all []byte
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		all = append(all, data...)
	}
	if !bytes.Contains(all, []byte("msg=request method=PUT path=/v2/ops/app/manifests/v1 status=201")) {
		t.Errorf("access log lacks the manifest PUT:\n%s", all)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("database:\n  driver: postgres\n  dsn: postgres://berth:hunter2@db/berth\n"), 0o600)
	out, err := runErr(nil, berthBin, "config", "check", "--config", good)
	if err != nil || !strings.Contains(out, "configuration is valid") || strings.Contains(out, "hunter2") || !strings.Contains(out, "REDACTED") {
		t.Fatalf("config check of a valid file: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("limits:\n  manifestSize: lots\nlog:\n  level: loud\n"), 0o600)
	out, err = runErr(nil, berthBin, "config", "check", "--config", bad)
	if err == nil || !strings.Contains(out, `line 2: "lots" is not a byte size`) {
		t.Fatalf("config check of an invalid file succeeded or was unclear:\n%s", out)
	}
	out, err = runErr([]string{"BERTH_LOG_LEVEL=loud"}, berthBin, "config", "check")
	if err == nil || !strings.Contains(out, "log.level") {
		t.Fatalf("env override not validated:\n%s", out)
	}
}

func TestRepoDeleteCommand(t *testing.T) {
	b := startBerth(t, BerthOptions{})
	pushImage(t, b, "team/gone", "v1", []byte("gone layer"))
	pushImage(t, b, "team/kept", "v1", []byte("kept layer"))
	b.Stop()
	out, err := runErr(nil, berthBin, "repo", "delete", "team/gone", "--config", b.Config, "--data", b.Data)
	if err != nil {
		t.Fatalf("repo delete: %v\n%s", err, out)
	}
	if out, err := runErr(nil, berthBin, "repo", "delete", "team/gone", "--config", b.Config, "--data", b.Data); err == nil {
		t.Fatalf("deleting a missing repository succeeded:\n%s", out)
	}
	b.Restart()
	if s := httpStatus(t, http.MethodGet, b.URL("/v2/team/gone/manifests/v1")); s != 404 {
		t.Errorf("deleted repository manifest: %d", s)
	}
	if s := httpStatus(t, http.MethodGet, b.URL("/v2/team/kept/manifests/v1")); s != 200 {
		t.Errorf("other repository manifest: %d", s)
	}
	resp, _ := http.Get(b.URL("/v2/_catalog"))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"repositories":["team/kept"]}` {
		t.Errorf("catalog after delete: %s", body)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, pool := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	b := startBerthTLS(t, fmt.Sprintf("tls:\n  cert: %s\n  key: %s\n", certFile, keyFile), pool)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + b.Addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("https ping: %s", resp.Status)
	}
	// Plain HTTP against the TLS port must not be served.
	if resp, err := http.Get("http://" + b.Addr + "/v2/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS listener")
		}
	}
}

// startBerthTLS is startBerth for a TLS listener (the harness probes over plain HTTP).
// A nil pool (Berth makes its own CA) probes readiness without verifying.
func startBerthTLS(t *testing.T, cfg string, pool *x509.CertPool) *Berth {
	t.Helper()
	return startBerthTLSAt(t, freeAddr(t), cfg, pool, "localhost")
}

// startBerthTLSAt is startBerthTLS on a given address (one an ACME server validates),
// probing with SNI serverName when pool is nil; env is added to berth's environment.
func startBerthTLSAt(t *testing.T, addr, cfg string, pool *x509.CertPool, serverName string, env ...string) *Berth {
	t.Helper()
	b := &Berth{t: t, Data: t.TempDir(), Env: env}
	b.Config = filepath.Join(b.Data, "berth.yaml")
	os.WriteFile(b.Config, []byte("log:\n  format: text\n"+cfg), 0o600)
	b.Addr = addr
	b.logPath = filepath.Join(b.Data, "berth.log")
	logf, _ := os.Create(b.logPath)
	b.cmd = newBerthCmd(b)
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(b.Stop)
	probe := &tls.Config{RootCAs: pool}
	if pool == nil { // ACME serves named hosts only
		probe = &tls.Config{InsecureSkipVerify: true, ServerName: serverName} //nolint:gosec // readiness probe only
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: probe}}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if resp, err := client.Get("https://" + b.Addr + "/v2/"); err == nil {
			resp.Body.Close()
			return b
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.dumpLog()
	t.Fatal("TLS berth did not start")
	return nil
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), pool
}
