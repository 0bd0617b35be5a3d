package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/meta/metatest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func served(t *testing.T, m *Manager) *x509.Certificate {
	t.Helper()
	c, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
	if err != nil || c == nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// verifies checks the served chain validates for name under the manager's CA alone.
func verifies(t *testing.T, m *Manager, name string) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(m.CAPEM()) {
		t.Fatal("CAPEM holds no certificate")
	}
	if _, err := served(t, m).Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: m.now()}); err != nil {
		t.Fatalf("served certificate does not verify for %s under the CA: %v", name, err)
	}
}

func TestSelfSignedReplicasAndRenewal(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db := b.Open(t).DB()
			cfg := config.TLS{Mode: config.TLSSelfSigned, Names: []string{"berth.internal", "10.0.0.5"}, LeafValidity: config.Duration(90 * 24 * time.Hour)}
			a, err := New(ctx, cfg, db, quiet)
			if err != nil {
				t.Fatal(err)
			}
			verifies(t, a, "berth.internal")
			first := served(t, a)
			if !slices.Contains(first.DNSNames, "berth.internal") || len(first.IPAddresses) != 1 || first.IPAddresses[0].String() != "10.0.0.5" {
				t.Fatalf("names %v %v", first.DNSNames, first.IPAddresses)
			}

			// A second replica serves the same chain instead of making its own.
			r2, err := New(ctx, cfg, db, quiet)
			if err != nil {
				t.Fatal(err)
			}
			if string(r2.CAPEM()) != string(a.CAPEM()) || served(t, r2).SerialNumber.Cmp(first.SerialNumber) != 0 {
				t.Fatal("the second replica serves another CA or server certificate")
			}

			// Before two thirds of its life nothing changes; after, one replica renews
			// under the same CA and the other adopts that certificate.
			a.now = func() time.Time { return time.Now().Add(59 * 24 * time.Hour) }
			if err := a.Reload(ctx); err != nil || served(t, a).SerialNumber.Cmp(first.SerialNumber) != 0 {
				t.Fatalf("renewed too early (err %v)", err)
			}
			later := func() time.Time { return time.Now().Add(61 * 24 * time.Hour) }
			a.now, r2.now = later, later
			if err := a.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			renewed := served(t, a)
			if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
				t.Fatal("not renewed after two thirds of its validity")
			}
			verifies(t, a, "berth.internal")
			if err := r2.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if served(t, r2).SerialNumber.Cmp(renewed.SerialNumber) != 0 {
				t.Fatal("the other replica issued its own certificate instead of adopting the renewed one")
			}

			// New names: a new certificate at once.
			cfg.Names = []string{"registry.example"}
			c, err := New(ctx, cfg, db, quiet)
			if err != nil {
				t.Fatal(err)
			}
			verifies(t, c, "registry.example")
		})
	}
}

func TestFilesReload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := metatest.Backends(t)[0].Open(t).DB()
	// Two certificates from a throwaway self-signed manager stand in for files.
	src, err := New(ctx, config.TLS{Mode: config.TLSSelfSigned, Names: []string{"one.test"}}, db, quiet)
	if err != nil {
		t.Fatal(err)
	}
	write := func() {
		data, _, err := src.store.Get(ctx, leafName)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"cert.pem", "key.pem"} {
			if err := os.WriteFile(filepath.Join(dir, p), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	write()
	m, err := New(ctx, config.TLS{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}, db, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if got := served(t, m).DNSNames; !slices.Equal(got, []string{"one.test"}) {
		t.Fatalf("serves %v", got)
	}
	// A broken file keeps the current certificate; a good one replaces it.
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(ctx); err == nil {
		t.Fatal("Reload accepted a broken certificate file")
	}
	if got := served(t, m).DNSNames; !slices.Equal(got, []string{"one.test"}) {
		t.Fatalf("after a failed reload serves %v", got)
	}
	src.cfg.Names = []string{"two.test"}
	if err := src.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	write()
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := served(t, m).DNSNames; !slices.Equal(got, []string{"two.test"}) {
		t.Fatalf("after reload serves %v", got)
	}
}
