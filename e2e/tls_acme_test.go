package e2e

// tls.mode acme against Let's Encrypt's test CA, pebble, on loopback, with its test DNS
// server answering every name with 127.0.0.1: Berth obtains a certificate for
// berth.test by TLS-ALPN-01 on its own listener (pebble really connects to validate),
// serves it, and a second replica on the same database serves it from the shared cache
// without asking the CA again.

import (
	"crypto/tls"
	"crypto/x509"
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

func TestTLSACMEPebble(t *testing.T) {
	bin := requireTool(t, "pebble")
	dnsBin := requireTool(t, "pebble-challtestsrv")
	const name = "berth.test"
	dir := t.TempDir()
	certPEM, keyPEM, pool := selfSigned(t) // pebble's own HTTPS certificate (127.0.0.1)
	caFile := filepath.Join(dir, "pebble-https-ca.pem")
	for p, data := range map[string][]byte{caFile: certPEM, filepath.Join(dir, "key.pem"): keyPEM} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	acmeAddr, mgmtAddr, berthAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	_, berthPort, _ := net.SplitHostPort(berthAddr)
	_, httpPort, _ := net.SplitHostPort(freeAddr(t))
	cfg := fmt.Sprintf(`{"pebble": {"listenAddress": %q, "managementListenAddress": %q,
  "certificate": %q, "privateKey": %q, "httpPort": %s, "tlsPort": %s,
  "ocspResponderURL": "", "externalAccountBindingRequired": false}}`,
		acmeAddr, mgmtAddr, caFile, filepath.Join(dir, "key.pem"), httpPort, berthPort)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dnsAddr, dnsMgmt := freeAddr(t), freeAddr(t)
	dns := exec.Command(dnsBin, "-dnsserver", dnsAddr, "-management", dnsMgmt, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-http01", "", "-https01", "", "-doh", "", "-tlsalpn01", "")
	dnsLog, _ := os.Create(filepath.Join(dir, "dns.log"))
	dns.Stdout, dns.Stderr = dnsLog, dnsLog
	if err := dns.Start(); err != nil {
		t.Fatal(err)
	}
	dnsLog.Close()
	t.Cleanup(func() { _ = dns.Process.Kill(); _ = dns.Wait() })
	waitFor(t, 20*time.Second, "pebble-challtestsrv", func() error {
		resp, err := http.Get("http://" + dnsMgmt + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})

	logPath := filepath.Join(dir, "pebble.log")
	logf, _ := os.Create(logPath)
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", dnsAddr)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	waitFor(t, 20*time.Second, "pebble", func() error {
		resp, err := https.Get("https://" + acmeAddr + "/dir")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})

	tlsCfg := fmt.Sprintf(`tls:
  mode: acme
  acme:
    directory: https://%s/dir
    ca: %s
    email: ops@example.com
    domains: [berth.test]
    acceptTOS: true
`, acmeAddr, caFile)
	b := startBerthTLSAt(t, berthAddr, tlsCfg, nil, name)

	// The served certificate chains to pebble's issuing root (from its management API).
	resp, err := https.Get("https://" + mgmtAddr + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble root: %s", rootPEM)
	}
	served := func(addr string) *x509.Certificate {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}}}
		resp, err := c.Get("https://" + addr + "/v2/")
		if err != nil {
			t.Fatalf("https with pebble's root: %v", err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0]
	}
	first := served(b.Addr)
	if !strings.Contains(first.Issuer.CommonName, "Pebble") {
		t.Errorf("issuer %q is not pebble's", first.Issuer.CommonName)
	}
	// Without tls.acme.httpAddr autocert offers only TLS-ALPN-01, so this is pebble
	// having connected to Berth's listener and checked the challenge certificate.
	if log, _ := os.ReadFile(logPath); !strings.Contains(string(log), "set VALID by completed challenge") {
		t.Logf("pebble log:\n%s", log)
		t.Error("pebble validated no challenge")
	}

	// A second replica on the same database: the same certificate, from the cache.
	replica := &Berth{t: t, Data: b.Data, Config: b.Config}
	replica.Addr = freeAddr(t)
	replica.logPath = filepath.Join(b.Data, "replica.log")
	rlog, _ := os.Create(replica.logPath)
	replica.cmd = newBerthCmd(replica)
	replica.cmd.Stdout, replica.cmd.Stderr = rlog, rlog
	if err := replica.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rlog.Close()
	t.Cleanup(replica.Stop)
	var second *x509.Certificate
	waitFor(t, 20*time.Second, "the replica", func() error {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}}}
		resp, err := c.Get("https://" + replica.Addr + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		second = resp.TLS.PeerCertificates[0]
		return nil
	})
	if second.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("the replica serves serial %x, not the cached %x: it asked the CA again", second.SerialNumber, first.SerialNumber)
	}
	// A name outside tls.acme.domains is never requested.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "evil.example"}}}
	if resp, err := c.Get("https://" + b.Addr + "/v2/"); err == nil {
		resp.Body.Close()
		t.Error("served a handshake for a name outside tls.acme.domains")
	}
}

// waitFor polls fn until it succeeds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
