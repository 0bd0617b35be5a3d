package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// acmePrefix namespaces autocert's cache entries (account key, certificates).
const acmePrefix = "acme/"

// dbCache is autocert's cache in the database, so every replica serves the
// certificate one of them obtained and the account is registered once.
type dbCache struct{ s *Store }

func (c dbCache) Get(ctx context.Context, key string) ([]byte, error) {
	data, _, err := c.s.Get(ctx, acmePrefix+key)
	if errors.Is(err, ErrNotFound) {
		return nil, autocert.ErrCacheMiss
	}
	return data, err
}

func (c dbCache) Put(ctx context.Context, key string, data []byte) error {
	return c.s.Put(ctx, acmePrefix+key, data)
}

func (c dbCache) Delete(ctx context.Context, key string) error {
	return c.s.Delete(ctx, acmePrefix+key)
}

func (m *Manager) acmeDirectory() string {
	if m.cfg.ACME.Directory != "" {
		return m.cfg.ACME.Directory
	}
	return autocert.DefaultACMEDirectory
}

func (m *Manager) setupACME() error {
	a := m.cfg.ACME
	httpClient := &http.Client{Timeout: 30 * time.Second}
	if a.CA != "" {
		pem, err := os.ReadFile(a.CA)
		if err != nil {
			return fmt.Errorf("certs: tls.acme.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("certs: tls.acme.ca %s holds no certificates", a.CA)
		}
		httpClient.Transport = &http.Transport{
			Proxy:           http.ProxyFromEnvironment,
			TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool},
		}
	}
	m.acme = &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      dbCache{m.store},
		HostPolicy: autocert.HostWhitelist(a.Domains...),
		Email:      a.Email,
		Client:     &acme.Client{DirectoryURL: m.acmeDirectory(), HTTPClient: httpClient},
	}
	return nil
}
