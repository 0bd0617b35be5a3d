package config

import (
	"errors"
	"fmt"
	"time"
)

// TLS modes.
const (
	TLSOff        = "off"
	TLSFiles      = "files"
	TLSSelfSigned = "self-signed"
	TLSACME       = "acme"
)

// TLS configures HTTPS. Mode empty means files when cert and key are set, off otherwise.
type TLS struct {
	Mode string `yaml:"mode"`
	// Cert and Key are PEM files (mode files), re-read on SIGHUP.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// Names are the DNS names and IP addresses the self-signed server certificate is
	// for (default: localhost, 127.0.0.1, ::1 and the host name).
	Names []string `yaml:"names"`
	// LeafValidity is how long a self-signed server certificate is valid; it is renewed
	// once two thirds of it have passed (default 2160h, 90 days).
	LeafValidity Duration `yaml:"leafValidity"`
	ACME         ACME     `yaml:"acme"`
}

// ACME configures certificates from an ACME CA (Let's Encrypt, or any RFC 8555 server).
type ACME struct {
	// Directory is the CA's directory URL (default Let's Encrypt production).
	Directory string `yaml:"directory"`
	// Email is the account contact the CA warns about expiry.
	Email string `yaml:"email"`
	// Domains are the names certificates are requested for; no other name is served.
	Domains []string `yaml:"domains"`
	// CA is a PEM file of roots to trust for the directory (a private ACME server).
	CA string `yaml:"ca"`
	// HTTPAddr, when set (e.g. ":80"), serves HTTP-01 challenges there; TLS-ALPN-01 on
	// the main listener works either way.
	HTTPAddr string `yaml:"httpAddr"`
	// AcceptTOS must be true: it accepts the CA's terms of service.
	AcceptTOS bool `yaml:"acceptTOS"`
}

// EffectiveMode resolves an empty mode.
func (t TLS) EffectiveMode() string {
	switch {
	case t.Mode != "":
		return t.Mode
	case t.Cert != "":
		return TLSFiles
	}
	return TLSOff
}

// On reports whether Berth serves HTTPS.
func (t TLS) On() bool { return t.EffectiveMode() != TLSOff }

func (t TLS) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch t.EffectiveMode() {
	case TLSOff:
		if t.Cert != "" || t.Key != "" {
			bad("tls.cert and tls.key are set but tls.mode is off")
		}
	case TLSFiles:
		if t.Cert == "" || t.Key == "" {
			bad("tls.mode files needs tls.cert and tls.key")
		}
	case TLSSelfSigned:
		if t.LeafValidity != 0 && time.Duration(t.LeafValidity) < time.Hour {
			bad("tls.leafValidity must be at least 1h")
		}
	case TLSACME:
		if len(t.ACME.Domains) == 0 {
			bad("tls.mode acme needs tls.acme.domains")
		}
		if !t.ACME.AcceptTOS {
			errs = append(errs, errors.New("tls.mode acme needs tls.acme.acceptTOS: true (the CA's terms of service)"))
		}
	default:
		bad("tls.mode %q: want off, files, self-signed or acme", t.Mode)
	}
	return errs
}
