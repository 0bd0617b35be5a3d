package events

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks (standardwebhooks.com) headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a Standard Webhooks secret: the key is the base64 after it.
const secretPrefix = "whsec_"

// NewSecret returns a fresh signing secret ("whsec_" + base64 of 32 random bytes).
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return secretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// secretKey is the HMAC key of a secret: the decoded base64 of a "whsec_" secret, the
// bytes of any other string.
func secretKey(secret string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(secret, secretPrefix); ok {
		k, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, fmt.Errorf("events: secret: %s followed by invalid base64", secretPrefix)
		}
		return k, nil
	}
	return []byte(secret), nil
}

// checkSecret validates a secret a caller supplies.
func checkSecret(secret string) error {
	k, err := secretKey(secret)
	if err != nil {
		return &InvalidError{Msg: err.Error()}
	}
	if len(k) < 16 || len(k) > 64 {
		return &InvalidError{Msg: "secret: the key must be 16 to 64 bytes (a whsec_ secret: base64 of them)"}
	}
	return nil
}

// Sign returns the webhook-signature value for a message: "v1," followed by the
// base64 HMAC-SHA256 of "id.timestamp.body" under the secret's key.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	k, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(k, id, ts.Unix(), body)), nil
}

func mac(key []byte, id string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verification failures.
var (
	ErrNoSignature  = errors.New("events: webhook headers missing")
	ErrBadSignature = errors.New("events: no webhook signature matches")
	ErrStale        = errors.New("events: webhook timestamp outside the tolerance")
)

// Verify checks a received webhook as a receiver should: the three headers present, the
// timestamp within tolerance of now (replays of old messages refused) and one of the
// space-separated v1 signatures equal, compared in constant time. It returns the
// webhook-id, for de-duplication.
func Verify(secret string, h http.Header, body []byte, tolerance time.Duration, now time.Time) (string, error) {
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return "", ErrNoSignature
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return "", ErrNoSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return "", ErrStale
	}
	k, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	want := mac(k, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return id, nil
		}
	}
	return "", ErrBadSignature
}
