package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// caValidity is long: nodes install the CA once, and replacing it means touching every
// node. The server certificate under it is short-lived and renewed by Berth.
const caValidity = 10 * 365 * 24 * time.Hour

// authority is the self-signed CA: its certificate and key.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte // the certificate alone, what nodes install
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pemBlock("PRIVATE KEY", der), nil
}

// sign creates a key and a certificate from tmpl signed by parent (nil: self-signed),
// stored as certificate PEM, then chain (PEM, may be empty), then key PEM.
func sign(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, chain []byte) ([]byte, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	if tmpl.SerialNumber, err = serial(); err != nil {
		return nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
		tmpl.Subject.CommonName += " " + tmpl.SerialNumber.Text(16)[:8]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	out := append(pemBlock("CERTIFICATE", der), chain...)
	return append(out, kp...), nil
}

// newAuthority creates a CA; its stored form is certificate PEM then key PEM.
func newAuthority(now time.Time) ([]byte, error) {
	return sign(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "Berth local CA", Organization: []string{"Berth"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, nil, nil, nil)
}

func parseAuthority(data []byte) (*authority, error) {
	pair, err := tls.X509KeyPair(data, data)
	if err != nil {
		return nil, fmt.Errorf("certs: stored CA: %w", err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("certs: stored CA key is not ECDSA")
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certs: stored CA: %w", err)
	}
	return &authority{cert: cert, key: key, pem: pemBlock("CERTIFICATE", cert.Raw)}, nil
}

// issue signs a server certificate for names; its stored form is leaf PEM, CA PEM (the
// chain served) and the leaf key PEM.
func (a *authority) issue(names []string, validity time.Duration, now time.Time) ([]byte, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: names[0], Organization: []string{"Berth"}},
		NotBefore:   now.Add(-5 * time.Minute),
		NotAfter:    now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return sign(tmpl, a.cert, a.key, a.pem)
}

// leafDue reports why a stored server certificate must be replaced ("" when it need
// not): it names other hosts, another CA signed it, or two thirds of its life are gone.
func leafDue(leaf *x509.Certificate, a *authority, names []string, now time.Time) string {
	var have []string
	have = append(have, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		have = append(have, ip.String())
	}
	want := make([]string, 0, len(names))
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		want = append(want, n)
	}
	slices.Sort(have)
	slices.Sort(want)
	switch {
	case !slices.Equal(have, slices.Compact(want)):
		return "the configured names changed"
	case !bytes.Equal(leaf.RawIssuer, a.cert.RawSubject) || leaf.CheckSignatureFrom(a.cert) != nil:
		return "it was not signed by the current CA"
	case now.After(leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3)):
		return "two thirds of its validity have passed"
	}
	return ""
}
