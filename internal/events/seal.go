package events

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Sealer encrypts subscription secrets at rest (AES-256-GCM) with a key kept outside
// the database: a copy of the database alone does not reveal them. Every replica needs
// the same key file.
type Sealer struct{ aead cipher.AEAD }

const sealPrefix = "v1:"

// LoadKey reads the base64 key file at path, creating it (0600, 32 random bytes) when
// absent and create is set.
func LoadKey(path string, create bool) (*Sealer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		var k [32]byte
		_, _ = rand.Read(k[:])
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("events: key dir: %w", err)
		}
		f, werr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if werr == nil {
			_, werr = f.WriteString(base64.StdEncoding.EncodeToString(k[:]) + "\n")
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
		}
		if werr != nil && !errors.Is(werr, os.ErrExist) { // ErrExist: another process made it first
			return nil, fmt.Errorf("events: create key file: %w", werr)
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("events: key file: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("events: key file %s: want the base64 of 32 bytes", path)
	}
	return NewSealer(k)
}

// NewSealer returns a sealer over a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	// The AEAD draws each nonce itself and prepends it: the layout Berth always stored
	// (nonce, ciphertext, tag), and the form of GCM FIPS 140-3 mode approves (a caller's
	// nonce is refused under GODEBUG=fips140=only).
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts a secret for storage.
func (s *Sealer) Seal(secret string) string {
	return sealPrefix + base64.StdEncoding.EncodeToString(s.aead.Seal(nil, nil, []byte(secret), []byte("berth webhook secret")))
}

// errUnseal reports a secret sealed with another key (a replica with a different key file).
var errUnseal = errors.New("events: the subscription's secret cannot be decrypted with this replica's events key (every replica needs the same events.webhooks.secretKeyFile)")

// Open decrypts a stored secret.
func (s *Sealer) Open(sealed string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", errUnseal
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", errUnseal
	}
	out, err := s.aead.Open(nil, nil, b, []byte("berth webhook secret"))
	if err != nil {
		return "", errUnseal
	}
	return string(out), nil
}
