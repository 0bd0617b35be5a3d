package certs

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/meta"
)

// Names of the stored self-signed material.
const (
	caName   = "selfsigned/ca"
	leafName = "selfsigned/leaf"
)

// defaultLeafValidity is the self-signed server certificate's life (renewed at 2/3).
const defaultLeafValidity = 90 * 24 * time.Hour

// Manager serves the current certificate and replaces it without a restart.
type Manager struct {
	cfg   config.TLS
	mode  string
	store *Store
	log   *slog.Logger
	now   func() time.Time

	cur  atomic.Pointer[tls.Certificate]
	mu   sync.Mutex // serializes Reload
	ca   []byte     // self-signed: the CA certificate PEM nodes install
	acme *autocert.Manager
}

// New loads (or, self-signed, creates) the certificate the configuration selects. It
// returns nil for tls.mode off.
func New(ctx context.Context, cfg config.TLS, db *meta.DB, log *slog.Logger) (*Manager, error) {
	m := &Manager{cfg: cfg, mode: cfg.EffectiveMode(), store: NewStore(db), log: log, now: time.Now}
	switch m.mode {
	case config.TLSOff:
		return nil, nil
	case config.TLSACME:
		if err := m.setupACME(); err != nil {
			return nil, err
		}
		return m, nil
	}
	if err := m.Reload(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Mode is the effective tls.mode.
func (m *Manager) Mode() string { return m.mode }

// CAPEM is the self-signed CA certificate nodes must trust (nil in other modes).
func (m *Manager) CAPEM() []byte { return m.ca }

// TLSConfig is the server configuration: TLS 1.2+, the current certificate per
// handshake (so a reload applies to new connections while open ones keep theirs).
func (m *Manager) TLSConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if m.acme != nil {
		c.GetCertificate = m.acme.GetCertificate
		c.NextProtos = append(c.NextProtos, acme.ALPNProto) // TLS-ALPN-01
		return c
	}
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return m.cur.Load(), nil }
	return c
}

// HTTPHandler answers ACME HTTP-01 challenges (and redirects the rest to https); nil
// unless tls.acme.httpAddr is set.
func (m *Manager) HTTPHandler() http.Handler {
	if m.acme == nil || m.cfg.ACME.HTTPAddr == "" {
		return nil
	}
	return m.acme.HTTPHandler(nil)
}

// Describe is the start-up summary's TLS field.
func (m *Manager) Describe() string {
	switch m.mode {
	case config.TLSACME:
		return fmt.Sprintf("acme (%v from %s)", m.cfg.ACME.Domains, m.acmeDirectory())
	case config.TLSSelfSigned:
		sum := sha256.Sum256(m.caDER())
		return fmt.Sprintf("self-signed (CA sha256:%s, install it on nodes: berth tls ca)", hex.EncodeToString(sum[:8]))
	}
	return "files (" + m.cfg.Cert + ")"
}

func (m *Manager) caDER() []byte {
	if c, err := parseCertPEM(m.ca); err == nil {
		return c.Raw
	}
	return nil
}

// Reload re-reads the certificate: the files (mode files) or the stored material,
// renewing the self-signed server certificate when it is due. On failure the current
// certificate stays in use.
func (m *Manager) Reload(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var cert tls.Certificate
	var err error
	switch m.mode {
	case config.TLSFiles:
		cert, err = tls.LoadX509KeyPair(m.cfg.Cert, m.cfg.Key)
		if err != nil {
			err = fmt.Errorf("certs: load %s: %w", m.cfg.Cert, err)
		}
	case config.TLSSelfSigned:
		cert, err = m.selfSigned(ctx)
	default:
		return nil // ACME renews by itself
	}
	if err != nil {
		return err
	}
	if prev := m.cur.Load(); prev == nil || !slices.Equal(prev.Certificate[0], cert.Certificate[0]) {
		m.cur.Store(&cert)
		if prev != nil {
			m.log.Info("TLS certificate replaced", "mode", m.mode, "expires", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// selfSigned loads the CA and server certificate every replica shares, creating the
// CA on the first start of the first replica and a new server certificate when due.
func (m *Manager) selfSigned(ctx context.Context) (tls.Certificate, error) {
	now := m.now()
	caData, _, err := m.store.Get(ctx, caName)
	if errors.Is(err, ErrNotFound) {
		fresh, err := newAuthority(now)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("certs: create CA: %w", err)
		}
		if _, err := m.store.Create(ctx, caName, fresh); err != nil {
			return tls.Certificate{}, err
		}
		if caData, _, err = m.store.Get(ctx, caName); err != nil { // another replica's may have won
			return tls.Certificate{}, err
		}
	} else if err != nil {
		return tls.Certificate{}, err
	}
	ca, err := parseAuthority(caData)
	if err != nil {
		return tls.Certificate{}, err
	}
	m.ca = ca.pem
	names := m.names()
	validity := time.Duration(m.cfg.LeafValidity)
	if validity == 0 {
		validity = defaultLeafValidity
	}
	for range 3 { // lost races re-read what the winner stored
		data, at, err := m.store.Get(ctx, leafName)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return tls.Certificate{}, err
		}
		reason := "none stored yet"
		var cert tls.Certificate
		if err == nil {
			if cert, err = tls.X509KeyPair(data, data); err != nil {
				reason = "the stored one is unreadable"
			} else if reason = leafDue(cert.Leaf, ca, names, now); reason == "" {
				return cert, nil
			}
		}
		fresh, err := ca.issue(names, validity, now)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("certs: issue server certificate: %w", err)
		}
		var won bool
		if at.IsZero() {
			won, err = m.store.Create(ctx, leafName, fresh)
		} else {
			won, err = m.store.Replace(ctx, leafName, fresh, at)
		}
		if err != nil {
			return tls.Certificate{}, err
		}
		if won {
			m.log.Info("issued a self-signed server certificate", "names", names, "reason", reason, "valid_for", validity.String())
			return tls.X509KeyPair(fresh, fresh)
		}
	}
	return tls.Certificate{}, errors.New("certs: server certificate kept changing under concurrent renewals")
}

// names are the configured names, or this host's loopback names and host name.
func (m *Manager) names() []string {
	if len(m.cfg.Names) > 0 {
		return m.cfg.Names
	}
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	return names
}

// Run renews and picks up certificates other replicas renewed, hourly.
func (m *Manager) Run(ctx context.Context) {
	if m.mode != config.TLSSelfSigned {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Reload(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("TLS certificate renewal", "err", err)
			}
		}
	}
}

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("certs: no certificate PEM")
	}
	return x509.ParseCertificate(block.Bytes)
}
