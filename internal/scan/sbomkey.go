package scan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// SBOMKey returns the key Berth signs its SBOM referrers with, making it on first use;
// the first replica's key wins a race (migration 00023).
func (s *Store) SBOMKey(ctx context.Context) (*ecdsa.PrivateKey, error) {
	var pemText string
	err := s.db.QueryRow(ctx, `SELECT private_pem FROM scan_keys WHERE id = 1`).Scan(&pemText)
	if err != nil {
		key, gerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if gerr != nil {
			return nil, fmt.Errorf("scan: make the SBOM signing key: %w", gerr)
		}
		der, gerr := x509.MarshalPKCS8PrivateKey(key)
		if gerr != nil {
			return nil, fmt.Errorf("scan: make the SBOM signing key: %w", gerr)
		}
		fresh := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		if _, err := s.db.Exec(ctx, `INSERT INTO scan_keys (id, private_pem, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`,
			fresh, time.Now().UnixMilli()); err != nil {
			return nil, fmt.Errorf("scan: store the SBOM signing key: %w", err)
		}
		if err := s.db.QueryRow(ctx, `SELECT private_pem FROM scan_keys WHERE id = 1`).Scan(&pemText); err != nil {
			return nil, fmt.Errorf("scan: SBOM signing key: %w", err)
		}
	}
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("scan: the stored SBOM signing key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("scan: SBOM signing key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("scan: the stored SBOM signing key is not ECDSA")
	}
	return key, nil
}

// PublicKeyPEM renders key's public half as cosign reads keys (--key).
func PublicKeyPEM(key *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// SimpleSigning is cosign's simple-signing payload for the manifest digest at
// reference (registry/repository), and its signature by key (base64 ASN.1 ECDSA over
// the payload's SHA-256), as the dev.cosignproject.cosign/signature annotation holds it.
func SimpleSigning(key *ecdsa.PrivateKey, reference, digest string) (payload []byte, signature string, err error) {
	payload, err = json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": reference},
			"image":    map[string]string{"docker-manifest-digest": digest},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		return nil, "", err
	}
	return payload, base64.StdEncoding.EncodeToString(sig), nil
}
